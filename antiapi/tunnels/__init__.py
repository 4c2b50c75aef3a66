"""Tunnels that expose antiapi through ngrok, cloudflared or localtunnel (supervised child processes).

May import: stdlib only. Nothing here runs at import. See docs/remote-access.md.
"""

from antiapi.tunnels.supervisor import (
    NGROK_API_DEFAULT,
    TOOLS,
    ToolSpec,
    Tunnel,
    TunnelError,
    find_binary,
    tool_kind,
    tool_status,
)

__all__ = [
    "NGROK_API_DEFAULT",
    "TOOLS",
    "ToolSpec",
    "Tunnel",
    "TunnelError",
    "find_binary",
    "tool_kind",
    "tool_status",
]
