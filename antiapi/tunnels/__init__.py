"""Tunnels that expose antiapi through ngrok, cloudflared or localtunnel (supervised child processes).

May import: stdlib only. Nothing here runs at import. See docs/remote-access.md.
"""

from antiapi.tunnels.supervisor import TOOLS, ToolSpec, Tunnel, TunnelError, find_binary, tunnel_from_settings

__all__ = ["TOOLS", "ToolSpec", "Tunnel", "TunnelError", "find_binary", "tunnel_from_settings"]
