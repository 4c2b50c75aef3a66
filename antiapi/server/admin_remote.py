"""The admin API's remote-access resources: client keys and the tunnel (``/admin/keys``,
``/admin/remote``), as a mixin of :class:`~antiapi.server.admin_backend.GatewayAdminBackend`.

The work is done by :class:`antiapi.server.remote.RemoteAccess` (``self.remote``, set by
``create_app``); this mixin turns it into :mod:`antiapi.wire.admin` Structs and publishes
``remote`` / ``keys`` events (the tunnel's own changes — a crash, a new URL after a restart —
included, through the ``RemoteAccess`` listener).

May import: antiapi.server.admin, antiapi.server.remote, antiapi.wire, stdlib, msgspec. Never
textual or antiapi.tui.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from antiapi.server.admin import AdminError
from antiapi.server.remote import RemoteAccess, RemoteProblem
from antiapi.wire import admin as w

__all__ = ["RemoteAdminMixin"]


def _key_info(k: Any, requests_today: int = 0, tokens_today: int = 0) -> w.ClientKeyInfo:
    return w.ClientKeyInfo(
        id=k.id, name=k.name, prefix=k.prefix, created_at=k.created_at, last_used_at=k.last_used_at,
        revoked=k.revoked, revoked_at=k.revoked_at, rpm_limit=k.rpm_limit, tokens_per_day=k.tokens_per_day,
        requests_today=requests_today, tokens_today=tokens_today,
    )


def _admin_error(e: RemoteProblem) -> AdminError:
    return AdminError(e.message, status=e.status, code=e.code)


class RemoteAdminMixin:
    """Client keys and the tunnel for the admin API (needs ``self.remote`` and ``self.hub``)."""

    remote: RemoteAccess | None = None
    hub: Any
    _ui: dict[str, bool]
    _last_remote: w.RemoteView | None = None
    _last_key_count: int | None = None

    def attach_remote(self, remote: RemoteAccess) -> None:
        """Serve ``remote`` and publish its changes as ``remote`` events."""
        self.remote = remote
        remote.listeners.append(self._remote_changed)

    def _need_remote(self) -> RemoteAccess:
        if self.remote is None:
            raise NotImplementedError("this gateway has no remote-access settings (no state database)")
        return self.remote

    def _remote_view(self) -> w.RemoteView:
        r = self._need_remote()
        return msgspec.convert(r.view(auto_start=bool(self._ui.get("auto_start_tunnel"))), w.RemoteView, strict=False)

    def _remote_changed(self) -> None:
        if self.remote is None or not self.hub.subscribers:
            return
        view = self._remote_view()
        if view != self._last_remote:
            self._last_remote = view
            self.hub.publish(w.RemoteEvent(view))

    def _exposure(self) -> dict[str, Any]:
        """The status line's exposure fields."""
        r = self.remote
        if r is None:
            return {}
        t = r.tunnel
        return {"keys_required": r.keys_enforced(),
                "tunnel_url": t.url if t is not None and r.tunnel_active() else None}

    def _check_remote_changes(self) -> None:
        """Called by the backend's watcher every second while someone listens. The tunnel reports
        its own changes (``RemoteAccess.listeners``); what it cannot report is a key created or
        revoked with ``antiapi keys`` (seen by the verifier's reload), so only a change in the
        number of active keys rebuilds and publishes the view here."""
        r = self.remote
        if r is not None and r.verifier.count != self._last_key_count:
            self._last_key_count = r.verifier.count
            self._remote_changed()

    # ------------------------------------------------------------------ keys

    async def _keys_now(self) -> list[w.ClientKeyInfo]:
        r = self._need_remote()
        try:
            rows = await asyncio.to_thread(r.list_keys)
        except RemoteProblem as e:
            raise _admin_error(e) from None
        return [_key_info(k, n, t) for k, n, t in rows]

    async def _keys_changed(self) -> None:
        self.hub.publish(w.KeysEvent(await self._keys_now()))
        self._remote_changed()

    async def keys(self) -> list[w.ClientKeyInfo]:
        return await self._keys_now()

    async def create_key(self, body: w.KeyCreate) -> w.KeyCreated:
        r = self._need_remote()
        try:
            k, secret = await asyncio.to_thread(r.create_key, body.name, body.rpm_limit, body.tokens_per_day)
        except RemoteProblem as e:
            raise _admin_error(e) from None
        await self._keys_changed()
        return w.KeyCreated(key=_key_info(k), secret=secret)

    async def update_key(self, ident: str, patch: w.KeyPatch) -> w.ClientKeyInfo:
        r = self._need_remote()
        rpm = ... if patch.rpm_limit is msgspec.UNSET else patch.rpm_limit
        tpd = ... if patch.tokens_per_day is msgspec.UNSET else patch.tokens_per_day
        try:
            k = await asyncio.to_thread(r.set_limits, ident, rpm, tpd)
        except RemoteProblem as e:
            raise _admin_error(e) from None
        await self._keys_changed()
        return _key_info(k)

    async def revoke_key(self, ident: str) -> w.ClientKeyInfo:
        r = self._need_remote()
        try:
            k = await asyncio.to_thread(r.revoke_key, ident)
        except RemoteProblem as e:
            raise _admin_error(e) from None
        await self._keys_changed()
        return _key_info(k)

    # ------------------------------------------------------------------ tunnel

    async def remote_view(self) -> w.RemoteView:
        return self._remote_view()

    async def update_remote(self, patch: w.RemotePatch) -> w.RemoteView:
        r = self._need_remote()
        changes = {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not msgspec.UNSET}
        try:
            r.update_settings(**changes)
        except RemoteProblem as e:
            raise _admin_error(e) from None
        return self._remote_view()

    async def start_tunnel(self, body: w.TunnelStart) -> w.RemoteView:
        r = self._need_remote()
        try:
            await r.start_tunnel(body.provider)
        except RemoteProblem as e:
            raise _admin_error(e) from None
        return self._remote_view()

    async def stop_tunnel(self) -> w.RemoteView:
        await self._need_remote().stop_tunnel()
        return self._remote_view()
