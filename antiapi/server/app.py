"""The Litestar application: ``create_app(config, providers=..., ...)``. No module-level app.

Every response carries ``request-id`` and ``x-request-id``. Errors are rendered in the wire
format of the endpoint that was called (Anthropic for ``/v1/messages*``, OpenAI otherwise),
including Litestar's own 404/405/413.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Request, Response, get, head, post
from litestar.exceptions import HTTPException
from litestar.response import Stream
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from antiapi import __version__
from antiapi.errors import GatewayError, ProviderError, kind_for_status
from antiapi.providers.base import Provider
from antiapi.server.context import request_ctx
from antiapi.server.pipeline import Gateway, Reply
from antiapi.server.routing import ModelTable, RoutingService
from antiapi.server.usage import UsageLog
from antiapi.translate import dialect as dialects
from antiapi.translate.tokens import estimate_input_tokens

log = logging.getLogger("antiapi.server")


def _request_id(scope: Scope) -> str:
    rid = scope.get("state", {}).get("request_id")  # type: ignore[union-attr]
    return rid or "req_unknown"


def _ensure_request_id(scope: Scope) -> str:
    state = scope.setdefault("state", {})  # type: ignore[typeddict-item]
    rid = state.get("request_id")
    if rid is None:
        rid = state["request_id"] = "req_" + uuid.uuid4().hex[:24]
    return rid


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    """Give every routed request an id early (for logs and usage records)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        token = request_ctx.set(_ensure_request_id(scope))
        try:
            await app(scope, receive, send)
        finally:
            request_ctx.reset(token)

    return middleware


def _url_from_scope(scope: Scope) -> str | None:
    """``http://host:port`` of the server that received ``scope`` (the gateway's own address)."""
    server = scope.get("server")
    if not server or server[1] is None:
        return None
    host = str(server[0])
    if ":" in host:
        host = f"[{host}]"
    return f"{scope.get('scheme', 'http')}://{host}:{server[1]}"


def _learn_url(admin: Any) -> Callable[[ASGIApp], ASGIApp]:
    """Middleware factory: tell the admin backend the gateway's address from the first request
    (when ``create_app`` was not given ``url``); a no-op check afterwards."""

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if admin.url is None and scope["type"] == "http":
                admin.url = _url_from_scope(scope)
            await app(scope, receive, send)

        return middleware

    return factory


async def _add_request_id(message: Message, scope: Scope) -> None:
    """``before_send`` hook: runs for every response, unrouted 404/405 included."""
    if message["type"] == "http.response.start":
        rid = _ensure_request_id(scope).encode()
        message["headers"] = list(message.get("headers", [])) + [(b"request-id", rid), (b"x-request-id", rid)]  # type: ignore[typeddict-item]


def _error_response(err: GatewayError, dialect: str) -> Response:
    body = dialects.load(dialect).render_error(err)
    headers = dict(err.headers)
    if err.retry_after is not None:
        headers.setdefault("retry-after", str(max(1, int(round(err.retry_after)))))
    return Response(content=body, status_code=err.status, media_type="application/json", headers=headers)


def _handle_gateway_error(request: Request, exc: GatewayError) -> Response:
    if exc.status >= 500 and not isinstance(exc, ProviderError):
        log.error("request failed: %s", exc.message)
    return _error_response(exc, dialects.dialect_for_path(request.url.path))


def _handle_http_exception(request: Request, exc: HTTPException) -> Response:
    status = exc.status_code
    if status == 404:
        msg = f"Unknown endpoint {request.method} {request.url.path}. This gateway serves POST /v1/chat/completions, POST /v1/responses, POST /v1/messages, POST /v1/messages/count_tokens and GET /v1/models."
    elif status == 405:
        msg = f"Method {request.method} is not allowed on {request.url.path}."
    elif status == 413:
        msg = "The request body is too large. Send a smaller request (the limit is server.max_body_mb in the config)."
    else:
        msg = exc.detail or "Request failed."
    err = GatewayError(msg, kind=kind_for_status(status), status=status)
    return _error_response(err, dialects.dialect_for_path(request.url.path))


def _handle_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("internal error while serving %s", request.url.path)
    err = GatewayError(
        f"antiapi hit an internal error ({type(exc).__name__}); the request id in the response headers identifies it in the server log.",
        status=500,
    )
    return _error_response(err, dialects.dialect_for_path(request.url.path))


def _lower_headers(request: Request) -> dict[str, str]:
    return {k.lower(): v for k, v in request.headers.items()}


def _to_response(reply: Reply) -> Response:
    if reply.stream is not None:
        return Stream(reply.stream, status_code=reply.status, headers=reply.headers, media_type=reply.media_type)
    return Response(content=reply.body, status_code=reply.status, headers=reply.headers, media_type=reply.media_type)


class _CountCache:
    """count_tokens estimates per request hash (clients send the same body many times)."""

    def __init__(self, size: int = 512) -> None:
        self._d: OrderedDict[bytes, int] = OrderedDict()
        self._size = size

    def get(self, key: bytes) -> int | None:
        v = self._d.get(key)
        if v is not None:
            self._d.move_to_end(key)
        return v

    def put(self, key: bytes, val: int) -> None:
        self._d[key] = val
        if len(self._d) > self._size:
            self._d.popitem(last=False)


async def _start_providers(providers, table: ModelTable, sync_timeout: float = 5.0) -> None:
    """Start each provider and route the models signed-in providers list. A slow or failing
    model sync never blocks serving: it is cut at ``sync_timeout`` (providers fall back to
    their static lists)."""
    import asyncio

    async def one(p: Provider) -> None:
        try:
            await p.start()
            if p.dynamic_models:
                names = await asyncio.wait_for(p.list_models(), sync_timeout)
                table.add_provider_models(p, names)
        except Exception as e:  # one provider's trouble must not stop the gateway
            log.warning("provider %s: start/model sync failed: %s", p.name, e)

    await asyncio.gather(*(one(p) for p in providers))


def _default_store(config: Any, store: Any) -> tuple[Any, bool]:
    """(store to use, whether this app owns it). ``store=None``: the data dir's database;
    ``store=False``: keep everything in memory."""
    if store is False:
        return None, False
    if store is not None:
        return store, False
    data_dir = getattr(config, "data_dir", None)
    if data_dir is None:
        return None, False
    from antiapi.store import DB_FILENAME, Store

    return Store(data_dir / DB_FILENAME), True


def create_app(
    config: Any,
    *,
    providers: Mapping[str, Provider],
    usage: UsageLog | None = None,
    started: float | None = None,
    store: Any = None,
    clock: Any = None,
    admin_token: str | None = None,
    url: str | None = None,
    exposed: bool = False,
    tunnel: str | None = None,
    host: str = "127.0.0.1",
    tunnel_factory: Callable[..., Any] | None = None,
    web_url: Callable[[], str | None] | str | None = None,
) -> Litestar:
    """Build the gateway app for ``config`` (see ``antiapi.config``) and built ``providers``.

    ``store``: the state database (:class:`antiapi.store.Store`); default the data dir's
    ``antiapi.db``, opened in the lifespan; ``False`` keeps routing state and usage in memory.
    ``clock``: wall clock (epoch seconds) for cooldowns and affinity (tests inject one).
    The routing service is ``app.state.routing`` (the admin API edits flows/settings there).

    The admin API (``/admin``, :mod:`antiapi.server.admin`) is mounted when there is a token:
    ``admin_token``, else the data dir's ``admin_token`` file (created at the first start); a
    config without a data dir gets no admin API. Its backend is ``app.state.admin``
    (:class:`~antiapi.server.admin_backend.GatewayAdminBackend`), its OpenAPI schema is at
    ``/admin/schema`` (the client-facing routes are left out of it), and ``/quota``,
    ``/routing``, ``/settings``, ``/remote-panel`` explain how to open the dashboard.
    ``url``: where clients reach the gateway (shown by ``/admin/status``); default: learnt from
    the first request.
    ``host``: the address the gateway listens on; ``exposed``: that address is beyond loopback;
    ``tunnel``: a tunnel tool (``cloudflared``, ``ngrok``, ``localtunnel``) to start with the app
    (``antiapi serve --tunnel``; else the ``auto_start_tunnel`` setting decides), stopped with it.
    Exposure or a tunnel makes a client key mandatory on every request; on loopback a key is
    required as soon as one exists (tunnel traffic arrives from 127.0.0.1 too). The tunnel and the
    keys are ``app.state.remote`` (:class:`antiapi.server.remote.RemoteAccess`);
    ``tunnel_factory`` replaces :class:`antiapi.tunnels.Tunnel` (tests). See docs/remote-access.md.
    ``web_url``: the web dashboard's address (or a callable returning it, None while it does not
    run): ``/quota``, ``/routing``, ``/settings`` and ``/remote-panel`` redirect there.
    """
    server_cfg = getattr(config, "server", None)
    table = RoutingService(config, dict(providers), clock=clock or time.time)
    usage_log = usage if usage is not None else UsageLog(None)
    gateway = Gateway(table, usage_log)
    state_store, owns_store = _default_store(config, store)
    from antiapi.security.auth import client_auth_middleware
    from antiapi.security.keys import KeyVerifier

    verifier = KeyVerifier(None)
    usage_log.listeners.append(verifier.observe_usage)
    count_cache = _CountCache()
    t_start = started if started is not None else time.time()
    admin = None
    if admin_token is None and getattr(config, "data_dir", None) is not None:
        from antiapi.server.admin import load_or_create_token

        admin_token = load_or_create_token(config.data_dir)
    if admin_token:
        from antiapi.server.admin_backend import GatewayAdminBackend

        admin = GatewayAdminBackend(config, table, usage_log, started=t_start, url=url, clock=clock or time.time)
    from antiapi.server.remote import RemoteAccess

    def _own_url() -> str | None:
        return url or (admin.url if admin is not None else None)

    remote = RemoteAccess(
        verifier, host=host, exposed=exposed, data_dir=getattr(config, "data_dir", None), url=_own_url,
        tunnel_kind=tunnel, tunnel_factory=tunnel_factory, clock=clock or time.time,
    )
    if admin is not None:
        admin.attach_remote(remote)

    async def _generate(request: Request, endpoint: str, client: str) -> Response:
        body = await request.body()
        reply = await gateway.generate(
            endpoint=endpoint, client=client, body=body, headers=_lower_headers(request), request_id=_request_id(request.scope),
            client_key=request.scope.get("state", {}).get("client_key"),
        )
        return _to_response(reply)

    @post(["/v1/chat/completions", "/chat/completions"], status_code=200, include_in_schema=False)
    async def chat_completions(request: Request) -> Response:
        return await _generate(request, "/v1/chat/completions", "openai_chat")

    @post(["/v1/responses", "/responses"], status_code=200, include_in_schema=False)
    async def responses(request: Request) -> Response:
        return await _generate(request, "/v1/responses", "openai_responses")

    @post(["/v1/messages", "/messages"], status_code=200, include_in_schema=False)
    async def messages(request: Request) -> Response:
        return await _generate(request, "/v1/messages", "anthropic")

    @post(["/v1/messages/count_tokens", "/messages/count_tokens"], status_code=200, include_in_schema=False)
    async def count_tokens(request: Request) -> Response:
        from antiapi.translate import anthropic as am

        body = await request.body()
        req = am.parse_count_request(body)
        deps = table.resolve(req.model)
        n: int | None = None
        for dep in deps:
            if dep.provider.capabilities.count_tokens:
                try:
                    n = await dep.provider.count_tokens(req, dep.upstream_model)
                except ProviderError as e:
                    log.info("count_tokens at %s failed (%s); using the estimate", dep.provider.name, e.message)
                    n = None
            break
        if n is None:
            key = hashlib.blake2b(body, digest_size=16).digest()
            n = count_cache.get(key)
            if n is None:
                n = estimate_input_tokens(req)
                count_cache.put(key, n)
        return Response(content=am.count_tokens_response(n), media_type="application/json")

    @get(["/v1/models", "/models"], include_in_schema=False)
    async def list_models(request: Request) -> Response:
        h = _lower_headers(request)
        names = table.names()
        if "anthropic-version" in h or ("x-api-key" in h and "authorization" not in h):
            from antiapi.translate import anthropic as am

            return Response(content=am.models_list(names), media_type="application/json")
        from antiapi.translate import openai_chat as oc

        return Response(content=oc.models_list(names), media_type="application/json")

    @get("/health", include_in_schema=False)
    async def health() -> dict:
        return {
            "status": "ok",
            "version": __version__,
            "uptime_s": round(time.time() - t_start, 1),
            "providers": sorted(table.providers),  # signed-in and dashboard-added ones too
            "models": len(table.names()),
        }

    @head(["/", "/api/hello"], include_in_schema=False)
    async def probe_head() -> None:
        return None

    @get(["/", "/api/hello"], include_in_schema=False)
    async def hello() -> dict:
        return {"message": "antiapi is running", "version": __version__}

    @asynccontextmanager
    async def lifespan(app: Litestar):
        import asyncio

        opened = None
        if state_store is not None:
            try:
                if not state_store.running:
                    await state_store.aopen()
                await table.attach_store(state_store)
                s = table.settings
                state_store.retention_days, state_store.max_usage_rows = s.usage_retention_days, s.usage_max_rows
                usage_log.attach(state_store)
                opened = state_store
            except Exception as e:  # a broken database must not stop the gateway from serving
                log.error("state store %s unusable (%s); routing state and usage stay in memory", getattr(state_store, "path", "?"), e)
        app.state.store = opened
        watcher = None
        if opened is not None:
            try:
                verifier.store = opened
                await verifier.areload()
                watcher = asyncio.get_running_loop().create_task(verifier.watch())
            except Exception:
                log.exception("client keys could not be loaded")
        if opened is not None:
            try:
                await remote.attach(opened)
            except Exception:
                log.exception("the tunnel settings could not be read")
        # in the background: a tunnel tool may take up to its start timeout to print its URL, and
        # serving must not wait for it (keys are already required: autostart needs one to exist)
        tunnel_start = asyncio.get_running_loop().create_task(remote.autostart(), name="antiapi-tunnel-autostart")
        usage_log.start()
        await _start_providers(providers.values(), table)
        snapshots = asyncio.get_running_loop().create_task(table.snapshot_loop()) if opened is not None else None
        if admin is not None:
            try:
                await admin.start(opened)
            except Exception:  # the dashboard's trouble must not stop the gateway from serving
                log.exception("the admin API's live events could not start")
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
            if not tunnel_start.done():
                tunnel_start.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await tunnel_start
            await remote.aclose()
            if admin is not None:
                try:
                    await admin.aclose()
                except Exception:
                    log.exception("closing the admin API failed")
            if snapshots is not None:
                snapshots.cancel()
                try:
                    await snapshots
                except asyncio.CancelledError:
                    pass
                try:
                    table.snapshot_quota()
                except Exception:
                    log.exception("final quota snapshot failed")
            await usage_log.aclose()
            for p in providers.values():
                try:
                    await p.aclose()
                except Exception:  # closing must not hide other shutdown work
                    log.exception("closing provider %s failed", p.name)
            if opened is not None:
                await opened.flush()
                if owns_store:
                    await opened.aclose()

    from litestar.datastructures import State

    handlers: list[Any] = [chat_completions, responses, messages, count_tokens, list_models, health, probe_head, hello]
    middleware: list[Any] = [
        request_id_middleware,
        client_auth_middleware(
            verifier, required=remote.keys_required,
            allowed_hosts=getattr(server_cfg, "allowed_hosts", ()), cors_origins=getattr(server_cfg, "cors_origins", ()),
        ),
    ]
    openapi_config = None
    if admin is not None:
        from antiapi.server.admin import admin_openapi_config, admin_router, web_handlers

        handlers += [admin_router(admin, admin_token), *web_handlers(web_url)]
        openapi_config = admin_openapi_config(__version__)
        if url is None:
            middleware.insert(0, _learn_url(admin))

    max_body = getattr(server_cfg, "max_body_bytes", 32 * 1024 * 1024)
    cors = None
    if getattr(server_cfg, "cors_origins", ()):
        from litestar.config.cors import CORSConfig

        # CORS is off unless the config lists origins (see docs/remote-access.md)
        cors = CORSConfig(allow_origins=list(server_cfg.cors_origins), allow_methods=["GET", "POST", "OPTIONS"],
                          allow_headers=["*"], expose_headers=["request-id", "x-request-id", "retry-after"], max_age=600)
    return Litestar(
        state=State({"routing": table, "gateway": gateway, "usage": usage_log, "store": None, "admin": admin,
                     "client_keys": verifier, "remote": remote}),
        route_handlers=handlers,
        middleware=middleware,
        before_send=[_add_request_id],
        exception_handlers={
            GatewayError: _handle_gateway_error,
            HTTPException: _handle_http_exception,
            Exception: _handle_unexpected,
        },
        lifespan=[lifespan],
        request_max_body_size=max_body,
        openapi_config=openapi_config,
        cors_config=cors,
        logging_config=None,  # antiapi configures logging itself (cli._setup_logging)
        debug=False,
    )


