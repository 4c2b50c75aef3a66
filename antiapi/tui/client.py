"""How the TUI talks to a gateway: the :class:`AdminClient` protocol and its HTTP implementation.

The protocol mirrors the server's ``AdminBackend`` method for method, so a test can hand the app
an in-process fake (or the fake backend itself) instead of :class:`HttpAdminClient`.

May import: antiapi.wire.admin, antiapi.wire.sse (pure), antiapi.errors, httpx, stdlib.
Never litestar, server, providers or routing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from antiapi.wire import admin as w
from antiapi.wire.sse import SSEDecoder

__all__ = ["AdminAPIError", "AdminClient", "AdminUnavailable", "HttpAdminClient"]

T = TypeVar("T")


class AdminAPIError(Exception):
    """The admin API answered with an error (``status``, ``code``, ``message``, ``details``)."""

    def __init__(self, status: int, code: str, message: str, details: list[str] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []

    def __str__(self) -> str:
        text = self.message
        if self.details:
            text += ": " + "; ".join(self.details)
        return text


class AdminUnavailable(AdminAPIError):
    """The gateway cannot be reached (not running, wrong URL, network)."""

    def __init__(self, message: str) -> None:
        super().__init__(0, "unavailable", message)


class AdminClient(Protocol):
    """Everything the TUI reads and changes. Methods raise :class:`AdminAPIError`."""

    url: str

    async def status(self) -> w.Status: ...
    async def providers(self) -> list[w.ProviderType]: ...
    async def accounts(self) -> list[w.AccountInfo]: ...
    async def set_account_enabled(self, name: str, enabled: bool) -> w.AccountInfo: ...
    async def remove_account(self, name: str) -> None: ...
    async def add_api_key(self, account: w.ApiKeyAccount) -> w.AccountInfo: ...
    async def start_signin(self, provider: str, mode: str | None = None) -> w.SignInFlow: ...
    async def signin(self, flow_id: str) -> w.SignInFlow: ...
    async def complete_signin(self, flow_id: str, pasted: str) -> w.SignInFlow: ...
    async def cancel_signin(self, flow_id: str) -> w.SignInFlow: ...
    async def routing(self) -> w.RoutingView: ...
    async def put_flow(self, name: str, edit: w.ChainEdit) -> w.Flow: ...
    async def delete_flow(self, name: str) -> None: ...
    async def put_chain(self, model: str, edit: w.ChainEdit) -> w.Chain: ...
    async def delete_chain(self, model: str) -> None: ...
    async def update_routing(self, patch: w.RoutingPatch) -> w.RoutingView: ...
    async def settings(self) -> w.Settings: ...
    async def update_settings(self, patch: w.SettingsPatch) -> w.Settings: ...
    async def quotas(self) -> list[w.AccountQuota]: ...
    async def usage(self, by: str = "account", since: float | None = None, until: float | None = None) -> list[w.UsageAggregate]: ...
    async def requests(self, query: w.RequestQuery) -> list[w.RequestRecord]: ...
    async def request(self, request_id: str) -> w.RequestRecord: ...
    async def models(self) -> list[w.ModelInfo]: ...
    async def keys(self) -> list[w.ClientKeyInfo]: ...
    async def create_key(self, body: w.KeyCreate) -> w.KeyCreated: ...
    async def update_key(self, ident: str, patch: w.KeyPatch) -> w.ClientKeyInfo: ...
    async def revoke_key(self, ident: str) -> w.ClientKeyInfo: ...
    async def remote_view(self) -> w.RemoteView: ...
    async def update_remote(self, patch: w.RemotePatch) -> w.RemoteView: ...
    async def start_tunnel(self, body: w.TunnelStart) -> w.RemoteView: ...
    async def stop_tunnel(self) -> w.RemoteView: ...

    def events(self) -> AsyncIterator[w.AdminEvent]:
        """Live events until the connection drops (then the iterator ends or raises)."""
        ...

    async def aclose(self) -> None: ...


_error_decoder = msgspec.json.Decoder(w.ErrorBody)
_encoder = msgspec.json.Encoder()


def _seg(value: str) -> str:
    return quote(value, safe="@:+")


class HttpAdminClient:
    """The admin API over HTTP (httpx), events over SSE.

    Args:
        url: the gateway's base URL (``http://127.0.0.1:8964``).
        token: the admin token.
        transport: an httpx transport (tests).
        timeout: seconds for ordinary calls (the event stream has no read timeout).
    """

    def __init__(self, url: str, token: str, *, transport: httpx.AsyncBaseTransport | None = None, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.url + "/admin",
            headers={"authorization": f"Bearer {token}", "user-agent": "antiapi-tui"},
            timeout=httpx.Timeout(timeout),
            transport=transport,
            trust_env=False,  # the admin API is local: never send it (or the token) through a proxy
        )

    def __repr__(self) -> str:
        return f"HttpAdminClient({self.url!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    # ---------------------------------------------------------------- plumbing

    async def _call(
        self, method: str, path: str, typ: Any, *, body: Any = None, params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        content = _encoder.encode(body) if body is not None else None
        headers = {"content-type": "application/json"} if content is not None else None
        extra: dict[str, Any] = {} if timeout is None else {"timeout": httpx.Timeout(timeout)}
        try:
            resp = await self._http.request(method, path, content=content, headers=headers, params=params, **extra)
        except httpx.HTTPError as e:
            raise AdminUnavailable(f"cannot reach the gateway at {self.url}: {e or type(e).__name__}") from e
        if resp.status_code >= 400:
            raise _api_error(resp.status_code, resp.content)
        if typ is None:
            return None
        try:
            return msgspec.json.decode(resp.content, type=typ)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            raise AdminAPIError(resp.status_code, "bad_response", f"unexpected answer from {path}: {e}") from e

    # ---------------------------------------------------------------- resources

    async def status(self) -> w.Status:
        return await self._call("GET", "/status", w.Status)

    async def providers(self) -> list[w.ProviderType]:
        return await self._call("GET", "/providers", list[w.ProviderType])

    async def accounts(self) -> list[w.AccountInfo]:
        return await self._call("GET", "/accounts", list[w.AccountInfo])

    async def set_account_enabled(self, name: str, enabled: bool) -> w.AccountInfo:
        return await self._call("PATCH", f"/accounts/{_seg(name)}", w.AccountInfo, body=w.AccountPatch(enabled))

    async def remove_account(self, name: str) -> None:
        await self._call("DELETE", f"/accounts/{_seg(name)}", None)

    async def add_api_key(self, account: w.ApiKeyAccount) -> w.AccountInfo:
        return await self._call("POST", "/accounts/apikey", w.AccountInfo, body=account)

    async def start_signin(self, provider: str, mode: str | None = None) -> w.SignInFlow:
        return await self._call("POST", "/accounts/signin", w.SignInFlow, body=w.SignInStart(provider, mode))  # type: ignore[arg-type]

    async def signin(self, flow_id: str) -> w.SignInFlow:
        return await self._call("GET", f"/accounts/signin/{_seg(flow_id)}", w.SignInFlow)

    async def complete_signin(self, flow_id: str, pasted: str) -> w.SignInFlow:
        return await self._call("POST", f"/accounts/signin/{_seg(flow_id)}/complete", w.SignInFlow, body=w.SignInComplete(pasted))

    async def cancel_signin(self, flow_id: str) -> w.SignInFlow:
        return await self._call("DELETE", f"/accounts/signin/{_seg(flow_id)}", w.SignInFlow)

    async def routing(self) -> w.RoutingView:
        return await self._call("GET", "/routing", w.RoutingView)

    async def put_flow(self, name: str, edit: w.ChainEdit) -> w.Flow:
        return await self._call("PUT", f"/routing/flows/{_seg(name)}", w.Flow, body=edit)

    async def delete_flow(self, name: str) -> None:
        await self._call("DELETE", f"/routing/flows/{_seg(name)}", None)

    async def put_chain(self, model: str, edit: w.ChainEdit) -> w.Chain:
        return await self._call("PUT", f"/routing/chains/{quote(model, safe='/@:+')}", w.Chain, body=edit)

    async def delete_chain(self, model: str) -> None:
        await self._call("DELETE", f"/routing/chains/{quote(model, safe='/@:+')}", None)

    async def update_routing(self, patch: w.RoutingPatch) -> w.RoutingView:
        return await self._call("PATCH", "/routing", w.RoutingView, body=patch)

    async def settings(self) -> w.Settings:
        return await self._call("GET", "/settings", w.Settings)

    async def update_settings(self, patch: w.SettingsPatch) -> w.Settings:
        return await self._call("PATCH", "/settings", w.Settings, body=patch)

    async def quotas(self) -> list[w.AccountQuota]:
        return await self._call("GET", "/quotas", list[w.AccountQuota])

    async def usage(self, by: str = "account", since: float | None = None, until: float | None = None) -> list[w.UsageAggregate]:
        params: dict[str, Any] = {"by": by}
        if since is not None:
            params["since"] = since
        if until is not None:
            params["until"] = until
        return await self._call("GET", "/usage", list[w.UsageAggregate], params=params)

    async def requests(self, query: w.RequestQuery) -> list[w.RequestRecord]:
        params = {k: v for k, v in msgspec.structs.asdict(query).items() if v is not None}
        return await self._call("GET", "/requests", list[w.RequestRecord], params=params)

    async def request(self, request_id: str) -> w.RequestRecord:
        return await self._call("GET", f"/requests/{_seg(request_id)}", w.RequestRecord)

    async def models(self) -> list[w.ModelInfo]:
        return await self._call("GET", "/models", list[w.ModelInfo])

    async def keys(self) -> list[w.ClientKeyInfo]:
        return await self._call("GET", "/keys", list[w.ClientKeyInfo])

    async def create_key(self, body: w.KeyCreate) -> w.KeyCreated:
        return await self._call("POST", "/keys", w.KeyCreated, body=body)

    async def update_key(self, ident: str, patch: w.KeyPatch) -> w.ClientKeyInfo:
        return await self._call("PATCH", f"/keys/{_seg(ident)}", w.ClientKeyInfo, body=patch)

    async def revoke_key(self, ident: str) -> w.ClientKeyInfo:
        return await self._call("DELETE", f"/keys/{_seg(ident)}", w.ClientKeyInfo)

    async def remote_view(self) -> w.RemoteView:
        return await self._call("GET", "/remote", w.RemoteView)

    async def update_remote(self, patch: w.RemotePatch) -> w.RemoteView:
        return await self._call("PATCH", "/remote", w.RemoteView, body=patch)

    async def start_tunnel(self, body: w.TunnelStart) -> w.RemoteView:
        # a tunnel tool may take its start timeout (30 s by default) to print its URL
        return await self._call("POST", "/remote/tunnel", w.RemoteView, body=body, timeout=90.0)

    async def stop_tunnel(self) -> w.RemoteView:
        return await self._call("DELETE", "/remote/tunnel", w.RemoteView, timeout=30.0)

    # ---------------------------------------------------------------- events

    async def events(self) -> AsyncIterator[w.AdminEvent]:
        """Events from ``GET /admin/events`` until the server closes the stream.

        Raises:
            AdminUnavailable: the connection failed or dropped.
            AdminAPIError: the server refused (e.g. 401).
        """
        timeout = httpx.Timeout(10.0, read=None)
        try:
            async with self._http.stream("GET", "/events", headers={"accept": "text/event-stream"}, timeout=timeout) as resp:
                if resp.status_code >= 400:
                    raise _api_error(resp.status_code, await resp.aread())
                decoder = SSEDecoder()
                async for chunk in resp.aiter_bytes():
                    for frame in decoder.feed(chunk):
                        event = _decode_frame(frame.event, frame.data)
                        if event is not None:
                            yield event
                for frame in decoder.flush():
                    event = _decode_frame(frame.event, frame.data)
                    if event is not None:
                        yield event
        except (httpx.HTTPError, asyncio.IncompleteReadError) as e:
            raise AdminUnavailable(f"lost the event stream from {self.url}: {e or type(e).__name__}") from e


def _decode_frame(name: str | None, data: str) -> w.AdminEvent | None:
    try:
        return w.decode_event(name, data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None  # a broken frame must not end the stream; the next snapshot reload repairs it


def _api_error(status: int, content: bytes) -> AdminAPIError:
    try:
        body = _error_decoder.decode(content)
        return AdminAPIError(status, body.error.code, body.error.message, body.error.details)
    except (msgspec.DecodeError, msgspec.ValidationError):
        text = content.decode("utf-8", errors="replace").strip()[:300]
        return AdminAPIError(status, "http_error", text or f"HTTP {status}")
