"""Client-key check for the gateway routes, as an ASGI middleware factory.

``client_auth_middleware(verifier, required=...)`` returns a Litestar-style middleware
(``app -> ASGI app``). The check is ON when ``required`` (bound to a non-loopback address, or a
tunnel is running) **or** when at least one active client key exists. Decision for loopback with
keys defined: keys are required there too, because a tunnel (ngrok, cloudflared, localtunnel, an
SSH -R forward) delivers outside traffic from 127.0.0.1, so the peer address cannot tell local
clients from remote ones. With no keys and ``required`` false (the default loopback setup) nothing
is checked.

Accepted: ``Authorization: Bearer <key>`` (OpenAI SDKs) and ``x-api-key: <key>`` (Anthropic SDKs).
Not checked: ``/admin*`` (the admin API has its own protection), ``/health``, ``HEAD /``,
``/api/hello``, and non-HTTP scopes. Failures are answered in the caller's wire format (Anthropic
for ``/v1/messages*``, OpenAI otherwise) through ``antiapi.translate.<dialect>.render_error``:
401 for a missing/unknown/revoked key, 429 with ``retry-after`` when a per-key limit is used up.

On success the scope state gets ``client_key`` (the key's name, for usage records) and
``client_key_id`` (its id).

**While no key is required** (loopback, no key exists) requests must look like they come straight
from a program on this machine, because "loopback" is all that protects the accounts then
(:func:`local_problem`):

* no forwarding headers (``X-Forwarded-For``, ``Forwarded``, ``X-Real-IP``, ``CF-Connecting-IP``…):
  a reverse proxy or a tunnel started outside antiapi (ngrok, cloudflared, ``ssh -R`` behind a
  web server) would otherwise expose the gateway with no key at all; the caller gets 401 and is
  told to create a key. The headers are never *believed* (nobody's identity or address is taken
  from them); their presence only makes the gateway stricter.
* a ``Host`` that names this machine (``localhost``, a loopback address, or ``server.allowed_hosts``):
  this defeats DNS rebinding, where a web page's own domain is pointed at 127.0.0.1.
* no ``Origin`` unless it is listed in ``server.cors_origins``: API clients send none; a browser
  always does, so a web page you visit cannot spend your quota (CORS is off unless configured).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from antiapi.errors import ErrorKind, GatewayError
from antiapi.security.keys import KeyVerifier
from antiapi.translate import dialect as dialects

__all__ = ["EXEMPT_PATHS", "FORWARDING_HEADERS", "client_auth_middleware", "is_exempt", "local_problem", "presented_keys"]

EXEMPT_PATHS = frozenset({"/health", "/api/hello"})
#: headers proxies and tunnels add; their presence means the request did not come straight from here
FORWARDING_HEADERS = frozenset({
    b"x-forwarded-for", b"x-forwarded-host", b"forwarded", b"x-real-ip", b"cf-connecting-ip", b"true-client-ip",
    b"x-original-forwarded-for",
})


def is_exempt(method: str, path: str) -> bool:
    if path == "/admin" or path.startswith("/admin/"):
        return True
    if path in EXEMPT_PATHS:
        return True
    if method == "OPTIONS":  # CORS preflight: carries no credentials and returns no data
        return True
    return method == "HEAD" and path == "/"


def _host_name(host: str) -> str:
    h = host.strip().lower()
    if h.startswith("["):  # [::1]:8964
        return h[1:h.find("]")] if "]" in h else h[1:]
    if h.count(":") == 1:
        h = h.rsplit(":", 1)[0]
    return h.rstrip(".")


def local_problem(
    headers: list[tuple[bytes, bytes]], *, allowed_hosts: frozenset[str] = frozenset(), cors_origins: frozenset[str] = frozenset(),
) -> GatewayError | None:
    """Why a request may not be served while no client key is required, or ``None`` (see the
    module docstring)."""
    from antiapi.security.exposure import is_loopback

    host = origin = None
    forwarded: list[str] = []
    for name, value in headers:
        n = name.lower()
        if n == b"host":
            host = value.decode("latin-1")
        elif n == b"origin":
            origin = value.decode("latin-1").strip()
        elif n in FORWARDING_HEADERS:
            forwarded.append(n.decode("latin-1"))
    if forwarded:
        return GatewayError(
            f"This request came through a proxy or tunnel (it carries {', '.join(sorted(set(forwarded)))}), and this "
            "gateway has no client key, so it only serves programs on its own machine. Create a key on the gateway "
            "host with `antiapi keys create --name laptop` and send it as the API key; an SSH port-forward "
            "(`ssh -L 8964:127.0.0.1:8964 host`) needs none.",
            kind=ErrorKind.AUTHENTICATION, code="client_key_required",
        )
    if host is not None:
        name = _host_name(host)
        if not (is_loopback(name) or name in allowed_hosts):
            return GatewayError(
                f"The Host {host!r} does not name this machine. Without client keys antiapi answers only requests "
                "addressed to localhost or a loopback address (a web page cannot then reach it by pointing its own "
                "domain at 127.0.0.1). Use http://127.0.0.1:8964, add the name to server.allowed_hosts in the config, "
                "or create a client key (`antiapi keys create --name laptop`).",
                kind=ErrorKind.PERMISSION, code="host_not_allowed",
            )
    if origin is not None and origin.rstrip("/") not in cors_origins and "*" not in cors_origins:
        return GatewayError(
            f"Requests from web pages (Origin {origin!r}) are refused: any site you visit could otherwise use your "
            "accounts. To let a browser app call antiapi, list its origin under server.cors_origins in the config "
            "(e.g. http://localhost:3000).",
            kind=ErrorKind.PERMISSION, code="origin_not_allowed",
        )
    return None


def presented_keys(headers: list[tuple[bytes, bytes]]) -> list[str]:
    """The candidate keys from ``Authorization: Bearer`` and ``x-api-key``, in that order.

    Both are tried: some clients send a placeholder in one header and the real key in the other
    (e.g. an OpenAI SDK with ``api_key="unused"`` and ``default_headers={"x-api-key": key}``).
    """
    out: list[str] = []
    for name, value in headers:
        n = name.lower()
        if n == b"authorization":
            v = value.decode("latin-1").strip()
            if v[:7].lower() == "bearer " and v[7:].strip():
                out.insert(0, v[7:].strip())
        elif n == b"x-api-key":
            v = value.decode("latin-1").strip()
            if v:
                out.append(v)
    return out


_MISSING = (
    "This antiapi gateway requires a client key. Send it as 'Authorization: Bearer <key>' or "
    "'x-api-key: <key>' (the SDKs' api_key). Create one on the gateway host with "
    "`antiapi keys create --name laptop`."
)
_INVALID = (
    "The client key is not valid (unknown or revoked). List the keys on the gateway host with "
    "`antiapi keys list`; create a new one with `antiapi keys create --name laptop`."
)


async def _send_error(err: GatewayError, scope: Any, send: Any) -> None:
    body = dialects.load(dialects.dialect_for_path(scope.get("path", ""))).render_error(err)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if err.status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="antiapi"'))
    if err.retry_after is not None:
        headers.append((b"retry-after", str(max(1, int(err.retry_after + 0.999))).encode()))
    await send({"type": "http.response.start", "status": err.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _first_valid(verifier: KeyVerifier, candidates: list[str]) -> Any:
    for c in candidates[:2]:
        k = verifier.verify(c)
        if k is not None:
            return k
    return None


def client_auth_middleware(
    verifier: KeyVerifier, *, required: bool | Callable[[], bool], allowed_hosts: Any = (), cors_origins: Any = (),
) -> Callable[[Any], Any]:
    """Middleware factory (see the module docstring). ``required`` may be a callable, read per
    request, so starting a tunnel at run time can switch the check on. ``allowed_hosts`` and
    ``cors_origins`` (``server.allowed_hosts`` / ``server.cors_origins``) widen what is served
    while no key is required."""

    need: Callable[[], bool] = required if callable(required) else (lambda: bool(required))
    hosts = frozenset(h.lower() for h in allowed_hosts)
    origins = frozenset(o.rstrip("/") for o in cors_origins)

    def factory(app: Any) -> Any:
        async def middleware(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http" or is_exempt(scope.get("method", "GET"), scope.get("path", "")):
                await app(scope, receive, send)
                return
            if not (need() or verifier.count):
                problem = local_problem(scope.get("headers") or [], allowed_hosts=hosts, cors_origins=origins)
                if problem is not None:
                    await _send_error(problem, scope, send)
                    return
                await app(scope, receive, send)
                return
            presented = presented_keys(scope.get("headers") or [])
            if not presented:
                await _send_error(GatewayError(_MISSING, kind=ErrorKind.AUTHENTICATION, code="missing_api_key"), scope, send)
                return
            key = _first_valid(verifier, presented)
            if key is None and verifier.stale():
                await verifier.areload()  # a key created with `antiapi keys create` a moment ago
                key = _first_valid(verifier, presented)
            if key is None:
                await _send_error(GatewayError(_INVALID, kind=ErrorKind.AUTHENTICATION, code="invalid_api_key"), scope, send)
                return
            limited = verifier.admit(key)
            if limited is not None:
                await _send_error(limited, scope, send)
                return
            state = scope.setdefault("state", {})
            state["client_key"] = key.name
            state["client_key_id"] = key.id
            await app(scope, receive, send)

        return middleware

    return factory
