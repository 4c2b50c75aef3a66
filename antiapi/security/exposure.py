"""Pure rules for when antiapi may be reachable from other machines.

``check_exposure(host, tunnel, key_count)`` returns ``None`` when serving is allowed, else the
message to print before refusing to start: any address other than loopback, and any tunnel,
needs at least one client key (``antiapi keys create --name laptop``).
"""

from __future__ import annotations

import ipaddress

__all__ = ["CREATE_HINT", "check_exposure", "is_loopback", "needs_keys"]

CREATE_HINT = "antiapi keys create --name laptop"


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``; False for everything else (0.0.0.0 included)."""
    h = (host or "").strip().strip("[]").lower()
    if h in ("localhost", "localhost.", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(h.split("%", 1)[0]).is_loopback
    except ValueError:
        return False  # a hostname: it may resolve to a public address


def needs_keys(host: str, tunnel: bool) -> bool:
    """Whether the gateway is reachable by others, so every request must carry a client key."""
    return tunnel or not is_loopback(host)


def check_exposure(host: str, tunnel: bool, key_count: int) -> str | None:
    """``None`` if serving is safe, else the refusal message (names the fix)."""
    if not needs_keys(host, tunnel) or key_count > 0:
        return None
    if tunnel:
        what = "A tunnel makes antiapi reachable from the internet"
    elif (host or "").strip("[]") in ("0.0.0.0", "::", ""):
        what = f"Listening on {host or 'all addresses'} makes antiapi reachable from every network this machine is on"
    else:
        what = f"Listening on {host} makes antiapi reachable from other machines"
    return (
        f"{what}, and no client key exists, so anyone who can reach it could spend your accounts' quota. "
        f"Create a key first with `{CREATE_HINT}` (it is shown once; give it to the client as its API key), "
        "then start again. Every request will then need that key. "
        "To reach antiapi from one other machine, an SSH port-forward needs no key: "
        "`ssh -L 8964:127.0.0.1:8964 you@gateway-host`."
    )
