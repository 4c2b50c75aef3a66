"""Where pure translation meets I/O: route -> render -> call provider -> translate -> encode.

``Gateway.generate`` serves one client request of any dialect. The routing service plans the
entries the requested model (or flow) resolves to — cooled-down accounts skipped, the session's
account first — and the pipeline tries them in order. Same dialect in and out takes the fast
path (bytes forwarded, only ``model`` rewritten); otherwise the request goes through the IR.

Before the first byte reaches the client a failure the routing policy calls retryable (429,
limit reached, 5xx, unreachable, timeouts, revoked sign-in, an in-stream error before the first
event) cools the account down and moves on to the next entry; after it, never: the
stream ends with a well-formed error event in the client's dialect. Nothing here touches the
database: usage records and routing state are persisted in the background.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import msgspec

from antiapi.errors import (
    GatewayError,
    InvalidRequest,
    ProviderError,
    StreamInterrupted,
    Unsupported,
)
from antiapi.providers.base import UpstreamCall, UpstreamResponse
from antiapi.server.context import set_request_context
from antiapi.server.signatures import SignatureTap, ToolSignatureCache
from antiapi.server.routing import Deployment, RoutingService
from antiapi.server.usage import UsageLog, UsageRecord
from antiapi.translate import dialect as dialects
from antiapi.translate import fastpath, ir
from antiapi.translate.aggregate import Aggregator, error_from_event, merge_usage
from antiapi.translate.common import output_limit_from_error
from antiapi.wire.sse import KEEPALIVE_COMMENT, SSEDecoder

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

#: headers naming the conversation (session affinity), checked in this order
_SESSION_HEADERS = ("x-claude-code-session-id", "session_id", "session-id", "x-session-id", "conversation_id")


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
        table: RoutingService,
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
        self.signatures = ToolSignatureCache()
        #: (provider name, upstream model) -> the most output tokens it accepts, learnt from its
        #: "max_tokens is too large" answers; translated requests are clamped to it
        self.output_limits: dict[tuple[str, str], int] = {}

    # ------------------------------------------------------------------ entry point

    async def generate(
        self, *, endpoint: str, client: str, body: bytes, headers: Mapping[str, str], request_id: str,
        client_key: str | None = None,
    ) -> Reply:
        """Serve one generate request. Raises GatewayError before anything was sent."""
        trace = _Trace(
            rec=UsageRecord(
                time=self.wallclock(), request_id=request_id, endpoint=endpoint, client_dialect=client,
                model="", status=0, latency_ms=0.0, client_key=client_key,
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
        requested = view.model or None
        rec = trace.rec
        rec.model = requested or ""
        rec.stream = stream = bool(view.stream)
        set_request_context(request_id, requested)
        routing = self.table
        router = routing.router
        session = _session_key(headers, view)
        plan = router.plan(requested, session)
        model = requested or plan.name  # the name echoed to the client
        if plan.name != requested:
            rec.target = plan.name
            if requested is None:
                body = fastpath.rewrite_model(body, plan.name)
            set_request_context(request_id, f"{model}->{plan.name}" if requested else plan.name)
        ireq: ir.Request | None = None
        last_error: ProviderError | None = None
        unsupported: Unsupported | None = None
        pending = collections.deque(plan.steps)
        retried: set[int] = set()
        while pending:
            step = pending.popleft()
            if step.skip is not None:
                rec.route.append(f"{step.label}: skipped ({step.skip})")
                continue
            dep = routing.deployment(plan, step)
            provider = dep.provider
            upstream = client if client in provider.dialects else provider.dialects[0]
            passthrough = upstream == client and provider.passthrough
            must_parse = not passthrough or not _all_caps(dep)
            if must_parse and ireq is None:
                ireq = C.parse_request(body)
            if ireq is not None:
                try:
                    _check_capabilities(ireq, dep)
                except Unsupported as e:
                    unsupported = unsupported or e
                    rec.route.append(f"{step.label}: skipped (cannot serve this request: {e.message})")
                    continue
            fast = passthrough and (dep.capabilities.streaming or not stream)
            out: ir.Outgoing | None = None
            if fast:
                up_body = fastpath.rewrite_model(body, dep.upstream_model)
                up_stream = stream
            else:
                assert ireq is not None
                U = dialects.load(upstream)
                target = provider.target(dep.upstream_model)
                if stream and not dep.capabilities.streaming:
                    ireq.stream = False
                if upstream == "gemini":
                    self.signatures.fill(ireq)  # replay Gemini's functionCall thoughtSignatures
                asked = ireq.max_output_tokens
                limit = self.output_limits.get((provider.name, dep.upstream_model))
                if limit is not None and asked is not None and asked > limit:
                    ireq.max_output_tokens = limit  # this upstream refuses more (learnt below)
                out = U.render_request(ireq, target)
                ireq.max_output_tokens = asked
                if upstream != "gemini":
                    out.body["model"] = dep.upstream_model
                up_body = _json.encode(out.body)
                up_stream = out.stream
                ireq.stream = stream
            rec.provider = provider.name
            rec.provider_type = provider.type
            rec.account = provider.account
            rec.upstream_model = dep.upstream_model
            rec.upstream_dialect = upstream
            set_request_context(request_id, model, provider.name)
            call = UpstreamCall(
                dialect=upstream, model=dep.upstream_model, body=up_body, stream=up_stream,
                forward_headers=_forwardable(headers) if upstream == client else {}, request_id=request_id,
                session=session,
            )
            trace.usage = ir.Usage()
            try:
                resp = await provider.send(call)
                reply = await self._respond(trace, C, client, upstream, dep, resp, ireq, out, model, stream, up_stream, fast)
            except ProviderError as e:
                limit = _output_limit(e) if not fast and ireq is not None and id(step) not in retried else None
                if limit is not None and ireq is not None and (ireq.max_output_tokens or 0) > limit:
                    # the client asked for more output than this model gives (Claude Code asks 128000):
                    # remember the limit and send the same request again, before any byte left
                    self.output_limits[(provider.name, dep.upstream_model)] = limit
                    retried.add(id(step))
                    rec.route.append(f"{step.label}: {e.status}: at most {limit} output tokens; retried")
                    log.info("%s/%s accepts at most %d output tokens; retrying with that", provider.name,
                             dep.upstream_model, limit)
                    pending.appendleft(step)
                    continue
                verdict = router.failed(plan, step, e)
                note = f"{step.label}: {e.status} {e.kind.value}"
                rec.attempts.append(note)
                rec.route.append(note)
                last_error = e
                if verdict.fail_over:
                    log.info("failing over from %s (%s): %s", provider.name, dep.upstream_model, e.message)
                    continue
                router.answered(plan, step)
                raise _for_client(e, client) from None
            router.served(plan, step)
            rec.route.append(f"{step.label}: served")
            if log.isEnabledFor(logging.DEBUG):
                log.debug("served by %s as %s", provider.name, dep.upstream_model)
            return reply
        if last_error is None and unsupported is not None:
            raise unsupported
        err = router.exhausted(plan, last_error)
        if err is not last_error:
            log.info("no entry left for %s: %s", plan.name, err.message)
        raise _for_client(err, client) from None

    # ------------------------------------------------------------------ responses

    async def _respond(
        self, trace: _Trace, C, client: str, upstream: str, dep: Deployment, resp: UpstreamResponse,
        ireq: ir.Request | None, out: ir.Outgoing | None, model: str, stream: bool, up_stream: bool, fast: bool,
    ) -> Reply:
        headers = {"x-antiapi-provider": dep.provider.name}
        if stream:
            wait = self.table.settings.first_event_wait
            try:
                if fast:
                    chunks = resp.aiter_bytes()
                    source = await _hold_first(chunks, wait, _FirstEvent(client)) if wait > 0 else chunks
                    gen = self._fast_stream(trace, C, client, resp, source, model, dep.upstream_model)
                else:
                    assert ireq is not None and out is not None
                    U = dialects.load(upstream)
                    tap = self.signatures.tap() if upstream == "gemini" else None
                    if up_stream:
                        events = _decode_stream(U, resp, out, tap)
                    else:
                        events = _aiter([_tapped(U.decode_response(await resp.aread(), out), tap)])
                    source = await _hold_first(events, wait, _first_content_batch) if wait > 0 else events
                    gen = self._translated_stream(trace, C, upstream, resp, ireq, out, model, source)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await resp.aclose()
                raise
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
            tap = self.signatures.tap() if upstream == "gemini" else None
            if up_stream:
                async for batch in _decode_stream(U, resp, out, tap):
                    agg.feed_all(batch)
            else:
                agg.feed_all(_tapped(U.decode_response(await resp.aread(), out), tap))
            trace.first_byte = self.clock()
            trace.usage = agg.usage
            result = agg.response()
            return Reply(status=200, headers=headers, body=C.render_response(result, ireq, model, **_clock_kw(C, self.wallclock)))
        finally:
            await resp.aclose()

    async def _fast_stream(
        self, trace: _Trace, C, client: str, resp: UpstreamResponse, chunks: AsyncIterator[bytes], model: str,
        upstream_model: str,
    ) -> AsyncIterator[bytes]:
        replace = fastpath.model_replacer(upstream_model, model)
        terminal = _TERMINAL[client]
        decoder = SSEDecoder()
        scan = C.scan_usage
        done = False
        status, error = 200, None
        try:
            try:
                async for chunk in _keepalive(chunks, self.keepalive):
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
                        if done:
                            break
                    if out:
                        yield b"".join(out)
                    if done:
                        # The answer is complete: stop reading (the client may hang up at once;
                        # that is not a disconnect) and let `finally` close the upstream.
                        break
                if not done:
                    raise StreamInterrupted("The upstream stream ended before completion.")
            except GatewayError as e:
                status, error = e.status, e.message
                yield _stream_error(C, client, model, e)
        except (asyncio.CancelledError, GeneratorExit):
            if not done:
                status, error = 499, "client disconnected"
            raise
        finally:
            await self._end_stream(trace, resp, status, error)

    async def _translated_stream(
        self, trace: _Trace, C, upstream: str, resp: UpstreamResponse, ireq: ir.Request, out: ir.Outgoing,
        model: str, events: AsyncIterator[ir.Event],
    ) -> AsyncIterator[bytes]:
        enc = C.StreamEncoder(ireq, model, **_clock_kw(C, self.wallclock))
        status, error = 200, None
        done = False
        ping = _ping_for(ireq.source or "")
        try:
            try:
                # One batch per upstream read: all of its events go to the client in one write.
                async for batch in _keepalive(events, self.keepalive):
                    if batch is None:
                        yield ping
                        continue
                    if trace.first_byte is None:
                        trace.first_byte = self.clock()
                    parts = []
                    for ev in batch:
                        t = type(ev)
                        if t is ir.UsageEvent:
                            merge_usage(trace.usage, ev.usage)
                        elif t is ir.Start and ev.usage is not None:
                            merge_usage(trace.usage, ev.usage)
                        elif t is ir.Error:
                            status, error = ev.status, ev.message
                        data = enc.feed(ev)
                        if data:
                            parts.append(data)
                        if t is ir.End or t is ir.Error:
                            done = True
                            break
                    if parts:
                        yield parts[0] if len(parts) == 1 else b"".join(parts)
                    if done:
                        break  # complete: stop reading the upstream (see _fast_stream)
            except GatewayError as e:
                status, error = e.status, e.message
                done = True
                yield enc.feed(ir.Error(kind=e.kind.value, message=e.message, status=e.status, code=e.code))
        except (asyncio.CancelledError, GeneratorExit):
            if not done:
                status, error = 499, "client disconnected"
            raise
        finally:
            await self._end_stream(trace, resp, status, error)

    # ------------------------------------------------------------------ helpers

    async def _end_stream(self, trace: _Trace, resp: UpstreamResponse, status: int, error: str | None) -> None:
        """Close the upstream and record the request. The client may be gone and this task
        cancelled: the close is shielded so the upstream stops at once (no more generation,
        no more quota burnt)."""
        with anyio.CancelScope(shield=True):
            await resp.aclose()
        self._finish(trace, status, error)

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


class _View(msgspec.Struct):
    """The top-level fields routing needs, decoded without touching the rest of the body."""

    model: str | None = None
    stream: bool | None = None
    prompt_cache_key: Any = None
    user: Any = None


_view_decoder = msgspec.json.Decoder(_View)


def _peek(body: bytes) -> _View:
    """``model`` (may be absent: the default model then serves), ``stream`` and the session keys."""
    if not body.strip():
        raise InvalidRequest("The request body is empty: send a JSON object.")
    try:
        return _view_decoder.decode(body)
    except msgspec.ValidationError as e:
        raise InvalidRequest(f"Invalid request: {_path_msg(str(e))}") from None
    except msgspec.DecodeError as e:
        raise InvalidRequest(f"The request body is not valid JSON ({e}).") from None


def _session_key(headers: Mapping[str, str], view: _View) -> str | None:
    """The conversation a request belongs to: a session header, else ``prompt_cache_key``, else
    OpenAI's ``user``."""
    for h in _SESSION_HEADERS:
        v = headers.get(h)
        if v:
            return v
    k = view.prompt_cache_key
    if isinstance(k, str) and k:
        return k
    u = view.user
    if isinstance(u, str) and u:
        return "user:" + u
    return None


# ---------------------------------------------------------------------- holding the first event

_DONE = object()


class _FirstEvent:
    """Fast path: decodes the first SSE event of a same-dialect stream to see whether the stream
    started (commit) or the upstream failed at once (raise: fail over)."""

    __slots__ = ("sse", "dec")

    def __init__(self, dialect: str) -> None:
        self.sse = SSEDecoder()
        self.dec = dialects.load(dialect).StreamDecoder(ir.Outgoing(body={}, stream=True))

    def __call__(self, chunk: bytes) -> bool:
        for sev in self.sse.feed(chunk):
            try:
                evs = self.dec.feed(sev)
            except Exception:  # only a detector: anything odd means "commit"
                return True
            for ev in evs:
                if _first_content_event(ev):
                    return True
        return False


def _first_content_batch(batch: list[Any]) -> bool:
    """:func:`_first_content_event` over one batch of events."""
    for ev in batch:
        if _first_content_event(ev):
            return True
    return False


def _first_content_event(ev: Any) -> bool:
    """True at the first event (commit); raises the upstream's error when the stream failed
    before it (e.g. ``response.failed`` or an Anthropic ``error`` as the very first event)."""
    if type(ev) is ir.Error:
        raise error_from_event(ev)
    return True


class _Held:
    """A source whose first items were read ahead (see :func:`_hold_first`)."""

    __slots__ = ("it", "items", "pending")

    def __init__(self, it: AsyncIterator, items: list[Any], pending: Any) -> None:
        self.it, self.items, self.pending = it, items, pending


async def _hold_first(source: AsyncIterator, wait: float, commit: Callable[[Any], bool]) -> _Held:
    """Read ``source`` until ``commit(item)`` says the stream started (at most ``wait`` seconds),
    so an error as the first event can still fail over. :func:`_keepalive` replays the held
    items, then goes on with the rest of ``source`` (no extra generator layer per item)."""
    held: list[Any] = []
    it = source.__aiter__()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    pending: Any = None
    fut: asyncio.Future | None = None
    try:
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            fut = asyncio.ensure_future(it.__anext__())
            done, _ = await asyncio.wait((fut,), timeout=remaining)
            if not done:
                pending = fut
                break
            try:
                item = fut.result()
            except StopAsyncIteration:
                pending = _DONE
                break
            held.append(item)
            if commit(item):
                break
    except BaseException:  # an upstream error (fail over) or the client went away
        with anyio.CancelScope(shield=True):
            if fut is not None and not fut.done():
                fut.cancel()
                with contextlib.suppress(BaseException):
                    await fut
            aclose = getattr(it, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(BaseException):
                    await aclose()
        raise
    return _Held(it, held, pending)


def _path_msg(text: str) -> str:
    # msgspec says "Expected `str`, got `int` - at `$.model`"
    if " - at `$." in text:
        msg, _, path = text.partition(" - at `$.")
        return f"{path.rstrip('`')}: {msg}"
    return text


def _all_caps(dep: Deployment) -> bool:
    c = dep.capabilities
    return c.tools and c.images and c.thinking


def _output_limit(e: ProviderError) -> int | None:
    """The output-token limit an upstream's 400 names, else None."""
    if e.status != 400:
        return None
    return output_limit_from_error(e.message)


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


async def _decode_stream(
    U, resp: UpstreamResponse, out: ir.Outgoing, tap: SignatureTap | None = None
) -> AsyncIterator[list[ir.Event]]:
    """Upstream SSE bytes -> IR events, one non-empty list per upstream read (the last list
    ends with End or Error)."""
    sse = SSEDecoder()
    dec = U.StreamDecoder(out)
    async for chunk in resp.aiter_bytes():
        batch: list[ir.Event] = []
        for sev in sse.feed(chunk):
            batch += dec.feed(sev)
        if batch:
            if tap is not None:
                for ev in batch:
                    tap.feed(ev)
            yield batch
    batch = []
    for sev in sse.flush():
        batch += dec.feed(sev)
    batch += dec.finish()
    if batch:
        yield batch


def _tapped(events: list[ir.Event], tap: SignatureTap | None) -> list[ir.Event]:
    if tap is not None:
        for ev in events:
            tap.feed(ev)
    return events


async def _aiter(items):
    for it in items:
        yield it


async def _wait_done(fut: asyncio.Future, timeout: float) -> bool:
    """Wait until ``fut`` is done or ``timeout`` passes, without cancelling it. Cheaper than
    ``asyncio.wait`` (no sets, no extra task): one future and one timer."""
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()

    def wake(_: object = None) -> None:
        if not waiter.done():
            waiter.set_result(None)

    fut.add_done_callback(wake)
    timer = loop.call_later(timeout, wake)
    try:
        await waiter
    finally:
        timer.cancel()
        fut.remove_done_callback(wake)
    return fut.done()


async def _keepalive(source: AsyncIterator | _Held, interval: float):
    """Yield items of ``source``; yield None whenever it stays silent for ``interval`` s."""
    pending: Any = None
    held: list[Any] = []
    if type(source) is _Held:
        it, pending, held = source.it, source.pending, source.items
    else:
        it = source.__aiter__()
    try:
        if held:
            for item in held:
                yield item
        if pending is _DONE:
            return
        while True:
            if pending is None:
                nxt = it.__anext__()
                # Fast path: most items are ready or arrive quickly; only wrap in a task when
                # we actually have to wait with a timeout.
                pending = asyncio.ensure_future(nxt)
            if not pending.done() and not await _wait_done(pending, interval):
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
            if pending is not None and pending is not _DONE and not pending.done():
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
