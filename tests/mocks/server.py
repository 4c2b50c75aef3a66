"""Scriptable mock upstream servers speaking the official provider APIs.

``MockUpstream`` is a raw ASGI app served by uvicorn in a background thread on 127.0.0.1 with an
ephemeral port. It emulates (per /work/shared/docs/upstreams.md §3 and §4.3):

* ``openai_chat``      POST /v1/chat/completions, GET /v1/models
* ``openai_responses`` POST /v1/responses, GET /v1/models
* ``anthropic``        POST /v1/messages, POST /v1/messages/count_tokens, GET /v1/models
* ``gemini``           POST /v1beta/models/{model}:generateContent | :streamGenerateContent |
                       :countTokens, GET /v1beta/models
* ``all``              every route above (GET /v1/models answers in Anthropic shape when the request
                       carries ``anthropic-version`` or ``x-api-key``, else OpenAI shape)

Replies come from ``handler`` (if it returns non-None), then the FIFO script queue (``enqueue``),
then ``default``. Every request is recorded in ``requests``. Must not import antiapi.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Awaitable, Callable, Union
from urllib.parse import parse_qsl

import uvicorn

from . import anthropic as _anthropic
from . import gemini as _gemini
from . import openai_chat as _chat
from . import openai_responses as _responses
from ._common import Ctx, dumps, estimate_tokens
from .recorded import is_stream_file, recorded_body, recorded_events
from .scripts import (
    Delay, DropAfter, Error, MidStreamError, Plan, Reply, Stall, Text, Thinking, to_plan,
)
_SIG_RE = re.compile(rb'"(?:signature|thoughtSignature|encrypted_content)"\s*:\s*"([^"]+)"')


def _signatures_in(raw: bytes) -> set[str]:
    """Signatures present in a recorded file, so replaying them back is accepted."""
    return {m.decode() for m in _SIG_RE.findall(raw)}

DIALECTS = ("openai_chat", "openai_responses", "anthropic", "gemini")
_MODULES: dict[str, ModuleType] = {
    "openai_chat": _chat, "openai_responses": _responses, "anthropic": _anthropic, "gemini": _gemini,
}
_GEMINI_RE = re.compile(r"^/(v1beta|v1)/models/([^/:]+):(generateContent|streamGenerateContent|countTokens)$")
_GEMINI_MODEL_RE = re.compile(r"^/(v1beta|v1)/models(?:/([^/:]+))?$")
_OPENAI_MODEL_RE = re.compile(r"^/v1/models(?:/([^/]+))?$")
_OPENAI_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
    "library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you "
    "have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)"
)
_BAD_JSON = {
    "openai_chat": _OPENAI_BAD_JSON,
    "openai_responses": _OPENAI_BAD_JSON,
    "anthropic": "There was an issue with your request body: invalid JSON",
    "gemini": "Invalid JSON payload received. Unexpected token.",
}


@dataclass
class RecordedRequest:
    """One request as the mock received it."""

    method: str
    path: str
    query_string: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any = None
    dialect: str | None = None
    endpoint: str | None = None
    model: str | None = None
    stream: bool = False
    status: int | None = None
    disconnected: bool = False
    received_at: float = field(default_factory=time.monotonic)


Handler = Callable[[RecordedRequest], Union[Any, Awaitable[Any]]]


@dataclass
class _Out:
    status: int
    headers: dict[str, str]
    body: bytes | None = None
    events: list[bytes] | None = None
    faults: list[Any] = field(default_factory=list)
    module: ModuleType | None = None
    ctx: Ctx | None = None


class MockUpstream:
    """A scriptable fake of the official provider APIs (see module docstring).

    Args:
        dialect: one of ``DIALECTS`` or ``"all"``.
        api_key: the key every request must carry (in that API's header); None: any key or none
            is accepted, like a local server (Ollama, vLLM without ``--api-key``).
        validate: run the request validation the real API does (400 in the dialect's envelope).
        strict_params: reject unknown top-level request fields like the real APIs do.
        anthropic_alternation: Anthropic roles must alternate and start with ``user``.
        reasoning_model_prefixes: Chat models that reject ``max_tokens``.
        max_output_tokens: Chat: the most completion tokens the model gives; more is a 400 worded like
            the real API's ("max_tokens is too large: N. This model supports at most M …").
        models: model ids for the models list (and, with ``strict_models``, the only ones accepted).
        gemini_crlf: end Gemini SSE events with ``\\r\\n\\r\\n`` (the real service does) instead of ``\\n\\n``.
        check_signatures: reject thinking signatures / encrypted_content / thoughtSignatures this
            mock never issued for that dialect (as the real services reject foreign ones).
    """

    def __init__(
        self,
        dialect: str = "all",
        *,
        api_key: str | None = "test-key",
        validate: bool = True,
        strict_params: bool = True,
        anthropic_alternation: bool = True,
        reasoning_model_prefixes: tuple[str, ...] = _chat.DEFAULT_REASONING_PREFIXES,
        max_output_tokens: int | None = None,
        models: list[str] | None = None,
        strict_models: bool = False,
        gemini_crlf: bool = True,
        check_signatures: bool = False,
    ) -> None:
        if dialect != "all" and dialect not in DIALECTS:
            raise ValueError(f"dialect must be one of {DIALECTS} or 'all', not {dialect!r}")
        self.dialect = dialect
        self.api_key = api_key
        self.validate = validate
        self.strict_params = strict_params
        self.anthropic_alternation = anthropic_alternation
        self.reasoning_model_prefixes = tuple(reasoning_model_prefixes)
        self.max_output_tokens = max_output_tokens
        self.models = models
        self.strict_models = strict_models
        self.gemini_crlf = gemini_crlf
        self.check_signatures = check_signatures
        self.issued_signatures: dict[str, set[str]] = {d: set() for d in DIALECTS}
        self.requests: list[RecordedRequest] = []
        self.errors: list[BaseException] = []  # exceptions raised inside the mock (bugs, bad handlers)
        self.default: Any = None
        self.handler: Handler | None = None
        self.extra_headers: dict[str, str] = {}
        self._queue: deque[Any] = deque()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._abort: asyncio.Event | None = None
        self.port = 0

    # ------------------------------------------------------------------ public API

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """``root/v1`` (OpenAI SDK style) or ``root/v1beta`` for a Gemini-only mock.
        The Anthropic SDK wants ``root_url`` (it appends ``/v1/messages`` itself)."""
        return self.root_url + ("/v1beta" if self.dialect == "gemini" else "/v1")

    @property
    def openai_base_url(self) -> str:
        """For ``openai.OpenAI(base_url=...)``."""
        return self.root_url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        """For ``anthropic.Anthropic(base_url=...)`` (no ``/v1``: the SDK appends it)."""
        return self.root_url

    @property
    def gemini_base_url(self) -> str:
        return self.root_url + "/v1beta"

    @property
    def last_request(self) -> RecordedRequest:
        return self.requests[-1]

    def enqueue(self, *items: Any) -> MockUpstream:
        """Append replies to the FIFO script (validated eagerly)."""
        for item in items:
            plan = to_plan(item)
            if plan.recorded is not None and not plan.recorded.file.is_file():
                raise FileNotFoundError(plan.recorded.file)
            self._queue.append(item)
        return self

    @property
    def pending(self) -> int:
        """Number of scripted replies not used yet."""
        return len(self._queue)

    def reset(self) -> None:
        self.requests.clear()
        self.errors.clear()
        for sigs in self.issued_signatures.values():
            sigs.clear()
        self._queue.clear()
        self.default = None
        self.handler = None

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[RecordedRequest]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"expected {n} requests, got {len(self.requests)}")
            time.sleep(0.005)
        return self.requests

    def start(self) -> MockUpstream:
        if self._thread is not None:
            return self
        # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose proto is
        # IPPROTO_TCP; without it every keep-alive response waits ~40 ms (Nagle + delayed ACK).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        self._sock = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self, lifespan="off", log_config=None, access_log=False, http="h11", loop="asyncio",
            ws="none", timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=f"mock-upstream-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("mock upstream failed to start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        if self._loop is not None and self._abort is not None:
            self._loop.call_soon_threadsafe(self._abort.set)
        self._server.should_exit = True
        self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None

    def __enter__(self) -> MockUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ server thread

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._abort = asyncio.Event()
        assert self._server is not None and self._sock is not None
        await self._server.serve(sockets=[self._sock])

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        headers: dict[str, str] = {}
        for k, v in scope["headers"]:
            name, value = k.decode("latin-1").lower(), v.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        qs = scope.get("query_string", b"").decode("latin-1")
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        req = RecordedRequest(method=scope["method"], path=scope["path"], query_string=qs,
                              query=dict(parse_qsl(qs, keep_blank_values=True)), headers=headers,
                              body=body, json=parsed)
        self.requests.append(req)
        disconnected = asyncio.Event()
        finished = [False]

        async def watch() -> None:
            msg = await receive()
            if msg["type"] == "http.disconnect" and not finished[0]:
                req.disconnected = True
                disconnected.set()

        watcher = asyncio.ensure_future(watch())
        try:
            try:
                out = await self._respond(req)
            except Exception as exc:  # surfaced to tests through .errors and a 500 in the dialect envelope
                self.errors.append(exc)
                dialect = req.dialect or self._guess_dialect(req)
                out = self._error_out(dialect, Error(500, message=f"mock internal error: {exc!r}"),
                                      self._new_rid(dialect))
            req.status = out.status
            await self._send(out, send, disconnected, finished)
        finally:
            watcher.cancel()

    # ------------------------------------------------------------------ request handling

    def _enabled(self, dialect: str) -> bool:
        return self.dialect == "all" or self.dialect == dialect

    def _route(self, req: RecordedRequest) -> tuple[str, str, str | None] | None:
        m, p = req.method, req.path.rstrip("/") or "/"
        if m == "POST" and p == "/v1/chat/completions" and self._enabled("openai_chat"):
            return "openai_chat", "chat", None
        if m == "POST" and p == "/v1/responses" and self._enabled("openai_responses"):
            return "openai_responses", "responses", None
        if m == "POST" and p == "/v1/messages" and self._enabled("anthropic"):
            return "anthropic", "messages", None
        if m == "POST" and p == "/v1/messages/count_tokens" and self._enabled("anthropic"):
            return "anthropic", "count_tokens", None
        if m == "POST" and (g := _GEMINI_RE.match(p)) and self._enabled("gemini"):
            return "gemini", g.group(3), g.group(2)
        if m == "GET" and (g := _GEMINI_MODEL_RE.match(p)) and g.group(1) == "v1beta" and self._enabled("gemini"):
            return "gemini", "models", g.group(2)
        if m == "GET" and (g := _OPENAI_MODEL_RE.match(p)):
            anth = "anthropic-version" in req.headers or "x-api-key" in req.headers
            for d in (["anthropic", "openai_chat", "openai_responses"] if anth
                      else ["openai_chat", "openai_responses", "anthropic"]):
                if self._enabled(d):
                    return d, "models", g.group(1)
        if m == "GET" and (g := _GEMINI_MODEL_RE.match(p)) and self._enabled("gemini"):
            return "gemini", "models", g.group(2)
        return None

    def _guess_dialect(self, req: RecordedRequest) -> str:
        if self.dialect != "all":
            return self.dialect
        if req.path.startswith("/v1beta"):
            return "gemini"
        if "anthropic-version" in req.headers or "x-api-key" in req.headers:
            return "anthropic"
        return "openai_chat"

    def _models(self, dialect: str) -> list[str]:
        if self.models is not None:
            return list(self.models)
        return list(_MODULES[dialect].DEFAULT_MODELS)

    def _error_out(self, dialect: str, err: Error, rid: str, *, array: bool = False) -> _Out:
        mod = _MODULES[dialect]
        status, extra, body = mod.render_error(err, rid)
        headers = self._headers(dialect, rid)
        headers.update(extra)
        if isinstance(body, (bytes, str)):
            data = body.encode() if isinstance(body, str) else body
        else:
            if array:
                body = [body]
            indent = {"anthropic": None, "gemini": 2}.get(dialect, 4)
            data = dumps(body, indent=indent).encode()
        headers["content-type"] = ("application/json; charset=UTF-8" if dialect == "gemini"
                                   else "application/json")
        return _Out(status, headers, body=data)

    def _headers(self, dialect: str, rid: str) -> dict[str, str]:
        h = _MODULES[dialect].base_headers(rid)
        h.update(self.extra_headers)
        return h

    def _new_rid(self, dialect: str) -> str:
        return _anthropic.new_request_id() if dialect == "anthropic" else _chat.new_request_id()

    async def _respond(self, req: RecordedRequest) -> _Out:
        route = self._route(req)
        if route is None:
            dialect = self._guess_dialect(req)
            rid = self._new_rid(dialect)
            if dialect == "anthropic":
                body: Any = _anthropic.error_body("not_found_error", "Not Found", rid)
            elif dialect == "gemini":
                body = _gemini.error_body(404, f"Method not found: {req.method} {req.path}", "NOT_FOUND")
            else:
                body = {"error": {"message": f"Invalid URL ({req.method} {req.path})",
                                  "type": "invalid_request_error", "param": None, "code": None}}
            return self._error_out(dialect, Error(404, body=body), rid)
        dialect, endpoint, model = route
        req.dialect, req.endpoint = dialect, endpoint
        mod = _MODULES[dialect]
        rid = self._new_rid(dialect)
        if self.api_key is None:  # a server that needs no key (a local Ollama, vLLM without --api-key)
            auth = None
        elif dialect == "gemini":
            auth = _gemini.auth_error(req.headers, req.query, self.api_key)
        else:
            auth = mod.auth_error(req.headers, self.api_key)
        gemini_array = endpoint == "streamGenerateContent" and req.query.get("alt") != "sse"
        if auth is not None:
            return self._error_out(dialect, auth, rid, array=gemini_array)

        if endpoint == "models":
            return await self._models_out(req, dialect, model, rid)

        body = req.json
        if not isinstance(body, dict):
            return self._error_out(dialect, Error(400, message=_BAD_JSON[dialect]), rid, array=gemini_array)
        req.model = model or body.get("model")
        req.stream = endpoint == "streamGenerateContent" or (
            endpoint in ("chat", "responses", "messages") and body.get("stream") is True)

        if self.validate:
            err = self._validate(dialect, endpoint, body, str(req.model))
            if err is not None:
                return self._error_out(dialect, err, rid, array=gemini_array)
        if self.strict_models and req.model not in self._models(dialect):
            return self._error_out(dialect, self._model_not_found(dialect, str(req.model)), rid,
                                   array=gemini_array)

        ctx = Ctx(body=body, model=str(req.model), stream=req.stream, query=req.query,
                  input_estimate=estimate_tokens(body), request_id=rid,
                  options={"gemini_crlf": self.gemini_crlf, "gemini_sse": not gemini_array})

        if endpoint in ("count_tokens", "countTokens"):
            item = await self._call_handler(req)
            if item is None:
                data = (mod.count_tokens_body(ctx.input_estimate))
                return self._json_out(dialect, rid, data)
            return self._plan_out(to_plan(item), req, ctx, dialect, rid)

        item = await self._call_handler(req)
        if item is None:
            item = self._queue.popleft() if self._queue else None
        plan = to_plan(item) if item is not None else Plan()
        return self._plan_out(plan, req, ctx, dialect, rid)

    def _validate(self, dialect: str, endpoint: str, body: dict[str, Any], model: str) -> Error | None:
        sigs = self.issued_signatures[dialect] if self.check_signatures else None
        if dialect == "anthropic":
            return _anthropic.validate(body, count_tokens=endpoint == "count_tokens",
                                       strict_params=self.strict_params,
                                       alternation=self.anthropic_alternation, signatures=sigs)
        if dialect == "openai_chat":
            return _chat.validate(body, strict_params=self.strict_params,
                                  reasoning_prefixes=self.reasoning_model_prefixes,
                                  max_output_tokens=self.max_output_tokens)
        if dialect == "openai_responses":
            return _responses.validate(body, strict_params=self.strict_params, signatures=sigs)
        return _gemini.validate(body, count_tokens=endpoint == "countTokens", strict_params=self.strict_params,
                                model=model, signatures=sigs)

    def _model_not_found(self, dialect: str, model: str) -> Error:
        if dialect == "anthropic":
            return Error(404, message=f"model: {model}")
        if dialect == "gemini":
            return Error(404, message=f"models/{model} is not found for API version v1beta, or is not "
                         "supported for generateContent. Call ListModels to see the list of available "
                         "models and their supported methods.")
        return Error(404, code="model_not_found", param="model",
                     message=f"The model `{model}` does not exist or you do not have access to it.")

    async def _call_handler(self, req: RecordedRequest) -> Any:
        if self.handler is None:
            return None
        result = self.handler(req)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def _models_out(self, req: RecordedRequest, dialect: str, model: str | None, rid: str) -> _Out:
        item = await self._call_handler(req)
        if item is not None:
            return self._plan_out(to_plan(item), req, None, dialect, rid)
        ids = self._models(dialect)
        if model is not None:
            if model not in ids:
                return self._error_out(dialect, self._model_not_found(dialect, model), rid)
            listing = _MODULES[dialect].models_body([model])
            data = listing.get("data", listing.get("models"))[0]
        else:
            mod = _MODULES[dialect]
            data = mod.models_body(ids, req.query) if dialect in ("anthropic", "gemini") else mod.models_body(ids)
        return self._json_out(dialect, rid, data)

    def _json_out(self, dialect: str, rid: str, data: Any, extra: dict[str, str] | None = None) -> _Out:
        headers = self._headers(dialect, rid)
        if extra:
            headers.update(extra)
        indent = None if dialect == "anthropic" else 2
        headers["content-type"] = ("application/json; charset=UTF-8" if dialect == "gemini"
                                   else "application/json")
        return _Out(200, headers, body=dumps(data, indent=indent).encode())

    def _default_reply(self, req: RecordedRequest) -> Any:
        d = self.default
        if callable(d):
            d = d(req)
        if d is not None:
            return d
        text = _MODULES[req.dialect or "openai_chat"].last_user_text(req.json or {})
        return Reply(parts=[Text(f"mock reply: {text}")])

    def _plan_out(self, plan: Plan, req: RecordedRequest, ctx: Ctx | None, dialect: str, rid: str) -> _Out:
        mod = _MODULES[dialect]
        stream_ct = "text/event-stream" if dialect == "gemini" else "text/event-stream; charset=utf-8"
        if plan.raw is not None:
            return self._raw_out(plan, dialect, rid)
        if plan.error is not None:
            gemini_array = ctx is not None and not ctx.options.get("gemini_sse", True) and ctx.stream
            out = self._error_out(dialect, plan.error, rid, array=gemini_array)
            out.faults = plan.faults
            return out
        if plan.recorded is not None:
            self.issued_signatures[dialect].update(_signatures_in(plan.recorded.file.read_bytes()))
            headers = self._headers(dialect, rid)
            if is_stream_file(plan.recorded):
                headers.update({"content-type": stream_ct, "cache-control": "no-cache"})
                return _Out(200, headers, events=recorded_events(plan.recorded), faults=plan.faults,
                            module=mod, ctx=ctx)
            headers["content-type"] = "application/json"
            return _Out(200, headers, body=recorded_body(plan.recorded), faults=plan.faults)
        reply = plan.reply
        if reply is None:
            inner = to_plan(self._default_reply(req))
            inner.faults = [*inner.faults, *plan.faults]
            return self._plan_out(inner, req, ctx, dialect, rid)
        assert ctx is not None
        self.issued_signatures[dialect].update(p.sig for p in reply.parts if isinstance(p, Thinking))
        headers = self._headers(dialect, rid)
        headers.update(reply.headers)
        if ctx.stream:
            headers.update({"content-type": stream_ct, "cache-control": "no-cache"})
            if dialect == "gemini" and not ctx.options.get("gemini_sse", True):
                headers["content-type"] = "application/json; charset=UTF-8"
            return _Out(200, headers, events=mod.render_events(reply, ctx), faults=plan.faults,
                        module=mod, ctx=ctx)
        out = self._json_out(dialect, rid, mod.render_body(reply, ctx), reply.headers)
        out.faults = plan.faults
        return out

    def _raw_out(self, plan: Plan, dialect: str, rid: str) -> _Out:
        raw = plan.raw
        assert raw is not None
        headers = self._headers(dialect, rid)
        headers["content-type"] = raw.content_type
        headers.update(raw.headers)
        if raw.events is not None:
            events = [e.encode() if isinstance(e, str) else e for e in raw.events]
            return _Out(raw.status, headers, events=events, faults=plan.faults)
        b = raw.body
        data = b if isinstance(b, bytes) else b.encode() if isinstance(b, str) else dumps(b).encode()
        return _Out(raw.status, headers, body=data, faults=plan.faults)

    # ------------------------------------------------------------------ sending

    async def _sleep(self, seconds: float, disconnected: asyncio.Event) -> bool:
        """Sleep; False when the server is stopping or the client went away."""
        assert self._abort is not None
        waiters = [asyncio.ensure_future(self._abort.wait()), asyncio.ensure_future(disconnected.wait())]
        try:
            done, _ = await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        return not done

    async def _send(self, out: _Out, send: Any, disconnected: asyncio.Event, finished: list[bool]) -> None:
        faults = out.faults
        delay = sum(f.first_byte_seconds for f in faults if isinstance(f, Delay))
        if delay and not await self._sleep(delay, disconnected):
            return
        drop = next((f for f in faults if isinstance(f, DropAfter)), None)
        mid = next((f for f in faults if isinstance(f, MidStreamError)), None)
        stalls = [f for f in faults if isinstance(f, Stall)]
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in out.headers.items()]

        async def finish(body: bytes = b"") -> None:
            finished[0] = True
            await send({"type": "http.response.body", "body": body, "more_body": False})

        if out.events is None:
            data = out.body or b""
            headers.append((b"content-length", str(len(data)).encode()))
            await send({"type": "http.response.start", "status": out.status, "headers": headers})
            for s in stalls:
                if not await self._sleep(s.seconds, disconnected):
                    return
            if drop is not None:
                await send({"type": "http.response.body", "body": data[: len(data) // 2], "more_body": True})
                return  # content-length not reached: the connection is closed mid-body
            await finish(data)
            return

        events = out.events
        n = len(events)
        await send({"type": "http.response.start", "status": out.status, "headers": headers})
        for i in range(n + 1):
            for s in stalls:
                if s.after_events == i or (i == n and s.after_events > n):
                    if not await self._sleep(s.seconds, disconnected):
                        return
            if mid is not None and i == min(mid.after_events, max(n - 1, 0)):
                assert out.module is not None and out.ctx is not None
                for ev in out.module.mid_stream_error(mid, out.ctx, i):
                    await send({"type": "http.response.body", "body": ev, "more_body": True})
                await finish()
                return
            if drop is not None and i == min(drop.n_events, max(n - 1, 0)):
                if not drop.abrupt:
                    await finish()
                return  # abrupt: return without ending the chunked body; uvicorn closes the socket
            if i == n:
                break
            if disconnected.is_set():
                return
            await send({"type": "http.response.body", "body": events[i], "more_body": True})
        await finish()
