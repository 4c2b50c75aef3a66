"""Run a tunnel tool (ngrok, cloudflared, localtunnel) next to the gateway and keep it running.

:class:`Tunnel` is the object the CLI, admin API and TUI use: ``await start()`` launches the tool,
waits for the public URL it prints and returns it; a supervisor task restarts the tool with
exponential backoff when it exits; ``await stop()`` ends it (its whole process group);
``status()`` is a JSON-friendly snapshot.

The public URL is read from the tool's own output:

* ngrok (v3): ``ngrok http http://127.0.0.1:PORT --log stdout --log-format json``; the
  ``"started tunnel"`` JSON log line carries ``"url"``. The authtoken is passed in the
  ``NGROK_AUTHTOKEN`` environment variable (not on the command line, where ``ps`` shows it).
* cloudflared: ``cloudflared tunnel --no-autoupdate --url http://127.0.0.1:PORT`` (a quick tunnel,
  no account); it prints ``https://<words>.trycloudflare.com`` in a box on stderr.
* localtunnel: ``lt --port PORT --local-host 127.0.0.1`` prints ``your url is: https://...``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
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

__all__ = ["TOOLS", "Tunnel", "TunnelError", "ToolSpec", "find_binary", "tunnel_from_settings"]

log = logging.getLogger("antiapi.tunnels")


class TunnelError(Exception):
    """The tunnel cannot be started; the message says why and what to do."""


_CF_URL = re.compile(r"https://(?!api\.)[-a-z0-9]+\.trycloudflare\.com")
_LT_URL = re.compile(r"your url is:\s*(https://\S+)", re.IGNORECASE)


def _ngrok_url(line: str) -> str | None:
    s = line.strip()
    if s.startswith("{"):
        try:
            obj = json.loads(s)
        except ValueError:
            return None
        url = obj.get("url") if isinstance(obj, dict) else None
        if isinstance(url, str) and url.startswith("https://"):
            return url
        return None
    m = re.search(r"url=(https://\S+)", s)  # logfmt output (--log-format logfmt)
    return m.group(1) if m else None


def _cf_url(line: str) -> str | None:
    m = _CF_URL.search(line)
    return m.group(0) if m else None


def _lt_url(line: str) -> str | None:
    m = _LT_URL.search(line)
    return m.group(1) if m else None


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
            "then give antiapi your authtoken from https://dashboard.ngrok.com (setting tunnel.authtoken) "
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


def _spec(kind: str) -> ToolSpec:
    k = _ALIASES.get(kind, kind)
    if k not in TOOLS:
        raise TunnelError(f"unknown tunnel {kind!r}; choose one of: {', '.join(TOOLS)}")
    return TOOLS[k]


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
        f"Or set tunnel.binary to its full path."
    )


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
        env: Mapping[str, str] | None = None,
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
        self.extra_env = dict(env or {})
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
        self.error = None
        self.restarts = 0
        self.state = "starting"
        try:
            self.binary = find_binary(self.spec.kind, self.binary_setting)
            url = await self._launch()
        except TunnelError as e:
            self.state, self.error = "failed", str(e)
            raise
        self.state = "running"
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
        self.state = "stopped"
        self.url = None

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

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.extra_env)
        if self.spec.kind == "ngrok" and self.authtoken:
            env["NGROK_AUTHTOKEN"] = self.authtoken
        return env

    def _last_output(self) -> str:
        lines = list(self._output)[-8:]
        return ("Its last output:\n  " + "\n  ".join(lines)) if lines else "It printed nothing."

    async def _launch(self) -> str:
        assert self.binary is not None
        self._output.clear()
        self._url_found = asyncio.Event()
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
        try:
            done, _ = await asyncio.wait({waiter, exited}, timeout=self.start_timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if waiter in done or self._url_found.is_set():
            exited.cancel()
            url = new_url[0]
            self.started_at = time.time()
            if url != self.url:
                self.url = url
                if self.on_url is not None:
                    try:
                        self.on_url(url)
                    except Exception:  # noqa: BLE001
                        log.exception("tunnel on_url callback failed")
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
            if not new_url:
                url = self.spec.parse_url(line)
                if url:
                    new_url.append(url)
                    assert self._url_found is not None
                    self._url_found.set()

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
            self.state = "restarting"
            self.error = f"{self.kind} exited (status {code}); restarting"
            while not self._stopping:
                if self.max_restarts is not None and failures >= self.max_restarts:
                    self.state = "failed"
                    self.error = f"{self.kind} kept exiting; gave up after {failures} restarts. {self._last_output()}"
                    log.error("%s", self.error)
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff_max)
                failures += 1
                self.restarts += 1
                try:
                    await self._launch()
                except TunnelError as e:
                    self.error = str(e)
                    log.warning("%s tunnel restart failed: %s", self.kind, e)
                    continue
                self.state, self.error = "running", None
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


def tunnel_from_settings(settings: Mapping[str, Any], port: int, **kw: Any) -> Tunnel | None:
    """Build the configured tunnel from the ``tunnel`` setting, or ``None`` when none is set.

    ``settings["tunnel"]`` = ``{"provider": "ngrok"|"cloudflared"|"localtunnel", "binary": path?,
    "authtoken": ngrok token?, "start_timeout": seconds?}`` (a bare string means just the provider).
    """
    t = settings.get("tunnel")
    if not t:
        return None
    if isinstance(t, str):
        t = {"provider": t}
    if not isinstance(t, Mapping) or not t.get("provider"):
        raise TunnelError("the tunnel setting needs a provider: ngrok, cloudflared or localtunnel")
    opts: dict[str, Any] = {"binary": t.get("binary"), "authtoken": t.get("authtoken")}
    if t.get("start_timeout"):
        opts["start_timeout"] = float(t["start_timeout"])
    opts.update(kw)
    return Tunnel(str(t["provider"]), port, **opts)
