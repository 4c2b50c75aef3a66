"""Remote access of one running gateway: its client keys, its tunnel and the exposure rules.

:class:`RemoteAccess` is created by ``create_app`` and shared by the auth middleware
(:meth:`RemoteAccess.keys_required`), the lifespan (:meth:`attach`, :meth:`autostart`,
:meth:`aclose`) and the admin API (keys, tunnel start/stop, tunnel settings).

The rules (see docs/remote-access.md):

* Every gateway request needs a client key when the gateway listens beyond loopback, while a
  tunnel exists (started, restarting, or failed after being asked for: it was meant to expose
  the gateway), and on loopback as soon as one active key exists.
* A tunnel never opens while no active client key exists (:class:`RemoteProblem` 409, naming
  the fix), and the last active key cannot be revoked from the dashboard while the gateway is
  exposed (the clients would all be locked out; create another key first).
* The tunnel settings (tool, binary) live in the state store's ``settings`` table
  (``tunnel.provider``, ``tunnel.binary``); the ngrok authtoken, a secret, in
  ``<data dir>/tunnel_authtoken`` (0600, written atomically) and is never returned.
* The ``ui.auto_start_tunnel`` setting (the dashboard's "Auto-start tunnel") starts the saved tool
  when the gateway starts; ``antiapi serve --tunnel KIND`` starts KIND whatever the setting.

May import: antiapi.security, antiapi.tunnels, antiapi.paths, msgspec, stdlib. Never litestar or textual.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec

from antiapi.paths import save_text_atomic
from antiapi.security.exposure import CREATE_HINT
from antiapi.security.keys import ClientKey, KeyProblem, KeyStore, KeyVerifier
from antiapi.tunnels import TOOLS, Tunnel, TunnelError, tool_kind, tool_status

__all__ = ["AUTHTOKEN_FILENAME", "RemoteAccess", "RemoteProblem"]

log = logging.getLogger("antiapi.remote")

AUTHTOKEN_FILENAME = "tunnel_authtoken"
_ACTIVE = ("starting", "running", "restarting", "failed")


class RemoteProblem(Exception):
    """A remote-access request that cannot be done; ``status`` and ``code`` for the admin API."""

    def __init__(self, message: str, *, status: int = 422, code: str = "invalid_value") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


def _kind(name: str) -> str:
    """A tunnel tool's canonical name (``lt`` -> ``localtunnel``), else :class:`RemoteProblem` 422."""
    try:
        return tool_kind(name)
    except TunnelError as e:
        raise RemoteProblem(str(e)) from None


_KEY_PROBLEM_STATUS = {"not_found": (404, "not_found"), "conflict": (409, "conflict")}


def _problem(e: KeyProblem) -> RemoteProblem:
    status, code = _KEY_PROBLEM_STATUS.get(e.reason, (422, "invalid_value"))
    return RemoteProblem(str(e), status=status, code=code)


def _utc_day_start(t: float) -> float:
    return (t // 86400) * 86400.0


class RemoteAccess:
    """Client keys, the tunnel and the exposure of one gateway.

    Args:
        verifier: the app's :class:`KeyVerifier` (the middleware checks keys with it).
        host: the address the gateway listens on.
        exposed: it listens beyond loopback.
        data_dir: where the ngrok authtoken file lives (None: not saved).
        url: a callable giving the gateway's URL (its port is what the tunnel forwards to).
        tunnel_kind: ``antiapi serve --tunnel KIND``: start this tunnel with the gateway.
        tunnel_factory: builds a tunnel (``antiapi.tunnels.Tunnel`` by default; tests may swap it).
        clock: wall clock (epoch seconds).
    """

    def __init__(
        self,
        verifier: KeyVerifier,
        *,
        host: str = "127.0.0.1",
        exposed: bool = False,
        data_dir: Path | None = None,
        url: Callable[[], str | None] = lambda: None,
        tunnel_kind: str | None = None,
        tunnel_factory: Callable[..., Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.verifier = verifier
        self.host = host
        self.exposed = exposed
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.url = url
        self.cli_tunnel = _kind(tunnel_kind) if tunnel_kind else None
        self.tunnel_factory = tunnel_factory
        self.clock = clock
        self.store: Any = None
        self.tunnel: Any = None
        self.provider: str | None = None
        self.binary: str | None = None
        #: the dashboard's "Auto-start tunnel" setting (``ui.auto_start_tunnel``), read at attach
        self.auto_start = False
        #: why the last start did not happen (shown while no tunnel exists)
        self.note: str | None = None
        #: called (on the event loop) after anything a dashboard shows changed
        self.listeners: list[Callable[[], None]] = []
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ rules

    def tunnel_active(self) -> bool:
        t = self.tunnel
        return t is not None and t.state in _ACTIVE

    def keys_required(self) -> bool:
        """Whether the gateway is reachable by others now (the middleware also requires a key as
        soon as one exists)."""
        return self.exposed or self.tunnel_active() or self.cli_tunnel is not None

    def keys_enforced(self) -> bool:
        """Whether every gateway request needs a client key now (what the middleware applies)."""
        return self.keys_required() or self.verifier.count > 0

    # ------------------------------------------------------------------ lifecycle

    async def attach(self, store: Any) -> None:
        """Read the tunnel settings and the auto-start switch from the (open) state store."""
        self.store = store
        if store is None:
            return
        rows = await store.aquery(
            "SELECT key, value FROM settings WHERE key IN ('tunnel.provider', 'tunnel.binary', 'ui.auto_start_tunnel')")
        values = {r["key"]: msgspec.json.decode(r["value"]) for r in rows}
        self.provider = values.get("tunnel.provider") or None
        self.binary = values.get("tunnel.binary") or None
        self.auto_start = bool(values.get("ui.auto_start_tunnel"))

    async def autostart(self) -> None:
        """Start the tunnel of ``--tunnel`` or, when auto-start is on, the saved one. Problems are
        logged (the gateway keeps serving locally)."""
        kind = self.cli_tunnel or (self.provider if self.auto_start else None)
        if kind is None:
            if self.auto_start:
                log.warning("auto-start tunnel is on but no tunnel tool is chosen; choose one on the dashboard's Remote screen")
            return
        for _ in range(100):  # an embedding that did not pass the URL learns it from the first request
            if self._port() is not None:
                break
            await asyncio.sleep(0.1)
        try:
            url = await self.start_tunnel(kind)
        except RemoteProblem as e:
            log.error("the %s tunnel did not start: %s", kind, e.message)
            self.note = f"not started with the server: {e.message}"
            self._changed()
            return
        log.warning("tunnel %s is up: %s (every request must carry a client key)", kind, url)

    async def aclose(self) -> None:
        t = self.tunnel
        if t is not None:
            try:
                await t.stop()
            except Exception:
                log.exception("stopping the tunnel failed")

    def _changed(self, *_: Any) -> None:
        for fn in list(self.listeners):
            try:
                fn()
            except Exception:
                log.exception("remote-access listener failed")

    # ------------------------------------------------------------------ tunnel

    def _port(self) -> int | None:
        url = self.url()
        if not url:
            return None
        try:
            return urlsplit(url).port
        except ValueError:
            return None

    def _authtoken_path(self) -> Path | None:
        return self.data_dir / AUTHTOKEN_FILENAME if self.data_dir is not None else None

    def authtoken(self) -> str | None:
        path = self._authtoken_path()
        if path is None:
            return None
        try:
            return path.read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None

    async def _active_keys(self) -> int:
        if self.verifier.store is not None:
            await self.verifier.areload()  # keys created with `antiapi keys` a moment ago count
        return self.verifier.count

    async def start_tunnel(self, provider: str | None = None) -> str:
        """Start (or restart with another tool) the tunnel; returns its public URL.

        Raises:
            RemoteProblem: no tool chosen (422), no client key (409), the tool is missing or
                failed (422, with how to install it or what it printed).
        """
        async with self._lock:
            kind = _kind(provider) if provider else self.provider
            if not kind:
                raise RemoteProblem(
                    f"choose a tunnel tool first ({', '.join(TOOLS)}): on the Remote screen, or PATCH /admin/remote "
                    '{"provider": "cloudflared"}', code="no_tunnel_tool")
            if await self._active_keys() == 0:
                raise RemoteProblem(
                    "A tunnel makes antiapi reachable from the internet, and no client key exists, so anyone who "
                    "finds the URL could spend your accounts' quota. Create a client key first (Remote screen: n, or "
                    f"`{CREATE_HINT}`), give it to your clients as their API key, then start the tunnel.",
                    status=409, code="client_key_required")
            port = self._port()
            if port is None:
                raise RemoteProblem("the gateway's own address is not known yet; try again in a moment", status=503,
                                    code="not_ready")
            self.note = None
            old = self.tunnel
            if old is not None and old.state in _ACTIVE:
                if old.kind == kind and old.state in ("running", "restarting") and old.url:
                    return old.url
                await old.stop()
            tunnel = self._make_tunnel(kind, port)
            self.tunnel = tunnel
            self._changed()
            try:
                url = await tunnel.start()
            except TunnelError as e:
                self._changed()
                raise RemoteProblem(str(e), code="tunnel_failed") from None
            self._changed()
            return url

    def _make_tunnel(self, kind: str, port: int) -> Any:
        factory = self.tunnel_factory or Tunnel
        kw: dict[str, Any] = {"binary": self.binary, "on_state": self._changed}
        if kind == "ngrok":
            kw["authtoken"] = self.authtoken()
        return factory(kind, port, **kw)

    async def stop_tunnel(self) -> None:
        async with self._lock:
            t = self.tunnel
            if t is None:
                return
            await t.stop()
            self.cli_tunnel = None  # stopped on purpose: loopback rules apply again
            self._changed()

    def update_settings(self, *, provider: Any = ..., binary: Any = ..., authtoken: Any = ...) -> None:
        """Change the saved tunnel tool, binary and ngrok authtoken (``...``: unchanged; None or
        empty: cleared)."""
        if provider is not ...:
            kind = _kind(provider) if provider else None
            self.provider = kind
            if self.store is not None:
                self.store.put_setting("tunnel.provider", kind)
        if binary is not ...:
            self.binary = (binary or "").strip() or None
            if self.store is not None:
                self.store.put_setting("tunnel.binary", self.binary)
        if authtoken is not ...:
            path = self._authtoken_path()
            if path is None:
                raise RemoteProblem("this gateway has no data directory to keep the authtoken in")
            value = (authtoken or "").strip()
            if value:
                if any(c.isspace() for c in value):
                    raise RemoteProblem("the ngrok authtoken must not contain spaces; copy it from https://dashboard.ngrok.com")
                save_text_atomic(path, value + "\n", mode=0o600)
            else:
                path.unlink(missing_ok=True)
        self._changed()

    def tunnel_status(self) -> dict[str, Any]:
        t = self.tunnel
        if t is None:
            return {"kind": None, "state": "stopped", "error": self.note}
        return dict(t.status())

    def tools(self) -> list[dict[str, Any]]:
        """Each tool, installed or not (the saved executable applies to the saved tool)."""
        return tool_status({self.provider: self.binary} if self.provider else None)

    def view(self, auto_start: bool = False) -> dict[str, Any]:
        """Everything the Remote screen shows (the fields of ``wire.admin.RemoteView``)."""
        return {
            "host": self.host,
            "exposed": self.exposed,
            "keys_required": self.keys_enforced(),
            "active_keys": self.verifier.count,
            "tunnel": self.tunnel_status(),
            "provider": self.provider,
            "binary": self.binary,
            "authtoken_set": self.authtoken() is not None,
            "auto_start": auto_start,
            "tools": self.tools(),
        }

    # ------------------------------------------------------------------ keys

    def _keystore(self) -> KeyStore:
        if self.store is None:
            raise RemoteProblem("client keys need the state database, which is not open", status=503, code="no_store")
        return KeyStore(self.store, verifier=self.verifier, clock=self.clock)

    def _usage_today(self) -> dict[str, tuple[int, int]]:
        if self.store is None:
            return {}
        rows = self.store.query(
            "SELECT client_key, count(*) AS n, sum(input_tokens + output_tokens) AS tokens FROM usage "
            "WHERE time >= ? AND client_key IS NOT NULL GROUP BY client_key",
            (_utc_day_start(self.clock()),),
        )
        return {r["client_key"]: (int(r["n"] or 0), int(r["tokens"] or 0)) for r in rows}

    def list_keys(self) -> list[tuple[ClientKey, int, int]]:
        """(key, requests today, tokens today) for every key, revoked ones included (blocking)."""
        keys = self._keystore().list()
        usage = self._usage_today()  # by key name, as usage records carry it
        active_names = {k.name for k in keys if not k.revoked}
        out = []
        for k in keys:
            # a revoked key's name may live on in a new key: its usage is the new key's
            shadowed = k.revoked and k.name in active_names
            n, tokens = (0, 0) if shadowed else usage.get(k.name, (0, 0))
            out.append((k, n, tokens))
        return out

    def create_key(self, name: str, rpm_limit: int | None, tokens_per_day: int | None) -> tuple[ClientKey, str]:
        try:
            created = self._keystore().create(name, rpm_limit=rpm_limit, tokens_per_day=tokens_per_day)
        except KeyProblem as e:
            raise _problem(e) from None
        return created

    def revoke_key(self, ident: str) -> ClientKey:
        ks = self._keystore()
        try:
            k = ks.get(ident)
        except KeyProblem as e:
            raise _problem(e) from None
        active = ks.list(include_revoked=False)
        if not k.revoked and len(active) == 1 and (self.exposed or self.tunnel_active()):
            what = "a tunnel is open" if self.tunnel_active() else f"antiapi listens on {self.host}"
            raise RemoteProblem(
                f"{k.name} is the last active client key and {what}: revoking it would lock every client out. "
                "Create another key first (or stop the tunnel), then revoke this one.",
                status=409, code="last_key")
        return ks.revoke(k.id)

    def set_limits(self, ident: str, rpm_limit: Any, tokens_per_day: Any) -> ClientKey:
        ks = self._keystore()
        try:
            k = ks.get(ident)
            if k.revoked:
                raise KeyProblem(f"the client key {k.id} ({k.name}) is revoked; create a new one")
            rpm = k.rpm_limit if rpm_limit is ... else rpm_limit
            tpd = k.tokens_per_day if tokens_per_day is ... else tokens_per_day
            return ks.set_limits(k.id, rpm_limit=rpm, tokens_per_day=tpd)
        except KeyProblem as e:
            raise _problem(e) from None

