"""``antiapi tui --web``: the dashboard as a web page (textual-serve), behind the admin token.

Each browser tab gets its own dashboard process (``python -m antiapi.tui``) attached to the
gateway; the browser talks to it over a WebSocket. Safety, on top of textual-serve:

* **Token first.** Every path (page, WebSocket, static files) needs a session cookie, which is
  only set after the admin token was given (``/?token=…`` once, or the login form). The cookie
  holds an HMAC of the token, not the token; it is ``HttpOnly`` and ``SameSite=Strict``.
* **Loopback only.** The view binds 127.0.0.1 (or ::1 / localhost); for another machine use an
  SSH port-forward (``ssh -L 8965:127.0.0.1:8965 host``). Requests whose ``Host`` is not a
  loopback name are refused (DNS-rebinding), WebSockets from another origin too.
* **No secret on a command line.** The dashboard processes read the token from a 0600 file
  (the data dir's ``admin_token``, or a private temporary copy when ``--token`` was given).
* **One-time links.** Started by ``antiapi serve`` (auto-open, :mod:`antiapi.webview_launcher`),
  the view gets a one-time login code in its environment (``ANTIAPI_WEB_LOGIN_CODE``): the
  browser is opened at ``/?code=…``, which works once and for a few minutes, so the admin token
  never appears in the browser's command line or history. It also gets the gateway's pid
  (``ANTIAPI_WEB_PARENT_PID``) and exits when the gateway is gone.

May import: textual_serve, aiohttp, antiapi.tui, stdlib.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import html
import ipaddress
import logging
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["LOGIN_CODE_ENV", "PARENT_PID_ENV", "SESSION_COOKIE", "WebView", "is_loopback", "serve_web"]

log = logging.getLogger("antiapi.tui.web")

SESSION_COOKIE = "antiapi_web"
_SCREENS = ("quota", "requests", "routing", "accounts", "settings", "remote", "usage")
#: set by antiapi serve's auto-open (antiapi.webview_launcher): a one-time login code, and the
#: pid of the gateway (the view exits when that process is gone)
LOGIN_CODE_ENV = "ANTIAPI_WEB_LOGIN_CODE"
PARENT_PID_ENV = "ANTIAPI_WEB_PARENT_PID"
#: how long a one-time login code works (it works once)
LOGIN_CODE_TTL = 600.0

_LOGIN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>antiapi dashboard: admin token required</title>
<meta name="referrer" content="no-referrer">
<style>body{{font-family:system-ui,sans-serif;max-width:34em;margin:4em auto;line-height:1.5;color:#222}}
input{{font:inherit;width:100%;padding:.4em;margin:.5em 0}} button{{font:inherit;padding:.4em 1.2em}}
.err{{color:#b00}}</style></head>
<body><h1>antiapi dashboard</h1>
<p id="need-token">Admin token required. It is in the gateway's data directory, in the file
<code>admin_token</code> (<code>antiapi tui --web</code> also prints a link that includes it).</p>
{error}
<form method="post" action="/login">
<input type="password" name="token" autocomplete="current-password" placeholder="admin token" autofocus>
<input type="hidden" name="screen" value="{screen}">
<button type="submit">Open the dashboard</button>
</form></body></html>
"""


def is_loopback(host: str) -> bool:
    h = host.strip("[]").lower()
    if h in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def _host_name(host_header: str) -> str:
    if host_header.startswith("["):
        return host_header[1 : host_header.find("]")] if "]" in host_header else host_header
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def _session_value(token: str) -> str:
    return hmac.new(token.encode(), b"antiapi-web-session-v1", hashlib.sha256).hexdigest()


def _make_view_class() -> type:
    from aiohttp import WSMsgType, web  # noqa: F401  (textual-serve's dependency)
    from textual_serve.app_service import AppService
    from textual_serve.server import Server, to_int

    import aiohttp_jinja2
    import jinja2

    class _WebView(Server):
        """textual-serve's server with the token gate, a per-screen command and URLs taken from
        the request (so an SSH port-forward on another port works)."""

        def __init__(self, gateway_url: str, token: str, token_file: Path, *, host: str, port: int, python: str = sys.executable,
                     login_code: str | None = None, parent_pid: int | None = None) -> None:
            self.gateway_url = gateway_url
            self.token_file = token_file
            self.python = python
            self._token = token
            self._session = _session_value(token)
            #: a one-time login code (``/?code=…``) and until when it works
            self._login_code = login_code or None
            self._login_code_until = time.monotonic() + LOGIN_CODE_TTL
            self.parent_pid = parent_pid
            self._parent_watch: asyncio.Task[None] | None = None
            super().__init__(self.command_for("quota"), host=host, port=port, title="antiapi")
            #: dashboards started (one per WebSocket); tests read it
            self.sessions = 0
            self._services: set[AppService] = set()

        def command_for(self, screen: str) -> str:
            # "exec": the shell textual-serve starts becomes the dashboard, so ending the session
            # ends the dashboard (not only a shell around it)
            return "exec " + " ".join(shlex.quote(p) for p in [
                self.python, "-m", "antiapi.tui", "--url", self.gateway_url, "--token-file", str(self.token_file),
                "--screen", _screen_arg(screen),
            ])

        def initialize_logging(self) -> None:
            logging.basicConfig(level="INFO", format="%(message)s")

        async def on_startup(self, app: Any) -> None:
            if self.parent_pid:
                self._parent_watch = asyncio.get_running_loop().create_task(self._watch_parent())

        async def _watch_parent(self) -> None:
            """Started by a gateway: exit (gracefully, like on SIGTERM) once that gateway is gone,
            even if it was killed without stopping this view."""
            while os.getppid() == self.parent_pid:
                await asyncio.sleep(1.0)
            log.warning("the gateway (pid %s) is gone; stopping the web dashboard", self.parent_pid)
            os.kill(os.getpid(), signal.SIGTERM)

        async def on_shutdown(self, app: Any) -> None:
            if self._parent_watch is not None:
                self._parent_watch.cancel()
            await asyncio.gather(*(_end_session(s) for s in list(self._services)))

        async def _make_app(self) -> Any:
            app = web.Application(middlewares=[self._gate])
            aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(self.templates_path))
            app.add_routes([
                web.get("/", self.handle_index, name="index"),
                web.post("/login", self.handle_login, name="login"),
                web.get("/ws", self.handle_websocket, name="websocket"),
                web.get("/ws/{screen}", self.handle_websocket, name="websocket_screen"),
                web.static("/static", self.statics_path, show_index=False, name="static"),
            ])
            app.on_startup.append(self.on_startup)
            app.on_shutdown.append(self.on_shutdown)
            return app

        # ---------------------------------------------------------------- the gate

        def _authorised(self, request: Any) -> bool:
            cookie = request.cookies.get(SESSION_COOKIE, "")
            return bool(cookie) and hmac.compare_digest(cookie.encode(), self._session.encode())

        def _token_ok(self, given: str | None) -> bool:
            return bool(given) and hmac.compare_digest(given.strip().encode(), self._token.encode())  # type: ignore[union-attr]

        def _use_login_code(self, given: str | None) -> bool:
            """True once for the right, unexpired one-time code (it is forgotten on use)."""
            code = self._login_code
            if not code or not given or time.monotonic() > self._login_code_until:
                return False
            if not hmac.compare_digest(given.strip().encode(), code.encode()):
                return False
            self._login_code = None
            return True

        def _login_page(self, screen: str, error: str = "", status: int = 401) -> Any:
            err = f'<p class="err">{html.escape(error)}</p>' if error else ""
            body = _LOGIN.format(error=err, screen=html.escape(screen if screen in _SCREENS else "quota"))
            return web.Response(text=body, status=status, content_type="text/html", headers={**_NO_STORE, **_HEADERS})

        @web.middleware
        async def _gate(self, request: Any, handler: Any) -> Any:
            if self.host_is_loopback and not is_loopback(_host_name(request.host or "")):
                return web.Response(text="antiapi: this dashboard answers on loopback addresses only", status=421)
            screen = request.query.get("screen", "quota")
            if request.path == "/" and "token" in request.query:
                if not self._token_ok(request.query.get("token")):
                    return self._login_page(screen, "That token is not the admin token.")
                raise self._enter(screen)
            if request.path == "/" and "code" in request.query:
                if not self._use_login_code(request.query.get("code")):
                    return self._login_page(screen, "That link has already been used or has expired: enter the admin token.")
                raise self._enter(screen)
            if request.path == "/login":
                return await handler(request)
            if not self._authorised(request):
                if request.path == "/":
                    return self._login_page(screen)
                return web.Response(text="admin token required", status=401)
            response = await handler(request)
            for k, v in _HEADERS.items():
                response.headers.setdefault(k, v)
            return response

        @property
        def host_is_loopback(self) -> bool:
            return is_loopback(self.host)

        def _enter(self, screen: str) -> Any:
            target = "/" + (f"?screen={screen}" if screen in _SCREENS and screen != "quota" else "")
            resp = web.HTTPSeeOther(target, headers=_NO_STORE)
            resp.set_cookie(SESSION_COOKIE, self._session, httponly=True, samesite="Strict", path="/")
            return resp

        async def handle_login(self, request: Any) -> Any:
            form = await request.post()
            screen = str(form.get("screen") or "quota")
            if not self._token_ok(str(form.get("token") or "")):
                return self._login_page(screen, "That token is not the admin token.")
            raise self._enter(screen)

        # ---------------------------------------------------------------- pages

        async def handle_index(self, request: Any) -> Any:
            screen = request.query.get("screen", "quota")
            screen = screen if screen in _SCREENS else "quota"
            base = f"{request.scheme}://{request.host}"
            ws_base = ("wss://" if request.scheme == "https" else "ws://") + request.host
            context = {
                "font_size": to_int(request.query.get("fontsize", "16"), 16),
                "app_websocket_url": f"{ws_base}/ws/{screen}",
                "config": {"static": {"url": f"{base}/static/"}},
                "application": {"name": "antiapi dashboard"},
            }
            response = aiohttp_jinja2.render_template("app_index.html", request, context)
            response.headers.update(_NO_STORE)
            return response

        async def handle_websocket(self, request: Any) -> Any:
            origin = request.headers.get("origin")
            if origin is not None and origin.split("://", 1)[-1] != request.host:
                return web.Response(text="cross-origin WebSocket refused", status=403)
            screen = request.match_info.get("screen", "quota")
            websocket = web.WebSocketResponse(heartbeat=15)
            width = to_int(request.query.get("width", "80"), 80)
            height = to_int(request.query.get("height", "24"), 24)
            service: AppService | None = None
            try:
                await websocket.prepare(request)
                service = AppService(
                    self.command_for(screen), write_bytes=websocket.send_bytes, write_str=websocket.send_str,
                    close=websocket.close, download_manager=self.download_manager, debug=self.debug,
                )
                self.sessions += 1
                self._services.add(service)
                await service.start(width, height)
                await self._process_messages(websocket, service)
            except asyncio.CancelledError:
                await websocket.close()
            except Exception:
                log.exception("web dashboard session failed")
            finally:
                if service is not None:
                    self._services.discard(service)
                    await _end_session(service)
            return websocket

    return _WebView


async def _drain(stream: Any) -> None:
    with contextlib.suppress(Exception):
        while await stream.read(65536):
            pass


async def _end_session(service: Any, grace: float = 2.0) -> None:
    """Stop one dashboard process for sure.

    textual-serve stops reading the app's output once the browser's socket is gone; the app then
    blocks writing its next frame and never sees the "quit" it is sent. So: keep draining its
    output, ask it to quit, and kill it if it has not exited after ``grace`` seconds.
    """
    proc = getattr(service, "_process", None)
    try:
        await asyncio.wait_for(service.stop(), grace)
    except (asyncio.TimeoutError, Exception):  # a broken pipe to a dead app is fine here
        log.debug("dashboard session did not stop cleanly", exc_info=True)
    if proc is None or proc.returncode is not None:
        return
    drain = asyncio.ensure_future(_drain(proc.stdout)) if proc.stdout is not None else None
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except asyncio.TimeoutError:
        log.warning("dashboard process %s did not quit; killing it", proc.pid)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
    finally:
        if drain is not None:
            drain.cancel()


_NO_STORE = {"cache-control": "no-store", "referrer-policy": "no-referrer"}
_HEADERS = {"x-frame-options": "DENY", "referrer-policy": "no-referrer", "x-content-type-options": "nosniff"}


def _screen_arg(screen: str) -> str:
    """``screen`` when the dashboard command accepts it, else ``quota``."""
    from antiapi.tui.cli import SCREEN_NAMES

    return screen if screen in _SCREENS and screen in SCREEN_NAMES else "quota"


def WebView(gateway_url: str, token: str, token_file: Path, *, host: str = "127.0.0.1", port: int = 8965,  # noqa: N802
            login_code: str | None = None, parent_pid: int | None = None) -> Any:
    """The web view server object (``.serve()`` blocks)."""
    return _make_view_class()(gateway_url, token, token_file, host=host, port=port, login_code=login_code, parent_pid=parent_pid)


def serve_web(url: str, token: str, *, host: str = "127.0.0.1", port: int = 8965, token_file: Path | None = None) -> int:
    """Serve the dashboard at ``http://host:port/`` until ctrl+c. Returns the exit code.

    Started by ``antiapi serve`` (auto-open), the environment carries a one-time login code and
    the gateway's pid (:data:`LOGIN_CODE_ENV`, :data:`PARENT_PID_ENV`; removed here so the
    dashboard processes do not inherit them); then no link with the token is printed."""
    login_code = os.environ.pop(LOGIN_CODE_ENV, None) or None
    parent = os.environ.pop(PARENT_PID_ENV, None)
    parent_pid = int(parent) if parent and parent.isdigit() else None
    if not is_loopback(host):
        print(
            f"antiapi tui --web: refusing to listen on {host}: the dashboard controls your accounts.\n"
            f"  Keep it on 127.0.0.1 and use an SSH port-forward: ssh -L {port}:127.0.0.1:{port} <this-host>",
            file=sys.stderr,
        )
        return 2
    try:
        import textual_serve  # noqa: F401
    except ImportError:
        print("antiapi tui --web needs textual-serve: pip install textual-serve==1.1.3", file=sys.stderr)
        return 2
    tmpdir: str | None = None
    if token_file is None or not Path(token_file).is_file():
        tmpdir = tempfile.mkdtemp(prefix="antiapi-web-")  # mode 0700
        token_file = Path(tmpdir) / "admin_token"
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token)
    shown = f"[{host}]" if ":" in host else host
    if parent_pid is not None:  # started by the gateway, which shows the (one-time) link itself
        print(f"antiapi dashboard (web) on http://{shown}:{port}/ for the gateway at {url} (pid {parent_pid})",
              file=sys.stderr, flush=True)
    else:
        print(
            f"antiapi dashboard (web) on http://{shown}:{port}/ for the gateway at {url}\n"
            f"  open http://{shown}:{port}/?token={token}\n"
            f"  (or open http://{shown}:{port}/ and enter the admin token from {token_file if tmpdir is None else 'the gateway data dir'})\n"
            "  ctrl+c stops it.",
            file=sys.stderr, flush=True,
        )
    try:
        WebView(url, token, Path(token_file), host=host, port=port, login_code=login_code, parent_pid=parent_pid).serve()
    finally:
        if tmpdir is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(tmpdir)
    return 0
