"""Run a tunnel tool (ngrok, cloudflared, localtunnel) next to the gateway and keep it running.

:class:`Tunnel` is the object the CLI, admin API and TUI use: ``await start()`` launches the tool,
waits for the public URL it prints and returns it; a supervisor task restarts the tool with
exponential backoff when it exits; ``await stop()`` ends it (its whole process group);
``status()`` is a JSON-friendly snapshot; ``on_state`` is called on every change of ``state``,
``url`` or ``error``. :func:`tool_status` says which tools are installed (for the dashboard).

The public URL is read from the tool's own output:

* ngrok (v3): ``ngrok http http://127.0.0.1:PORT --log stdout --log-format json``; the
  ``"started tunnel"`` JSON log line carries ``"url"``. Some versions/configs never print that line
  (a config file with ``log_format: term``, quiet logging), so while the URL has not appeared the
  supervisor also polls ngrok's local agent API, ``GET <web addr>/api/tunnels`` every 0.5 s: the
  address comes from the ``"starting web service"`` log line (``addr``), else
  ``http://127.0.0.1:4040``; only loopback addresses are ever contacted. The authtoken is passed in
  the ``NGROK_AUTHTOKEN`` environment variable (not on the command line, where ``ps`` shows it).
* cloudflared: ``cloudflared tunnel --no-autoupdate --url http://127.0.0.1:PORT`` (a quick tunnel,
  no account); it prints ``https://<words>.trycloudflare.com`` in a box on stderr.
* localtunnel: ``lt --port PORT --local-host 127.0.0.1`` prints ``your url is: https://...``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import ipaddress
import json
import logging
import os
import re
import shutil
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "NGROK_API_DEFAULT",
    "TOOLS",
    "Tunnel",
    "TunnelError",
    "ToolSpec",
    "find_binary",
    "tool_kind",
    "tool_status",
]

log = logging.getLogger("antiapi.tunnels")


class TunnelError(Exception):
    """The tunnel cannot be started; the message says why and what to do."""


_CF_URL = re.compile(r"https://(?!api\.)[-a-z0-9]+\.trycloudflare\.com")
_LT_URL = re.compile(r"your url is:\s*(https://\S+)", re.IGNORECASE)


def _json_line(s: str) -> dict[str, Any] | None:
    """One JSON log line of ngrok (``--log-format json``) as a dict, else ``None``."""
    try:
        obj = json.loads(s)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def _ngrok_url(line: str) -> str | None:
    s = line.strip()
    if s.startswith("{"):
        url = (_json_line(s) or {}).get("url")
        return url if isinstance(url, str) and url.startswith("https://") else None
    m = re.search(r"url=(https://\S+)", s)  # logfmt output (--log-format logfmt)
    return m.group(1) if m else None


def _cf_url(line: str) -> str | None:
    m = _CF_URL.search(line)
    return m.group(0) if m else None


def _lt_url(line: str) -> str | None:
    m = _LT_URL.search(line)
    return m.group(1) if m else None


# ---------------------------------------------------------------- ngrok's local agent API

NGROK_API_DEFAULT = "http://127.0.0.1:4040"
NGROK_API_POLL = 0.5  # seconds between polls of /api/tunnels
_NGROK_API_TIMEOUT = 1.0
_NGROK_API_MAX_BYTES = 1 << 20


def _ngrok_web_addr(line: str) -> str | None:
    """The ``addr`` of ngrok's ``"starting web service"`` JSON/logfmt log line, else ``None``."""
    s = line.strip()
    if s.startswith("{"):
        obj = _json_line(s) or {}
        addr = obj.get("addr")
        return addr if obj.get("msg") == "starting web service" and isinstance(addr, str) else None
    if 'msg="starting web service"' in s:
        m = re.search(r"\baddr=(\S+)", s)
        return m.group(1).strip('"') if m else None
    return None


def _loopback_api(addr: str) -> tuple[str, int] | None:
    """``(host, port)`` to connect to for an ngrok web address if it is plain http on a loopback IP
    (``localhost`` and the unspecified ``0.0.0.0``/``::`` are reached via loopback), else ``None``:
    nothing but loopback is ever contacted."""
    a = addr.strip()
    if "://" not in a:
        a = "http://" + a
    try:
        u = urlsplit(a)
        port = u.port or 80
        host = u.hostname or ""
    except ValueError:
        return None
    if u.scheme != "http" or u.username or u.password or not host:
        return None
    if host == "localhost":
        return "127.0.0.1", port
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if ip.is_unspecified:  # web_addr 0.0.0.0:4040 listens on loopback too: reach it there
        return ("127.0.0.1" if ip.version == 4 else "::1"), port
    return (str(ip), port) if ip.is_loopback else None


async def _http_get_json(host: str, port: int, path: str, timeout: float = _NGROK_API_TIMEOUT) -> Any:
    """A minimal HTTP/1.0 GET (no proxies, no redirects) returning the parsed JSON body, or ``None``."""

    async def go() -> Any:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            writer.write(
                f"GET {path} HTTP/1.0\r\nHost: {hostport}\r\nAccept: application/json\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
            data = await reader.read(_NGROK_API_MAX_BYTES)
            while data and len(data) < _NGROK_API_MAX_BYTES:
                more = await reader.read(_NGROK_API_MAX_BYTES - len(data))
                if not more:
                    break
                data += more
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        head, sep, body = data.partition(b"\r\n\r\n")
        if not sep:
            return None
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split()
        if len(parts) < 2 or parts[1] != "200":
            return None
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        if "chunked" in headers.get("transfer-encoding", "").lower():
            out, rest = b"", body
            while rest:
                size_line, _, rest = rest.partition(b"\r\n")
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    break
                out, rest = out + rest[:size], rest[size + 2 :]
            body = out
        return json.loads(body.decode("utf-8"))

    try:
        return await asyncio.wait_for(go(), timeout)
    except (OSError, ValueError, asyncio.TimeoutError, UnicodeDecodeError):
        return None


def _ngrok_api_url(data: Any, port: int) -> str | None:
    """The public URL in an ``/api/tunnels`` answer for the tunnel to ``port`` (https preferred).

    Tunnels whose ``config.addr`` points to another port belong to something else (another ngrok
    agent may own 127.0.0.1:4040) and are skipped."""
    if not isinstance(data, dict) or not isinstance(data.get("tunnels"), list):
        return None
    found: list[str] = []
    for t in data["tunnels"]:
        if not isinstance(t, dict):
            continue
        url = t.get("public_url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            continue
        cfg = t.get("config")
        addr = cfg.get("addr") if isinstance(cfg, dict) else None
        if isinstance(addr, str) and addr:
            m = re.search(r":(\d+)/?$", addr) or re.fullmatch(r"(\d+)", addr)
            if not m or int(m.group(1)) != port:
                continue
        found.append(url)
    for url in found:
        if url.startswith("https://"):
            return url
    return found[0] if found else None


@dataclass(frozen=True)
class ToolSpec:
    kind: str
    binary: str
    install: str
    argv: Callable[[str, int], list[str]]
    parse_url: Callable[[str], str | None]
    exposes: str


TOOLS: dict[str, ToolSpec] = {
    "ngrok": ToolSpec(
        kind="ngrok",
        binary="ngrok",
        install=(
            "Install ngrok from https://ngrok.com/download (or `brew install ngrok`, `snap install ngrok`), "
            "then give antiapi your authtoken from https://dashboard.ngrok.com (the dashboard's Remote screen, t) "
            "or run `ngrok config add-authtoken <token>`."
        ),
        argv=lambda b, port: [b, "http", f"http://127.0.0.1:{port}", "--log", "stdout", "--log-format", "json"],
        parse_url=_ngrok_url,
        exposes="an https://*.ngrok-free.app (or your reserved) URL, via your ngrok account",
    ),
    "cloudflared": ToolSpec(
        kind="cloudflared",
        binary="cloudflared",
        install=(
            "Install cloudflared from https://developers.cloudflare.com/cloudflare-one/connections/connect-networks/downloads/ "
            "(or `brew install cloudflared`); quick tunnels need no account."
        ),
        argv=lambda b, port: [b, "tunnel", "--no-autoupdate", "--url", f"http://127.0.0.1:{port}"],
        parse_url=_cf_url,
        exposes="a random https://*.trycloudflare.com URL (new on every start), no account",
    ),
    "localtunnel": ToolSpec(
        kind="localtunnel",
        binary="lt",
        install="Install localtunnel with `npm install -g localtunnel` (it provides the `lt` command).",
        argv=lambda b, port: [b, "--port", str(port), "--local-host", "127.0.0.1"],
        parse_url=_lt_url,
        exposes="a random https://*.loca.lt URL, no account",
    ),
}
_ALIASES = {"lt": "localtunnel", "cloudflare": "cloudflared"}


def tool_kind(kind: str) -> str:
    """The tool's canonical name (``lt`` -> ``localtunnel``); :class:`TunnelError` for an unknown one."""
    k = _ALIASES.get(kind, kind)
    if k not in TOOLS:
        raise TunnelError(f"unknown tunnel {kind!r}; choose one of: {', '.join(TOOLS)}")
    return k


def _spec(kind: str) -> ToolSpec:
    return TOOLS[tool_kind(kind)]


def find_binary(kind: str, configured: str | None = None) -> str:
    """The tool's executable: ``configured`` (a path or a command name) or the default name on PATH."""
    spec = _spec(kind)
    if configured:
        p = os.path.expanduser(configured)
        if os.sep in p or (os.altsep and os.altsep in p):
            if os.path.isfile(p) and os.access(p, os.X_OK):
                return p
            raise TunnelError(f"the configured {spec.kind} binary {p} does not exist or is not executable. {spec.install}")
        found = shutil.which(p)
        if found:
            return found
        raise TunnelError(f"{p} (the configured {spec.kind} command) is not on PATH. {spec.install}")
    found = shutil.which(spec.binary)
    if found:
        return found
    raise TunnelError(
        f"{spec.kind} is not installed: `{spec.binary}` is not on PATH. {spec.install} "
        f"Or give its full path as the tunnel executable (dashboard: Remote screen, t)."
    )


def tool_status(binaries: Mapping[str, str | None] | None = None) -> list[dict[str, Any]]:
    """Which tunnel tools are installed, for the dashboard: one dict per tool in :data:`TOOLS` order,
    ``{"kind", "installed", "path", "install", "exposes"}``.

    ``binaries`` maps a kind (or its alias / command name, e.g. ``lt``) to a configured path or
    command name (like the ``tunnel.binary`` setting); otherwise the default name is looked up on PATH.
    Nothing is run."""
    binaries = binaries or {}
    out: list[dict[str, Any]] = []
    for kind, spec in TOOLS.items():
        keys = [kind, spec.binary, *(alias for alias, k in _ALIASES.items() if k == kind)]
        configured = next((binaries[k] for k in keys if binaries.get(k)), None)
        try:
            path: str | None = find_binary(kind, configured)
        except TunnelError:
            path = None
        out.append(
            {"kind": kind, "installed": path is not None, "path": path, "install": spec.install, "exposes": spec.exposes}
        )
    return out


class Tunnel:
    """One supervised tunnel process (see the module docstring).

    Args:
        kind: ``ngrok``, ``cloudflared`` or ``localtunnel`` (``lt``).
        port: the local antiapi port the tunnel forwards to (127.0.0.1).
        binary: path or command name overriding the default executable.
        authtoken: ngrok authtoken (ignored by the others).
        start_timeout: seconds to wait for the public URL on each launch.
        backoff_initial/backoff_max: restart delay, doubled after each failed launch, reset once a
            launch has run for ``stable_after`` seconds.
        max_restarts: give up after this many restarts in a row (``None``: never).
        on_url: called with the new URL whenever it changes (cloudflared/localtunnel pick a new one
            on every launch: clients must be told).
        on_state: called with this tunnel on every change of ``state``, ``url`` or ``error``
            (starting, running, restarting, failed, stopped, a new URL after a restart). Exceptions
            are logged, never raised; a returned coroutine is scheduled as a task.
        env: variables merged into the child's environment.
        ngrok_api: ngrok only: the agent API address to poll for the URL (``http://127.0.0.1:PORT``;
            loopback only). Default: the ``"starting web service"`` address ngrok logs, else
            :data:`NGROK_API_DEFAULT`.
    """

    def __init__(
        self,
        kind: str,
        port: int,
        *,
        binary: str | None = None,
        authtoken: str | None = None,
        start_timeout: float = 30.0,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        stable_after: float = 60.0,
        max_restarts: int | None = None,
        on_url: Callable[[str], Any] | None = None,
        on_state: Callable[[Tunnel], Any] | None = None,
        env: Mapping[str, str] | None = None,
        ngrok_api: str | None = None,
    ) -> None:
        self.spec = _spec(kind)
        self.port = int(port)
        self.binary_setting = binary
        self.authtoken = authtoken
        self.start_timeout = start_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.stable_after = stable_after
        self.max_restarts = max_restarts
        self.on_url = on_url
        self.on_state = on_state
        self.extra_env = dict(env or {})
        if ngrok_api is not None and _loopback_api(ngrok_api) is None:
            raise TunnelError(f"ngrok_api must be a plain http loopback address such as {NGROK_API_DEFAULT}, not {ngrok_api!r}")
        self.ngrok_api = ngrok_api
        self.state = "stopped"  # stopped | starting | running | restarting | failed
        self.url: str | None = None
        self.error: str | None = None
        self.restarts = 0
        self.binary: str | None = None
        self.started_at: float | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task | None = None
        self._super: asyncio.Task | None = None
        self._output: collections.deque[str] = collections.deque(maxlen=30)
        self._url_found: asyncio.Event | None = None
        self._web_addr: str | None = None  # ngrok: the loopback web address it logged this launch
        self._callbacks: set[asyncio.Task] = set()
        self._stopping = False

    # ------------------------------------------------------------------ public API

    @property
    def kind(self) -> str:
        return self.spec.kind

    async def start(self) -> str:
        """Launch the tool and return its public URL; raises :class:`TunnelError` with the reason."""
        if self.state in ("running", "restarting") and self._super is not None:
            return self.url or ""
        self._stopping = False
        self.restarts = 0
        self._set(state="starting", error=None)
        try:
            self.binary = find_binary(self.spec.kind, self.binary_setting)
            url = await self._launch()
        except TunnelError as e:
            self._set(state="failed", error=str(e))
            raise
        self._up(url)
        self._super = asyncio.create_task(self._supervise(), name=f"antiapi-tunnel-{self.kind}")
        return url

    async def stop(self) -> None:
        """Stop supervising and end the tool (SIGTERM to its process group, SIGKILL after 5 s)."""
        self._stopping = True
        if self._super is not None:
            self._super.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._super
            self._super = None
        await self._kill()
        self._set(state="stopped", url=None)

    def status(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "state": self.state,
            "url": self.url,
            "pid": self._proc.pid if self._proc is not None and self._proc.returncode is None else None,
            "restarts": self.restarts,
            "binary": self.binary,
            "error": self.error,
            "started_at": self.started_at,
            "last_output": list(self._output)[-10:],
        }

    # ------------------------------------------------------------------ internals

    _UNSET: Any = object()

    def _set(self, *, state: Any = _UNSET, url: Any = _UNSET, error: Any = _UNSET) -> None:
        """Change state/url/error and call ``on_state`` once if anything changed."""
        changed = False
        for name, value in (("state", state), ("url", url), ("error", error)):
            if value is not Tunnel._UNSET and getattr(self, name) != value:
                setattr(self, name, value)
                changed = True
        if changed:
            self._call(self.on_state, self, "on_state")

    def _up(self, url: str) -> None:
        new = url != self.url
        self._set(state="running", url=url, error=None)
        if new:
            self._call(self.on_url, url, "on_url")

    def _call(self, cb: Callable[[Any], Any] | None, arg: Any, what: str) -> None:
        if cb is None:
            return
        try:
            r = cb(arg)
            if inspect.isawaitable(r):
                task = asyncio.ensure_future(r)
                self._callbacks.add(task)
                task.add_done_callback(self._callback_done)
        except Exception:  # noqa: BLE001
            log.exception("tunnel %s callback failed", what)

    def _callback_done(self, task: asyncio.Future) -> None:
        self._callbacks.discard(task)  # type: ignore[arg-type]
        if not task.cancelled() and task.exception() is not None:
            log.error("tunnel callback failed", exc_info=task.exception())

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.extra_env)
        if self.spec.kind == "ngrok" and self.authtoken:
            env["NGROK_AUTHTOKEN"] = self.authtoken
        return env

    def _last_output(self) -> str:
        lines = list(self._output)[-8:]
        return ("Its last output:\n  " + "\n  ".join(lines)) if lines else "It printed nothing."

    def _found(self, new_url: list[str], url: str) -> None:
        if not new_url:
            new_url.append(url)
            assert self._url_found is not None
            self._url_found.set()

    async def _launch(self) -> str:
        """Start the tool once and wait for its URL (returned, not yet published)."""
        assert self.binary is not None
        self._output.clear()
        self._url_found = asyncio.Event()
        self._web_addr = None
        new_url: list[str] = []
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *self.spec.argv(self.binary, self.port),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=self._env(),
                start_new_session=True,  # its own process group: stop() ends its children too
                limit=1 << 20,
            )
        except OSError as e:
            raise TunnelError(f"could not run {self.binary}: {e}. {self.spec.install}") from e
        self._reader = asyncio.create_task(self._read(self._proc, new_url))
        waiter = asyncio.create_task(self._url_found.wait())
        exited = asyncio.create_task(self._proc.wait())
        poller = asyncio.create_task(self._poll_ngrok_api(new_url)) if self.spec.kind == "ngrok" else None
        try:
            done, _ = await asyncio.wait({waiter, exited}, timeout=self.start_timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            if poller is not None:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await poller
        if waiter in done or self._url_found.is_set():
            exited.cancel()
            url = new_url[0]
            self.started_at = time.time()
            log.info("%s tunnel up: %s", self.kind, url)
            return url
        if exited in done:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 2)
            raise TunnelError(
                f"{self.kind} exited (status {self._proc.returncode}) before giving a public URL. {self._last_output()}"
            )
        exited.cancel()
        await self._kill()
        raise TunnelError(
            f"{self.kind} ran for {self.start_timeout:g} s without printing a public URL, so it was stopped "
            f"(is this machine online? is the account/authtoken set?). {self._last_output()}"
        )

    async def _read(self, proc: asyncio.subprocess.Process, new_url: list[str]) -> None:
        assert proc.stdout is not None
        while True:
            try:
                raw = await proc.stdout.readline()
            except (ValueError, asyncio.LimitOverrunError):
                continue
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self._output.append(line[:500])
            if self.spec.kind == "ngrok" and self._web_addr is None:
                addr = _ngrok_web_addr(line)
                if addr is not None:
                    if _loopback_api(addr) is not None:
                        self._web_addr = addr
                    else:
                        log.warning("ngrok's web service address %s is not loopback; it will not be polled", addr)
            if not new_url:
                url = self.spec.parse_url(line)
                if url:
                    self._found(new_url, url)

    def _ngrok_api_addr(self) -> tuple[str, int] | None:
        return _loopback_api(self.ngrok_api or self._web_addr or NGROK_API_DEFAULT)

    async def _poll_ngrok_api(self, new_url: list[str]) -> None:
        """ngrok: while no URL was logged, ask the agent API ``/api/tunnels`` every ``NGROK_API_POLL`` s."""
        deadline = time.monotonic() + self.start_timeout + 1
        while not new_url and time.monotonic() < deadline:
            await asyncio.sleep(NGROK_API_POLL)
            if new_url:
                return
            target = self._ngrok_api_addr()
            if target is None:  # defensive: every address is checked before it is stored
                continue
            url = _ngrok_api_url(await _http_get_json(*target, "/api/tunnels"), self.port)
            if url:
                log.info("%s public URL read from its agent API at %s:%s", self.kind, *target)
                self._found(new_url, url)
                return

    async def _supervise(self) -> None:
        delay = self.backoff_initial
        failures = 0
        while not self._stopping:
            proc = self._proc
            assert proc is not None
            launched = time.monotonic()
            code = await proc.wait()
            if self._stopping:
                return
            if time.monotonic() - launched >= self.stable_after:
                delay, failures = self.backoff_initial, 0
            log.warning("%s tunnel exited (status %s); restarting in %.1f s. %s", self.kind, code, delay, self._last_output())
            self._set(state="restarting", error=f"{self.kind} exited (status {code}); restarting")
            while not self._stopping:
                if self.max_restarts is not None and failures >= self.max_restarts:
                    self._set(
                        state="failed",
                        error=f"{self.kind} kept exiting; gave up after {failures} restarts. {self._last_output()}",
                    )
                    log.error("%s", self.error)
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff_max)
                failures += 1
                self.restarts += 1
                try:
                    url = await self._launch()
                except TunnelError as e:
                    self._set(error=str(e))
                    log.warning("%s tunnel restart failed: %s", self.kind, e)
                    continue
                self._up(url)
                break

    async def _kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.returncode is None:
            for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, sig)
                try:
                    await asyncio.wait_for(proc.wait(), wait)
                    break
                except asyncio.TimeoutError:
                    continue
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
            self._reader = None
