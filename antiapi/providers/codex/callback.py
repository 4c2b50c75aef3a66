"""The loopback HTTP listener that receives the browser's OAuth redirect.

``GET <path>?code=..&state=..`` delivers the code once: a wrong ``state`` is refused (400 "State
mismatch") and a second delivery of the right one (a replay) is refused too; ``error=..`` ends the
sign-in. ``GET /cancel`` aborts, ``GET /success`` shows the done page. The browser's request for
the callback is answered only when the sign-in finished (``finish``), so the page tells the truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import html
import logging
from collections.abc import Callable, Sequence
from urllib.parse import parse_qs, urlsplit

from antiapi.providers.codex.oauth import CALLBACK_PATH, CALLBACK_PORTS, SignInError

log = logging.getLogger("antiapi.providers.codex")

_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>antiapi sign-in</title>
<style>body{{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em}}</style></head>
<body><h1>{title}</h1><p>{text}</p></body></html>"""

_REASONS = {200: "OK", 302: "Found", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}


class CallbackServer:
    def __init__(
        self,
        *,
        expected_state: str,
        path: str = CALLBACK_PATH,
        host: str = "127.0.0.1",
        ports: Sequence[int] = CALLBACK_PORTS,
        on_refused: Callable[[str], None] | None = None,
    ) -> None:
        self.expected_state = expected_state
        self.path = path or CALLBACK_PATH
        self.host = host
        self.ports = tuple(ports)
        self.on_refused = on_refused
        self.port: int | None = None
        self.refused: list[str] = []
        self._servers: list[asyncio.base_events.Server] = []
        self._code: asyncio.Future[str] | None = None
        self._result: asyncio.Future[tuple[bool, str]] | None = None
        self._consumed = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        self._code = loop.create_future()
        self._result = loop.create_future()
        last: OSError | None = None
        for port in self.ports:
            try:
                srv = await asyncio.start_server(self._handle, self.host, port, reuse_address=True)
            except OSError as e:
                last = e
                if e.errno in (errno.EADDRINUSE, errno.EACCES):
                    continue
                raise
            self._servers.append(srv)
            self.port = srv.sockets[0].getsockname()[1]
            break
        if self.port is None:
            listed = ", ".join(str(p) for p in self.ports)
            raise SignInError(
                f"cannot listen for the sign-in callback on {self.host} port {listed} ({last.strerror if last else 'busy'}). "
                "Another sign-in (antiapi or Codex CLI) may be running: finish or stop it, or use "
                "`antiapi login codex --device` / `--paste`.",
                permanent=True,
            )
        if self.host in ("127.0.0.1", "localhost"):
            # browsers may resolve "localhost" to ::1 first: listen there too when possible
            with contextlib.suppress(OSError):
                self._servers.append(await asyncio.start_server(self._handle, "::1", self.port, reuse_address=True))
        return self.port

    async def close(self) -> None:
        for srv in self._servers:
            srv.close()
        for srv in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(srv.wait_closed(), 2)
        self._servers.clear()
        if self._code is not None and not self._code.done():
            self._code.cancel()

    async def wait_code(self, timeout: float | None = None) -> str:
        assert self._code is not None, "start() first"
        try:
            return await asyncio.wait_for(asyncio.shield(self._code), timeout)
        except asyncio.TimeoutError:
            raise SignInError("no sign-in arrived in time; run `antiapi login codex` again", permanent=True) from None

    def finish(self, ok: bool, message: str) -> None:
        """Answer the waiting browser with the sign-in's outcome."""
        if self._result is not None and not self._result.done():
            self._result.set_result((ok, message))

    # ------------------------------------------------------------------ HTTP

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ConnectionError):
                return
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            parts = line.split(" ")
            if len(parts) < 2:
                await self._reply(writer, 400, "Bad request", "This is antiapi's sign-in listener.")
                return
            method, target = parts[0], parts[1]
            url = urlsplit(target)
            query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items() if v}
            if method not in ("GET", "HEAD"):
                await self._reply(writer, 400, "Bad request", "Only GET is served here.")
            elif url.path == self.path:
                await self._callback(writer, query)
            elif url.path == "/success":
                await self._reply(writer, 200, "Signed in", "You can close this tab and return to the terminal.")
            elif url.path == "/cancel":
                if self._code is not None and not self._code.done():
                    self._code.set_exception(SignInError("the sign-in was cancelled", permanent=True))
                await self._reply(writer, 200, "Sign-in cancelled", "The pending antiapi sign-in was cancelled.")
            else:
                await self._reply(writer, 404, "Not found", "This is antiapi's sign-in listener.")
        except Exception:  # never let one bad connection break the sign-in
            log.debug("sign-in listener: request failed", exc_info=True)
        finally:
            with contextlib.suppress(Exception):
                writer.close()
                await writer.wait_closed()

    async def _callback(self, writer: asyncio.StreamWriter, q: dict[str, str]) -> None:
        assert self._code is not None and self._result is not None
        state, code, error = q.get("state"), q.get("code"), q.get("error")
        if state != self.expected_state:
            msg = ("Refused a sign-in callback with a wrong state (State mismatch). It does not belong to this "
                   "sign-in; if you started several sign-ins, use the link of the latest one.")
            self._refuse(msg)
            await self._reply(writer, 400, "State mismatch", msg)
            return
        if self._consumed:
            msg = "Refused a replayed sign-in callback: this sign-in link was already used."
            self._refuse(msg)
            await self._reply(writer, 400, "Link already used", msg)
            return
        if error:
            self._consumed = True
            desc = q.get("error_description") or error
            if not self._code.done():
                self._code.set_exception(SignInError(f"the sign-in server reported an error: {desc}", code=error, permanent=True))
            await self._reply(writer, 400, "Sign-in failed", f"The sign-in server reported: {desc}")
            return
        if not code:
            msg = "The callback carries no code."
            self._refuse(msg)
            await self._reply(writer, 400, "Missing code", msg)
            return
        self._consumed = True
        if not self._code.done():
            self._code.set_result(code)
        try:
            ok, message = await asyncio.wait_for(asyncio.shield(self._result), 120)
        except asyncio.TimeoutError:
            ok, message = False, "antiapi did not finish the sign-in in time; look at the terminal."
        if ok:
            await self._reply(writer, 200, "Signed in", html.escape(message) + " You can close this tab.", escape=False)
        else:
            await self._reply(writer, 500, "Sign-in failed", message)

    def _refuse(self, msg: str) -> None:
        self.refused.append(msg)
        if self.on_refused is not None:
            self.on_refused(msg)

    async def _reply(self, writer: asyncio.StreamWriter, status: int, title: str, text: str, *, escape: bool = True) -> None:
        body = _PAGE.format(title=html.escape(title), text=html.escape(text) if escape else text).encode()
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}\r\n"
            "Content-Type: text/html; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Cache-Control: no-store\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        writer.write(head + body)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
