"""The admin API under ``/admin``: JSON resources and a live event stream, always token-protected.

Public names:

* :class:`AdminBackend` — the protocol the gateway implements (status, accounts, sign-in, routing,
  settings, quotas, usage, request log, models, events). Everything the API returns or accepts is
  a Struct of :mod:`antiapi.wire.admin`.
* :func:`admin_router` — ``admin_router(backend, token) -> Router`` (mount it in the app).
* :func:`load_or_create_token` — the token in ``<data_dir>/admin_token`` (0600), created once.
* :func:`web_handlers` — ``/quota``, ``/routing``, ``/settings``, ``/remote-panel``: a redirect to
  the web TUI (``antiapi tui --web``) or a page explaining how to start it.
* Helpers for a backend: :class:`EventHub` (fan-out of admin events to SSE subscribers),
  :class:`SignInManager` (runs Codex/Copilot sign-in flow objects as flows with ids), and the
  converters :func:`quota_from_view`, :func:`record_from_usage`, :func:`aggregate_from_row`.

Errors a backend raises become JSON :class:`~antiapi.wire.admin.ErrorBody` answers:
``LookupError`` (``KeyError``) -> 404, ``ValueError`` -> 422, ``NotImplementedError`` -> 501 (its
message is shown to the user, e.g. "add API keys in the config file"), :class:`AdminError` -> its
own status. A request without the right token gets 401 and never any data.

May import: litestar, msgspec, antiapi.wire, antiapi.paths, stdlib. Never tui, never textual.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import html
import logging
import os
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import msgspec
from litestar import Request, Response, Router, delete, get, patch, post, put
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import Redirect, Stream

from antiapi.errors import GatewayError
from antiapi.paths import save_text_atomic
from antiapi.wire import admin as w
from antiapi.wire.sse import KEEPALIVE_COMMENT, encode_event

__all__ = [
    "TOKEN_FILENAME",
    "AdminBackend",
    "AdminError",
    "EventHub",
    "SignInManager",
    "admin_router",
    "admin_openapi_config",
    "aggregate_from_row",
    "load_or_create_token",
    "quota_from_view",
    "record_from_usage",
    "web_handlers",
]

log = logging.getLogger("antiapi.admin")

TOKEN_FILENAME = "admin_token"
_MAX_LIMIT = 1000


# ---------------------------------------------------------------------------------------- protocol


@runtime_checkable
class AdminBackend(Protocol):
    """What the admin API needs from the gateway. Every method may raise ``LookupError`` (404),
    ``ValueError`` (422), ``NotImplementedError`` (501) or :class:`AdminError`.

    Where the gateway already has the data (a guide for the implementation):

    * ``status``: requests/errors in the last 60 s from ``UsageLog.recent``.
    * ``accounts`` / ``set_account_enabled``: ``RoutingService.accounts_view()`` /
      ``set_account_enabled`` (publish an ``AccountsEvent`` after a change).
    * ``start_signin`` & co.: a :class:`SignInManager` over the Codex/Copilot sign-in objects;
      its ``on_done`` adds the new account (build the provider, route its models).
    * ``routing`` / ``put_flow`` / ``put_chain`` / ``update_routing``: ``RoutingService``
      (``put_flow(name, [msgspec.structs.asdict(e) for e in edit.entries], edit.strategy)``;
      its ``ValueError`` becomes a 422); ``targets`` = account names + provider types.
    * ``settings``: ``RoutingSettings`` (default/background model, patterns) plus the tunnel and
      browser options.
    * ``quotas``: ``[quota_from_view(v) for v in RoutingService.quota_view()]``.
    * ``usage``: ``Store.usage_summary(by, since, until)`` via :func:`aggregate_from_row`.
    * ``requests`` / ``request``: ``UsageLog.recent`` (newest first, filtered with
      ``wire.admin.request_matches``) or ``Store.recent_usage``, via :func:`record_from_usage`.
    * ``events``: ``EventHub.subscribe()``; publish a ``RequestEvent`` per usage record and a
      ``QuotaEvent`` when an account's quota view changes.
    """

    async def status(self) -> w.Status: ...

    async def providers(self) -> list[w.ProviderType]: ...

    async def accounts(self) -> list[w.AccountInfo]: ...

    async def set_account_enabled(self, name: str, enabled: bool) -> w.AccountInfo: ...

    async def remove_account(self, name: str) -> None: ...

    async def add_api_key(self, account: w.ApiKeyAccount) -> w.AccountInfo: ...

    async def start_signin(self, provider: str, mode: str | None) -> w.SignInFlow: ...

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

    async def usage(self, by: str, since: float | None, until: float | None) -> list[w.UsageAggregate]: ...

    async def requests(self, query: w.RequestQuery) -> list[w.RequestRecord]:
        """Newest first, at most ``query.limit``."""
        ...

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
        """A new subscription, registered when called (not at the first ``anext``): the events
        from now on. Closed (``aclose``) when the client leaves."""
        ...


class AdminError(Exception):
    """An admin API failure with an explicit HTTP status and error code."""

    def __init__(self, message: str, *, status: int = 400, code: str = "invalid_request", details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details = details or []


# ---------------------------------------------------------------------------------------- token


def load_or_create_token(data_dir: str | os.PathLike[str]) -> str:
    """The admin token in ``<data_dir>/admin_token``; a new random one is written (0600,
    atomically) when the file is missing or empty. A file readable by others is made private."""
    path = Path(data_dir) / TOKEN_FILENAME
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        text = ""
    if text:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            log.warning("%s was readable by others (mode %o); making it private", path, mode)
            os.chmod(path, 0o600)
        return text
    save_text_atomic(path, secrets.token_urlsafe(32) + "\n", mode=0o600)
    # two processes racing here both read back the file that won the rename
    return path.read_text(encoding="utf-8").strip()


def _token_guard(token: str) -> Callable[[ASGIConnection, BaseRouteHandler], None]:
    expected = token.encode()

    def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        given = connection.headers.get("x-admin-token")
        if given is None:
            auth = connection.headers.get("authorization") or ""
            scheme, _, value = auth.partition(" ")
            given = value.strip() if scheme.lower() == "bearer" else None
        if not given or not hmac.compare_digest(given.encode(), expected):
            raise NotAuthorizedException(
                "The admin API needs the admin token: send 'Authorization: Bearer <token>' or 'X-Admin-Token: "
                "<token>'. The token is in the data directory's admin_token file."
            )

    return guard


# ---------------------------------------------------------------------------------------- errors

_json = msgspec.json.Encoder()


def _error(status: int, code: str, message: str, details: list[str] | None = None, headers: dict[str, str] | None = None) -> Response:
    body = _json.encode(w.ErrorBody(w.ErrorDetail(code, message, details or [])))
    return Response(content=body, status_code=status, media_type="application/json", headers=headers or {})


def _handle(request: Request, exc: Exception) -> Response:
    if isinstance(exc, AdminError):
        return _error(exc.status, exc.code, exc.message, exc.details)
    if isinstance(exc, NotAuthorizedException):
        return _error(401, "unauthorized", exc.detail, headers={"www-authenticate": 'Bearer realm="antiapi admin"'})
    if isinstance(exc, ValidationException):
        details = []
        for item in exc.extra or []:
            if isinstance(item, dict):
                where = item.get("key") or item.get("source") or ""
                details.append(f"{where}: {item.get('message')}" if where else str(item.get("message")))
        return _error(400, "invalid_request", f"{request.method} {request.url.path}: the request is invalid", details)
    if isinstance(exc, HTTPException):
        return _error(exc.status_code, "http_error", exc.detail or "request failed")
    if isinstance(exc, GatewayError):
        return _error(exc.status, exc.code or exc.kind.value, exc.message)
    if isinstance(exc, LookupError):
        what = exc.args[0] if exc.args else "not found"
        return _error(404, "not_found", str(what))
    if isinstance(exc, ValueError):
        return _error(422, "invalid_value", str(exc))
    if isinstance(exc, NotImplementedError):
        return _error(501, "unsupported", str(exc) or "not supported by this gateway")
    log.exception("admin API: internal error on %s %s", request.method, request.url.path)
    return _error(500, "internal_error", f"internal error ({type(exc).__name__}); see the server log")


# ---------------------------------------------------------------------------------------- events


def _frame(event: w.AdminEvent) -> bytes:
    name, data = w.encode_event(event)
    return encode_event(data, name)


async def _event_stream(backend: AdminBackend, status_interval: float, keepalive: float) -> AsyncIterator[bytes]:
    """SSE bytes: a status event first, then backend events, a status event every
    ``status_interval`` seconds (0: never) and keep-alive comments when idle."""
    loop = asyncio.get_running_loop()
    source = backend.events().__aiter__()
    pending: asyncio.Future[Any] | None = None
    try:
        # subscribe before the first frame goes out: an event published right after the client
        # saw the opening status must not be lost
        pending = asyncio.ensure_future(source.__anext__())
        await asyncio.sleep(0)
        yield b"retry: 2000\n\n"
        yield _frame(w.StatusEvent(await backend.status()))
        last_status = last_sent = loop.time()
        while True:
            if pending is None:
                pending = asyncio.ensure_future(source.__anext__())
            now = loop.time()
            deadlines = [last_sent + keepalive]
            if status_interval > 0:
                deadlines.append(last_status + status_interval)
            done, _ = await asyncio.wait({pending}, timeout=max(0.0, min(deadlines) - now))
            if pending in done:
                fut, pending = pending, None
                try:
                    event = fut.result()
                except StopAsyncIteration:
                    return
                yield _frame(event)
                last_sent = loop.time()
            now = loop.time()
            if status_interval > 0 and now - last_status >= status_interval:
                yield _frame(w.StatusEvent(await backend.status()))
                last_status = last_sent = now
            elif now - last_sent >= keepalive:
                yield KEEPALIVE_COMMENT
                last_sent = now
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()


class EventHub:
    """Fan-out of admin events to any number of subscribers (one bounded queue each).

    ``publish`` never blocks: a subscriber that falls ``size`` events behind loses its oldest
    ones (a TUI reloads snapshots on reconnect anyway). Call ``publish`` from the event loop's
    thread; ``publish_threadsafe`` from any other.
    """

    def __init__(self, size: int = 1000) -> None:
        self._size = size
        self._queues: set[asyncio.Queue[w.AdminEvent]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def subscribers(self) -> int:
        return len(self._queues)

    def publish(self, event: w.AdminEvent) -> None:
        for q in list(self._queues):
            if q.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    q.get_nowait()
            q.put_nowait(event)

    def publish_threadsafe(self, event: w.AdminEvent) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(self.publish, event)

    def subscribe(self) -> AsyncIterator[w.AdminEvent]:
        """Events published from now on (registered at once, not at the first ``anext``), until
        the consumer calls ``aclose`` or stops iterating."""
        self._loop = asyncio.get_running_loop()
        q: asyncio.Queue[w.AdminEvent] = asyncio.Queue(self._size)
        self._queues.add(q)
        return _Subscription(self, q)


class _Subscription:
    def __init__(self, hub: EventHub, q: asyncio.Queue[w.AdminEvent]) -> None:
        self._hub = hub
        self._q = q

    def __aiter__(self) -> _Subscription:
        return self

    async def __anext__(self) -> w.AdminEvent:
        if self._q not in self._hub._queues:
            raise StopAsyncIteration
        try:
            return await self._q.get()
        except BaseException:
            self._hub._queues.discard(self._q)
            raise

    async def aclose(self) -> None:
        self._hub._queues.discard(self._q)

    def __del__(self) -> None:
        self._hub._queues.discard(self._q)


# ---------------------------------------------------------------------------------------- sign-in


class SignInLike(Protocol):
    """A provider's sign-in object (``antiapi.providers.codex.login.DeviceSignIn`` and friends)."""

    async def start(self) -> dict[str, Any]: ...

    async def wait(self) -> str: ...


class SignInManager:
    """Runs sign-in flow objects behind flow ids (the admin API's ``/accounts/signin``).

    ``factories`` maps a provider type to ``factory(mode) -> flow object`` with ``start()``
    (returning ``url`` or ``user_code`` + ``verification_uri``, optional ``expires_in``),
    ``wait() -> label`` and optionally ``complete(pasted) -> label``, ``cancel()``, ``aclose()``.
    ``on_done(provider, label)`` runs after a successful sign-in (add the account to routing);
    ``publish`` receives a :class:`~antiapi.wire.admin.SignInEvent` on every change.
    """

    def __init__(
        self,
        factories: Mapping[str, Callable[[str | None], Any]],
        *,
        on_done: Callable[[str, str], Awaitable[None]] | None = None,
        publish: Callable[[w.AdminEvent], None] | None = None,
        clock: Callable[[], float] = time.time,
        keep_seconds: float = 3600.0,
    ) -> None:
        self.factories = dict(factories)
        self.on_done = on_done
        self.publish = publish
        self.clock = clock
        self.keep_seconds = keep_seconds
        self._flows: dict[str, w.SignInFlow] = {}
        self._objects: dict[str, Any] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._finished_at: dict[str, float] = {}

    def _set(self, flow: w.SignInFlow) -> w.SignInFlow:
        self._flows[flow.flow_id] = flow
        if flow.status != "pending":
            self._finished_at[flow.flow_id] = self.clock()
        if self.publish is not None:
            self.publish(w.SignInEvent(flow))
        return flow

    def _prune(self) -> None:
        cutoff = self.clock() - self.keep_seconds
        for fid, t in list(self._finished_at.items()):
            if t < cutoff:
                self._finished_at.pop(fid, None)
                self._flows.pop(fid, None)

    async def start(self, provider: str, mode: str | None = None) -> w.SignInFlow:
        """Start a sign-in. Raises ``LookupError`` for a provider without sign-in and
        ``AdminError`` (502) when the provider refuses to start."""
        self._prune()
        factory = self.factories.get(provider)
        if factory is None:
            raise AdminError(
                f"{provider!r} has no sign-in here; sign in to one of: {', '.join(sorted(self.factories)) or 'none'}",
                status=404, code="not_found",
            )
        obj = factory(mode)
        try:
            info = await obj.start()
        except Exception as e:
            await _close_flow(obj)
            message = getattr(e, "message", None) or str(e) or type(e).__name__
            raise AdminError(f"could not start the {provider} sign-in: {message}", status=502, code="signin_failed") from e
        fid = uuid.uuid4().hex[:16]
        expires_in = info.get("expires_in")
        hint = None
        if info.get("user_code"):
            hint = f"Open {info.get('verification_uri')} and enter the code {info['user_code']}."
        elif info.get("url"):
            hint = "Open the URL in a browser and sign in."
            if hasattr(obj, "complete"):
                hint += " If the browser cannot reach this machine, paste the address it ended on."
        flow = w.SignInFlow(
            flow_id=fid, provider=provider, status="pending", url=info.get("url"),
            user_code=info.get("user_code"), verification_uri=info.get("verification_uri"),
            expires_at=(self.clock() + float(expires_in)) if expires_in else None, message=hint,
        )
        self._objects[fid] = obj
        self._set(flow)
        self._tasks[fid] = asyncio.get_running_loop().create_task(self._run(fid, obj))
        return flow

    async def _run(self, fid: str, obj: Any) -> None:
        try:
            label = await obj.wait()
        except asyncio.CancelledError:
            raise
        except Exception as e:
            if self._flows[fid].status == "pending":
                message = getattr(e, "message", None) or str(e) or type(e).__name__
                self._set(msgspec.structs.replace(self._flows[fid], status="failed", error=message))
            return
        finally:
            self._tasks.pop(fid, None)
        await self._succeeded(fid, label)

    async def _succeeded(self, fid: str, label: str) -> None:
        flow = self._flows[fid]
        if flow.status != "pending":
            return
        if self.on_done is not None:
            try:
                await self.on_done(flow.provider, label)
            except Exception as e:
                log.exception("sign-in %s: adding account %s failed", flow.provider, label)
                self._set(msgspec.structs.replace(flow, status="failed", label=label,
                                                  error=f"signed in as {label}, but adding the account failed: {e}"))
                return
        self._set(msgspec.structs.replace(flow, status="done", label=label, message=f"Signed in as {label}."))
        self._objects.pop(fid, None)

    def get(self, flow_id: str) -> w.SignInFlow:
        flow = self._flows.get(flow_id)
        if flow is None:
            raise KeyError(f"no sign-in with id {flow_id!r} (finished sign-ins are kept for an hour)")
        return flow

    async def complete(self, flow_id: str, pasted: str) -> w.SignInFlow:
        flow = self.get(flow_id)
        obj = self._objects.get(flow_id)
        if flow.status != "pending" or obj is None:
            raise AdminError(f"this sign-in is {flow.status}", status=409, code="conflict")
        if not hasattr(obj, "complete"):
            raise NotImplementedError(f"the {flow.provider} sign-in finishes by itself; nothing to paste")
        try:
            label = await obj.complete(pasted)
        except Exception as e:
            message = getattr(e, "message", None) or str(e) or type(e).__name__
            raise AdminError(message, status=422, code="invalid_value") from e
        task = self._tasks.pop(flow_id, None)
        if task is not None:
            task.cancel()
        await self._succeeded(flow_id, label)
        return self._flows[flow_id]

    async def cancel(self, flow_id: str) -> w.SignInFlow:
        flow = self.get(flow_id)
        if flow.status != "pending":
            return flow
        task = self._tasks.pop(flow_id, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        obj = self._objects.pop(flow_id, None)
        if obj is not None:
            await _close_flow(obj)
        return self._set(msgspec.structs.replace(flow, status="cancelled", message="Sign-in cancelled."))

    async def aclose(self) -> None:
        for fid in [f for f, fl in self._flows.items() if fl.status == "pending"]:
            await self.cancel(fid)


async def _close_flow(obj: Any) -> None:
    for name in ("cancel", "aclose"):
        fn = getattr(obj, name, None)
        if fn is not None:
            try:
                await fn()
            except Exception:
                log.debug("closing a sign-in flow: %s() failed", name, exc_info=True)
            return


# ---------------------------------------------------------------------------------------- converters


def quota_from_view(view: Mapping[str, Any]) -> w.AccountQuota:
    """An :class:`AccountQuota` from one item of ``RoutingService.quota_view()``."""
    q = view.get("quota") or {}
    return w.AccountQuota(
        account=view["account"], type=view.get("type") or "", label=view.get("label"),
        enabled=bool(view.get("enabled", True)), status=view.get("status") or "ok",
        used_percent=view.get("used_percent"),
        windows=msgspec.convert(q.get("windows") or [], list[w.QuotaWindow]),
        plan=q.get("plan"), source=q.get("source"), updated_at=q.get("updated_at"),
        limited_until=q.get("limited_until"), detail=q.get("detail"),
        cooldowns=msgspec.convert(view.get("cooldowns") or [], list[w.Cooldown]),
    )


def record_from_usage(rec: Any) -> w.RequestRecord:
    """A :class:`RequestRecord` from a ``UsageRecord`` (Struct) or a usage table row (dict)."""
    data = rec if isinstance(rec, Mapping) else msgspec.structs.asdict(rec)
    return msgspec.convert(data, w.RequestRecord, strict=False)


def aggregate_from_row(row: Mapping[str, Any], by: str) -> w.UsageAggregate:
    """A :class:`UsageAggregate` from one row of ``Store.usage_summary(by)``."""
    data = {k: v for k, v in row.items() if k != by}
    key = row.get(by)
    data["key"] = None if key is None else str(key)
    return msgspec.convert({k: (0 if v is None and k in _INT_FIELDS else v) for k, v in data.items()},
                           w.UsageAggregate, strict=False)


_INT_FIELDS = frozenset({"requests", "errors", "input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens"})


# ---------------------------------------------------------------------------------------- router


def _check_chain(kind: str, name: str, edit: w.ChainEdit, targets: list[str] | None) -> None:
    problems = w.validate_chain(kind, name, edit.entries, edit.strategy, targets)  # type: ignore[arg-type]
    if problems:
        raise AdminError(f"the {kind} {name!r} is not valid", status=422, code="invalid_value", details=problems)


def admin_router(
    backend: AdminBackend,
    token: str,
    *,
    path: str = "/admin",
    status_interval: float = 2.0,
    keepalive: float = 15.0,
) -> Router:
    """The ``/admin`` router: every route requires ``token`` (see the module docstring).

    Args:
        backend: the gateway's :class:`AdminBackend`.
        token: the admin token (``load_or_create_token``); must not be empty.
        path: where to mount it.
        status_interval: seconds between the ``status`` events of ``/admin/events`` (0: none).
        keepalive: seconds of silence before a keep-alive comment on ``/admin/events``.
    """
    if not token:
        raise ValueError("the admin token must not be empty")

    @get("/status", summary="Gateway status: version, uptime, URL, requests and errors per minute")
    async def status() -> w.Status:
        return await backend.status()

    @get("/health", summary="Alias of /admin/status", include_in_schema=False)
    async def health() -> w.Status:
        return await backend.status()

    @get("/providers", summary="Provider types and how accounts of each are added")
    async def providers() -> list[w.ProviderType]:
        return await backend.providers()

    @get("/accounts", summary="Accounts (configured providers and signed-in accounts)")
    async def accounts() -> list[w.AccountInfo]:
        return await backend.accounts()

    @patch("/accounts/{name:str}", summary="Enable or disable an account")
    async def patch_account(name: FromPath[str], data: JSONBody[w.AccountPatch]) -> w.AccountInfo:
        return await backend.set_account_enabled(name, data.enabled)

    @delete("/accounts/{name:str}", summary="Remove a signed-in account or a dashboard-added API-key provider", status_code=204)
    async def remove_account(name: FromPath[str]) -> None:
        await backend.remove_account(name)

    @post("/accounts/apikey", summary="Add an API-key provider (OpenAI or compatible, Anthropic, Gemini), served at once",
          status_code=201)
    async def add_api_key(data: JSONBody[w.ApiKeyAccount]) -> w.AccountInfo:
        problems = [f"{k}: required" for k in ("type", "name") if not getattr(data, k).strip()]
        if problems:
            raise AdminError("the API-key account is incomplete", status=422, code="invalid_value", details=problems)
        return await backend.add_api_key(data)

    @post("/accounts/signin", summary="Start a Codex / Copilot sign-in (URL or device code)", status_code=201)
    async def start_signin(data: JSONBody[w.SignInStart]) -> w.SignInFlow:
        return await backend.start_signin(data.provider, data.mode)

    @get("/accounts/signin/{flow_id:str}", summary="Follow a sign-in")
    async def signin(flow_id: FromPath[str]) -> w.SignInFlow:
        return await backend.signin(flow_id)

    @post("/accounts/signin/{flow_id:str}/complete", summary="Finish a browser sign-in with the pasted redirect URL", status_code=200)
    async def complete_signin(flow_id: FromPath[str], data: JSONBody[w.SignInComplete]) -> w.SignInFlow:
        return await backend.complete_signin(flow_id, data.pasted)

    @delete("/accounts/signin/{flow_id:str}", summary="Cancel a sign-in", status_code=200)
    async def cancel_signin(flow_id: FromPath[str]) -> w.SignInFlow:
        return await backend.cancel_signin(flow_id)

    @get("/routing", summary="Flows, account chains, Smart Switch and the default strategy")
    async def routing() -> w.RoutingView:
        return await backend.routing()

    @patch("/routing", summary="Toggle Smart Switch / set the default strategy")
    async def patch_routing(data: JSONBody[w.RoutingPatch]) -> w.RoutingView:
        return await backend.update_routing(data)

    @put("/routing/flows/{name:str}", summary="Create or replace a flow (entries in order)")
    async def put_flow(name: FromPath[str], data: JSONBody[w.ChainEdit]) -> w.Flow:
        _check_chain("flow", name, data, (await backend.routing()).targets or None)
        return await backend.put_flow(name, data)

    @delete("/routing/flows/{name:str}", summary="Delete a flow", status_code=204)
    async def delete_flow(name: FromPath[str]) -> None:
        await backend.delete_flow(name)

    @put("/routing/chains/{model:path}", summary="Create or replace a model's account chain")
    async def put_chain(model: FromPath[str], data: JSONBody[w.ChainEdit]) -> w.Chain:
        model = model.lstrip("/")
        _check_chain("chain", model, data, (await backend.routing()).targets or None)
        return await backend.put_chain(model, data)

    @delete("/routing/chains/{model:path}", summary="Delete a model's account chain", status_code=204)
    async def delete_chain(model: FromPath[str]) -> None:
        await backend.delete_chain(model.lstrip("/"))

    @get("/settings", summary="Default model, background-task mapping, tunnel and browser options")
    async def settings() -> w.Settings:
        return await backend.settings()

    @patch("/settings", summary="Change settings (absent fields stay as they are)")
    async def patch_settings(data: JSONBody[w.SettingsPatch]) -> w.Settings:
        return await backend.update_settings(data)

    @get("/quotas", summary="Quota windows and cooldowns per account")
    async def quotas() -> list[w.AccountQuota]:
        return await backend.quotas()

    @get("/usage", summary="Usage aggregates by account, model, upstream_model or day")
    async def usage(
        by: FromQuery[str] = "account", since: FromQuery[float | None] = None, until: FromQuery[float | None] = None
    ) -> list[w.UsageAggregate]:
        if by not in w.USAGE_GROUPS:
            raise AdminError(f"by={by!r}: use one of {', '.join(w.USAGE_GROUPS)}", status=400)
        return await backend.usage(by, since, until)

    @get("/requests", summary="The request log, newest first, with filters")
    async def requests(
        model: FromQuery[str | None] = None,
        account: FromQuery[str | None] = None,
        status: FromQuery[str | None] = None,
        since: FromQuery[float | None] = None,
        limit: FromQuery[int] = 100,
    ) -> list[w.RequestRecord]:
        try:
            w.parse_status_filter(status)
        except ValueError as e:
            raise AdminError(str(e), status=400) from None
        if limit < 1 or limit > _MAX_LIMIT:
            raise AdminError(f"limit={limit}: use 1 to {_MAX_LIMIT}", status=400)
        q = w.RequestQuery(model=model or None, account=account or None, status=status or None, since=since, limit=limit)
        return (await backend.requests(q))[:limit]

    @get("/requests/{request_id:str}", summary="One request with its full routing context")
    async def request_detail(request_id: FromPath[str]) -> w.RequestRecord:
        return await backend.request(request_id)

    @get("/models", summary="Models and flows clients may ask for")
    async def models() -> list[w.ModelInfo]:
        return await backend.models()

    @get("/keys", summary="Client keys (never the keys themselves), with today's requests and tokens")
    async def keys() -> list[w.ClientKeyInfo]:
        return await backend.keys()

    @post("/keys", summary="Create a client key: the answer is the only time the key is shown", status_code=201)
    async def create_key(data: JSONBody[w.KeyCreate]) -> Response:
        created = await backend.create_key(data)
        # the key is in this body: no cache may keep it
        return Response(content=_json.encode(created), status_code=201, media_type="application/json",
                        headers={"cache-control": "no-store"})

    @patch("/keys/{ident:str}", summary="Change a client key's limits (by id or name)")
    async def update_key(ident: FromPath[str], data: JSONBody[w.KeyPatch]) -> w.ClientKeyInfo:
        return await backend.update_key(ident, data)

    @delete("/keys/{ident:str}", summary="Revoke a client key (by id or name)", status_code=200)
    async def revoke_key(ident: FromPath[str]) -> w.ClientKeyInfo:
        return await backend.revoke_key(ident)

    @get("/remote", summary="Exposure, the tunnel (state, public URL) and its settings")
    async def remote() -> w.RemoteView:
        return await backend.remote_view()

    @patch("/remote", summary="Tunnel settings: tool, binary, ngrok authtoken (never returned)")
    async def patch_remote(data: JSONBody[w.RemotePatch]) -> w.RemoteView:
        return await backend.update_remote(data)

    @post("/remote/tunnel", summary="Start the tunnel (409 while no client key exists)", status_code=200)
    async def start_tunnel(data: JSONBody[w.TunnelStart]) -> w.RemoteView:
        return await backend.start_tunnel(data)

    @delete("/remote/tunnel", summary="Stop the tunnel", status_code=200)
    async def stop_tunnel() -> w.RemoteView:
        return await backend.stop_tunnel()

    @get(
        "/events",
        summary="Live events (Server-Sent Events)",
        description=(
            "text/event-stream. Each frame's `event:` is the type (request, quota, status, accounts, "
            "routing, settings, signin, remote, keys) and `data:` the JSON of the matching antiapi.wire.admin event. "
            "A status event is sent first and every few seconds; unknown event types must be ignored."
        ),
    )
    async def events() -> Stream:
        return Stream(
            _event_stream(backend, status_interval, keepalive),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )

    return Router(
        path,
        route_handlers=[
            status, health, providers, accounts, patch_account, remove_account, add_api_key, start_signin, signin,
            complete_signin, cancel_signin, routing, patch_routing, put_flow, delete_flow, put_chain, delete_chain,
            settings, patch_settings, quotas, usage, requests, request_detail, models, keys, create_key, update_key,
            revoke_key, remote, patch_remote, start_tunnel, stop_tunnel, events,
        ],
        guards=[_token_guard(token)],
        # every type the app might also handle: the most specific class wins across layers, so an
        # app-level HTTPException/GatewayError handler would otherwise render admin errors
        exception_handlers={
            t: _handle
            for t in (Exception, HTTPException, NotAuthorizedException, ValidationException, GatewayError,
                      AdminError, LookupError, ValueError, NotImplementedError)
        },
        tags=["admin"],
        security=[{"AdminToken": []}],
    )


def admin_openapi_config(version: str, *, path: str = "/admin/schema") -> Any:
    """An ``OpenAPIConfig`` for the app: the schema at ``/admin/schema`` (``openapi.json``,
    ``swagger``...), with the admin token declared as the ``AdminToken`` bearer scheme. The
    schema describes the API only (no data), so it is served without the token."""
    from litestar.openapi import OpenAPIConfig
    from litestar.openapi.spec import Components, SecurityScheme

    return OpenAPIConfig(
        title="antiapi admin API",
        version=version,
        path=path,
        description="Token-protected administration API of the antiapi gateway (used by `antiapi tui`).",
        components=Components(security_schemes={
            "AdminToken": SecurityScheme(
                type="http", scheme="bearer",
                description="The admin token from the data directory's admin_token file (or X-Admin-Token).",
            ),
        }),
    )


# ---------------------------------------------------------------------------------------- web view

WEB_PATHS = ("/quota", "/routing", "/settings", "/remote-panel")

_EXPLAIN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>antiapi dashboard</title>
<meta name="referrer" content="no-referrer">
<style>body{{font-family:system-ui,sans-serif;max-width:40em;margin:3em auto;line-height:1.5}}
code,pre{{background:#f3f3f3;padding:.1em .3em}}</style></head>
<body><h1>antiapi dashboard</h1>
<p>The {screen} screen is part of antiapi's dashboard. It runs in your terminal:</p>
<pre>antiapi tui</pre>
<p>or, to use it in this browser, start the web view on this machine:</p>
<pre>antiapi tui --web</pre>
<p>and open the address it prints (it asks for the admin token, found in the data directory's
<code>admin_token</code> file).</p>
</body></html>
"""


def web_handlers(web_url: str | Callable[[], str | None] | None) -> list[Any]:
    """Route handlers for the gateway paths ``/quota``, ``/routing``, ``/settings`` and
    ``/remote-panel``: a 307 redirect to the web TUI (``<web_url>/?screen=<screen>``) when
    ``web_url`` (or what the callable returns) is set, else a page explaining ``antiapi tui --web``.
    They reveal nothing and need no token: the web TUI asks for the admin token itself.
    """
    screens = {"/quota": "quota", "/routing": "routing", "/settings": "settings", "/remote-panel": "remote"}

    @get(list(WEB_PATHS), include_in_schema=False)
    async def web_view(request: Request) -> Response:
        target = web_url() if callable(web_url) else web_url
        screen = screens.get(request.url.path.rstrip("/"), "quota")
        if target:
            return Redirect(f"{target.rstrip('/')}/?screen={screen}", status_code=307)
        page = _EXPLAIN.format(screen=html.escape(screen.capitalize()))
        return Response(content=page, media_type="text/html", headers={"cache-control": "no-store"})

    return [web_view]
