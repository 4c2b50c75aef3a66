"""Where pure translation meets I/O: route -> render -> call provider -> translate -> encode.

``Gateway.generate`` serves one client request of any dialect from the deployments its model
resolves to. Same dialect in and out takes the fast path (bytes forwarded, only ``model``
rewritten); otherwise the request goes through the IR. Before the first byte reaches the client
a retryable upstream failure moves on to the next deployment; after it, never: the stream ends
with a well-formed error event in the client's dialect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field

import anyio
import msgspec

from antiapi.errors import (
    ErrorKind,
    GatewayError,
    InvalidRequest,
    ProviderError,
    StreamInterrupted,
    Unsupported,
)
from antiapi.providers.base import UpstreamCall, UpstreamResponse
from antiapi.server.context import request_ctx
from antiapi.server.routing import Deployment, ModelTable
from antiapi.server.usage import UsageLog, UsageRecord
from antiapi.translate import dialect as dialects
from antiapi.translate import fastpath, ir
from antiapi.translate.aggregate import Aggregator, merge_usage
from antiapi.wire.sse import KEEPALIVE_COMMENT, SSEDecoder, SSEEvent

log = logging.getLogger("antiapi.pipeline")

_json = msgspec.json.Encoder()

#: SSE events that end a stream normally, per dialect (fast path termination check)
_TERMINAL = {
    "anthropic": ("message_stop",),
    "openai_chat": (),  # "[DONE]" data line
    "openai_responses": ("response.completed", "response.incomplete", "response.failed"),
    "gemini": (),
}

_ANTHROPIC_PING = b'event: ping\ndata: {"type": "ping"}\n\n'


@dataclass(slots=True)
class Reply:
    """What a route returns: a whole body or a byte stream."""

    status: int
    headers: dict[str, str]
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None
    media_type: str = "application/json"


@dataclass(slots=True)
class _Trace:
    """Everything the usage record needs, filled as the request proceeds."""

    rec: UsageRecord
    t0: float
    usage: ir.Usage = field(default_factory=ir.Usage)
    first_byte: float | None = None


class Gateway:
    def __init__(
        self,
        table: ModelTable,
        usage: UsageLog,
        *,
        keepalive: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
        wallclock: Callable[[], float] = time.time,
    ) -> None:
        self.table = table
        self.usage = usage
        self.keepalive = keepalive
        self.clock = clock
        self.wallclock = wallclock

    # ------------------------------------------------------------------ entry point

    async def generate(
        self, *, endpoint: str, client: str, body: bytes, headers: Mapping[str, str], request_id: str
    ) -> Reply:
        """Serve one generate request. Raises GatewayError before anything was sent."""
        trace = _Trace(
            rec=UsageRecord(
                time=self.wallclock(), request_id=request_id, endpoint=endpoint, client_dialect=client,
                model="", status=0, latency_ms=0.0,
            ),
            t0=self.clock(),
        )
        try:
            reply = await self._generate(trace, endpoint, client, body, headers, request_id)
        except GatewayError as e:
            self._finish(trace, e.status, e.message)
            raise
        except Exception as e:  # a bug: record it, then let the app render a clean 500
            self._finish(trace, 500, f"internal error: {type(e).__name__}")
            raise
        if reply.stream is None:
            self._finish(trace, reply.status, None)
        return reply

    async def _generate(
        self, trace: _Trace, endpoint: str, client: str, body: bytes, headers: Mapping[str, str], request_id: str
    ) -> Reply:
        C = dialects.load(client)
        view = _peek(body)
        model = view.model
        trace.rec.model = model
        trace.rec.stream = stream = bool(view.stream)
        request_ctx.set(f"{request_id} model={model}")
        deps = self.table.resolve(model)
        ireq: ir.Request | None = None
        last_error: ProviderError | None = None
        for i, dep in enumerate(deps):
            upstream = client if client in dep.provider.dialects else dep.provider.dialects[0]
            passthrough = upstream == client and dep.provider.passthrough
            must_parse = not passthrough or not _all_caps(dep)
            if must_parse and ireq is None:
                ireq = C.parse_request(body)
            if ireq is not None:
                _check_capabilities(ireq, dep)
            fast = passthrough and (dep.capabilities.streaming or not stream)
            out: ir.Outgoing | None = None
            if fast:
                up_body = fastpath.rewrite_model(body, dep.upstream_model)
                up_stream = stream
            else:
                assert ireq is not None
                U = dialects.load(upstream)
                target = dep.provider.target(dep.upstream_model)
                if stream and not dep.capabilities.streaming:
                    ireq.stream = False
                out = U.render_request(ireq, target)
                if upstream != "gemini":
                    out.body["model"] = dep.upstream_model
                up_body = _json.encode(out.body)
                up_stream = out.stream
                ireq.stream = stream
            trace.rec.provider = dep.provider.name
            trace.rec.upstream_model = dep.upstream_model
            trace.rec.upstream_dialect = upstream
            call = UpstreamCall(
                dialect=upstream, model=dep.upstream_model, body=up_body, stream=up_stream,
                forward_headers=_forwardable(headers) if upstream == client else {}, request_id=request_id,
            )
            try:
                resp = await dep.provider.send(call)
                return await self._respond(trace, C, client, upstream, dep, resp, ireq, out, model, stream, up_stream, fast)
            except ProviderError as e:
                trace.rec.attempts.append(f"{dep.provider.name}/{dep.upstream_model}: {e.status} {e.kind.value}")
                last_error = e
                if e.retryable and i + 1 < len(deps):
                    log.info("failing over from %s: %s", dep.provider.name, e.message)
                    continue
                raise _for_client(e, client) from None
        assert last_error is not None  # pragma: no cover - loop always returns or raises
        raise last_error

    # ------------------------------------------------------------------ responses

    async def _respond(
        self, trace: _Trace, C, client: str, upstream: str, dep: Deployment, resp: UpstreamResponse,
        ireq: ir.Request | None, out: ir.Outgoing | None, model: str, stream: bool, up_stream: bool, fast: bool,
    ) -> Reply:
        headers = {"x-antiapi-provider": dep.provider.name}
        if stream:
            if fast:
                gen = self._fast_stream(trace, C, client, resp, model, dep.upstream_model)
            else:
                assert ireq is not None and out is not None
                gen = self._translated_stream(trace, C, upstream, resp, ireq, out, model, up_stream)
            headers.update({"cache-control": "no-cache", "x-accel-buffering": "no"})
            return Reply(status=200, headers=headers, stream=gen, media_type="text/event-stream")
        # Non-stream client: nothing has been sent yet, so read everything first (errors here
        # can still fail over and still get a real HTTP status).
        try:
            if fast:
                raw = await resp.aread()
                trace.first_byte = self.clock()
                trace.usage = _body_usage(client, raw)
                replace = fastpath.model_replacer(dep.upstream_model, model)
                return Reply(status=resp.status, headers=headers, body=replace(raw) if replace else raw)
            assert ireq is not None and out is not None
            U = dialects.load(upstream)
            agg = Aggregator()
            if up_stream:
                async for ev in _decode_stream(U, resp, out):
                    agg.feed(ev)
            else:
                agg.feed_all(U.decode_response(await resp.aread(), out))
            trace.first_byte = self.clock()
            trace.usage = agg.usage
            result = agg.response()
            return Reply(status=200, headers=headers, body=C.render_response(result, ireq, model, **_clock_kw(C, self.wallclock)))
        finally:
            await resp.aclose()

    async def _fast_stream(
        self, trace: _Trace, C, client: str, resp: UpstreamResponse, model: str, upstream_model: str
    ) -> AsyncIterator[bytes]:
        replace = fastpath.model_replacer(upstream_model, model)
        terminal = _TERMINAL[client]
        decoder = SSEDecoder()
        scan = C.scan_usage
        done = False
        status, error = 200, None
        try:
            try:
                async for chunk in _keepalive(resp.aiter_bytes(), self.keepalive, _ping_for(client)):
                    if chunk is None:
                        yield _ping_for(client)
                        continue
                    if trace.first_byte is None:
                        trace.first_byte = self.clock()
                    out = []
                    for ev in decoder.feed(chunk):
                        if ev.event in terminal or (client == "openai_chat" and ev.data == "[DONE]"):
                            done = True
                        u = scan(ev)
                        if u is not None:
                            merge_usage(trace.usage, u)
                        out.append(replace(ev.raw) if replace else ev.raw)
                    if out:
                        yield b"".join(out)
                if not done:
                    raise StreamInterrupted("The upstream stream ended before completion.")
            except GatewayError as e:
                status, error = e.status, e.message
                yield _stream_error(C, client, model, e)
        except (asyncio.CancelledError, GeneratorExit):
            status, error = 499, "client disconnected"
            raise
        finally:
            # The client may be gone and this task cancelled: shield the clean-up so the
            # upstream connection is closed at once (stops generation and quota burn).
            with anyio.CancelScope(shield=True):
                await resp.aclose()
            self._finish(trace, status, error)

    async def _translated_stream(
        self, trace: _Trace, C, upstream: str, resp: UpstreamResponse, ireq: ir.Request, out: ir.Outgoing,
        model: str, up_stream: bool,
    ) -> AsyncIterator[bytes]:
        U = dialects.load(upstream)
        enc = C.StreamEncoder(ireq, model, **_clock_kw(C, self.wallclock))
        status, error = 200, None
        ping = _ping_for(ireq.source or "")
        try:
            try:
                if up_stream:
                    events = _decode_stream(U, resp, out)
                else:
                    events = _aiter(U.decode_response(await resp.aread(), out))
                async for ev in _keepalive(events, self.keepalive, ping):
                    if ev is None:
                        yield ping
                        continue
                    if trace.first_byte is None:
                        trace.first_byte = self.clock()
                    t = type(ev)
                    if t is ir.UsageEvent:
                        merge_usage(trace.usage, ev.usage)
                    elif t is ir.Start and ev.usage is not None:
                        merge_usage(trace.usage, ev.usage)
                    elif t is ir.Error:
                        status, error = ev.status, ev.message
                    data = enc.feed(ev)
                    if data:
                        yield data
            except GatewayError as e:
                status, error = e.status, e.message
                yield enc.feed(ir.Error(kind=e.kind.value, message=e.message, status=e.status, code=e.code))
        except (asyncio.CancelledError, GeneratorExit):
            status, error = 499, "client disconnected"
            raise
        finally:
            # The client may be gone and this task cancelled: shield the clean-up so the
            # upstream connection is closed at once (stops generation and quota burn).
            with anyio.CancelScope(shield=True):
                await resp.aclose()
            self._finish(trace, status, error)

    # ------------------------------------------------------------------ helpers

    def _finish(self, trace: _Trace, status: int, error: str | None) -> None:
        rec = trace.rec
        rec.status = status
        rec.error = error
        rec.latency_ms = round((self.clock() - trace.t0) * 1000, 2)
        if trace.first_byte is not None:
            rec.ttft_ms = round((trace.first_byte - trace.t0) * 1000, 2)
        u = trace.usage
        rec.input_tokens = u.prompt_tokens
        rec.output_tokens = u.output_tokens
        rec.cached_tokens = u.cache_read_tokens
        rec.reasoning_tokens = u.reasoning_tokens
        self.usage.record(rec)


# ---------------------------------------------------------------------- module helpers


def _peek(body: bytes) -> fastpath.RequestView:
    if not body.strip():
        raise InvalidRequest("The request body is empty: send a JSON object.")
    try:
        view = fastpath.peek(body)
    except msgspec.ValidationError as e:
        raise InvalidRequest(f"Invalid request: {_path_msg(str(e))}") from None
    except msgspec.DecodeError as e:
        raise InvalidRequest(f"The request body is not valid JSON ({e}).") from None
    if not view.model:
        raise InvalidRequest("model: required. Name the model to use, e.g. \"model\": \"gpt-4.1\".", param="model")
    return view


def _path_msg(text: str) -> str:
    # msgspec says "Expected `str`, got `int` - at `$.model`"
    if " - at `$." in text:
        msg, _, path = text.partition(" - at `$.")
        return f"{path.rstrip('`')}: {msg}"
    return text


def _all_caps(dep: Deployment) -> bool:
    c = dep.capabilities
    return c.tools and c.images and c.thinking


def _check_capabilities(req: ir.Request, dep: Deployment) -> None:
    caps = dep.capabilities
    where = f"'{dep.name}' (served by {dep.provider.name} as {dep.upstream_model})"
    if req.tools and not caps.tools:
        raise Unsupported(f"The model {where} does not support tools; remove 'tools' or choose another model.", param="tools")
    if not caps.images and _has_images(req):
        raise Unsupported(f"The model {where} does not accept images; remove the image content or choose a vision model.", param="messages")
    r = req.reasoning
    if not caps.thinking and r is not None and (r.enabled or (r.effort not in (None, "none") and r.enabled is not False)):
        raise Unsupported(f"The model {where} does not support thinking/reasoning; drop the thinking/reasoning settings or choose another model.", param="thinking")


def _has_images(req: ir.Request) -> bool:
    for m in req.messages:
        for p in m.content:
            if isinstance(p, ir.ImagePart):
                return True
            if isinstance(p, ir.ToolResultPart) and any(isinstance(c, ir.ImagePart) for c in p.content):
                return True
    return False


_FORWARD_HEADERS = ("anthropic-beta", "anthropic-version", "openai-beta")


def _forwardable(headers: Mapping[str, str]) -> dict[str, str]:
    return {h: headers[h] for h in _FORWARD_HEADERS if h in headers}


def _for_client(e: ProviderError, client: str) -> ProviderError:
    """Status adjustments when the client's dialect lacks the upstream's status."""
    if e.status == 529 and client != "anthropic":
        e.status = 503
    if e.retry_after is not None:
        e.headers.setdefault("retry-after", str(max(1, int(round(e.retry_after)))))
    return e


class _UsageView(msgspec.Struct):
    usage: dict | None = None
    usageMetadata: dict | None = None


_usage_view = msgspec.json.Decoder(_UsageView)


def _body_usage(dialect: str, raw: bytes) -> ir.Usage:
    """Usage of a non-stream body, read without decoding the rest of it."""
    try:
        u = _usage_view.decode(raw).usage or {}
    except msgspec.MsgspecError:
        return ir.Usage()
    g = lambda d, k: d.get(k) if isinstance(d, dict) and isinstance(d.get(k), int) else 0  # noqa: E731
    if dialect == "anthropic":
        return ir.Usage(
            input_tokens=g(u, "input_tokens"), output_tokens=g(u, "output_tokens"),
            cache_read_tokens=g(u, "cache_read_input_tokens"), cache_write_tokens=g(u, "cache_creation_input_tokens"),
        )
    if dialect == "openai_chat":
        cached = g(u.get("prompt_tokens_details"), "cached_tokens")
        return ir.Usage(
            input_tokens=max(0, g(u, "prompt_tokens") - cached), output_tokens=g(u, "completion_tokens"),
            cache_read_tokens=cached, reasoning_tokens=g(u.get("completion_tokens_details"), "reasoning_tokens"),
        )
    cached = g(u.get("input_tokens_details"), "cached_tokens")
    return ir.Usage(
        input_tokens=max(0, g(u, "input_tokens") - cached), output_tokens=g(u, "output_tokens"),
        cache_read_tokens=cached, reasoning_tokens=g(u.get("output_tokens_details"), "reasoning_tokens"),
    )


async def _decode_stream(U, resp: UpstreamResponse, out: ir.Outgoing) -> AsyncIterator[ir.Event]:
    """Upstream SSE bytes -> IR events (ends with End or Error)."""
    sse = SSEDecoder()
    dec = U.StreamDecoder(out)
    async for chunk in resp.aiter_bytes():
        for sev in sse.feed(chunk):
            for ev in dec.feed(sev):
                yield ev
    for sev in sse.flush():
        for ev in dec.feed(sev):
            yield ev
    for ev in dec.finish():
        yield ev


async def _aiter(items):
    for it in items:
        yield it


async def _keepalive(source: AsyncIterator, interval: float, _frame: bytes):
    """Yield items of ``source``; yield None whenever it stays silent for ``interval`` s."""
    it = source.__aiter__()
    pending: asyncio.Future | None = None
    try:
        while True:
            if pending is None:
                nxt = it.__anext__()
                # Fast path: most items are ready or arrive quickly; only wrap in a task when
                # we actually have to wait with a timeout.
                pending = asyncio.ensure_future(nxt)
            done, _ = await asyncio.wait((pending,), timeout=interval)
            if not done:
                yield None
                continue
            fut, pending = pending, None
            try:
                item = fut.result()
            except StopAsyncIteration:
                return
            yield item
    finally:
        with anyio.CancelScope(shield=True):
            if pending is not None and not pending.done():
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending
            aclose = getattr(it, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(BaseException):
                    await aclose()


def _clock_kw(C, wallclock: Callable[[], float]) -> dict[str, int]:
    """Creation-time keyword for encoders whose wire format carries one (pure code has no clock)."""
    name = C.__name__.rsplit(".", 1)[-1]
    if name == "openai_chat":
        return {"created": int(wallclock())}
    if name == "openai_responses":
        return {"created_at": int(wallclock())}
    return {}


def _ping_for(client: str) -> bytes:
    return _ANTHROPIC_PING if client == "anthropic" else KEEPALIVE_COMMENT


def _stream_error(C, client: str, model: str, e: GatewayError) -> bytes:
    """An in-stream error frame in the client's dialect (fast path, no encoder state)."""
    enc = C.StreamEncoder(ir.Request(model=model, source=client), model)
    return enc.feed(ir.Error(kind=e.kind.value, message=e.message, status=e.status, code=e.code))
