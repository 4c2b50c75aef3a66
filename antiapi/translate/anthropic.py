"""The Anthropic Messages dialect (pure): both halves of the contract in ``dialect.py``.

Client half: :func:`parse_request`, :func:`parse_count_request`, :class:`StreamEncoder`,
:func:`render_response`, :func:`render_error`, :func:`count_tokens_response`,
:func:`models_list`. Upstream half: :func:`render_request`, :class:`StreamDecoder`,
:func:`decode_response`, :func:`parse_error`, :func:`scan_usage`.

May import: the standard library, msgspec, ``antiapi.errors``, ``antiapi.translate.*``,
``antiapi.wire.*``. No I/O, no clock. Rules: docs/translation.md §1.2-1.4, §2-§7, §9.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import msgspec

from antiapi.errors import ErrorKind, GatewayError, InvalidRequest, UpstreamHTTPError, kind_for_status
from antiapi.translate import ir
from antiapi.translate.aggregate import merge_usage
from antiapi.translate.common import (
    effort_to_budget,
    new_id,
    normalize_call_id,
    normalize_tool_name,
    parse_arguments,
    repair_json_object,
    split_data_url,
)
from antiapi.wire import anthropic as wire
from antiapi.wire.sse import SSEEvent

__all__ = [
    "StreamDecoder",
    "StreamEncoder",
    "count_tokens_response",
    "decode_response",
    "models_list",
    "parse_count_request",
    "parse_error",
    "parse_request",
    "render_error",
    "render_request",
    "render_response",
    "scan_usage",
]

NATIVE = "anthropic"

_json_decode = msgspec.json.decode
_json_encode = msgspec.json.encode

# =========================================================================== tables

#: ErrorKind value -> Anthropic ``error.type`` (translation.md §7.2; timeout -> api_error).
_KIND_TO_TYPE = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "not_found_error",
    "request_too_large": "request_too_large",
    "rate_limit": "rate_limit_error",
    "billing": "billing_error",
    "timeout": "api_error",
    "overloaded": "overloaded_error",
    "api_error": "api_error",
}

#: Anthropic ``error.type`` -> (ErrorKind, the status Anthropic uses for it).
_TYPE_TO_KIND: dict[str, tuple[ErrorKind, int]] = {
    "invalid_request_error": (ErrorKind.INVALID_REQUEST, 400),
    "authentication_error": (ErrorKind.AUTHENTICATION, 401),
    "billing_error": (ErrorKind.BILLING, 402),
    "permission_error": (ErrorKind.PERMISSION, 403),
    "not_found_error": (ErrorKind.NOT_FOUND, 404),
    "request_too_large": (ErrorKind.REQUEST_TOO_LARGE, 413),
    "rate_limit_error": (ErrorKind.RATE_LIMIT, 429),
    "api_error": (ErrorKind.API_ERROR, 500),
    "timeout_error": (ErrorKind.TIMEOUT, 504),
    "overloaded_error": (ErrorKind.OVERLOADED, 529),
}

#: Upstream ``stop_reason`` -> IR (§3.1). Unknown values read as end_turn.
_STOP_IN: dict[str, ir.StopReason] = {
    "end_turn": "end_turn",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "tool_use": "tool_use",
    "pause_turn": "pause_turn",
    "refusal": "refusal",
    "model_context_window_exceeded": "context_exceeded",
}

#: IR stop reason -> client ``stop_reason`` (§3.2).
_STOP_OUT = {
    "end_turn": "end_turn",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "tool_use": "tool_use",
    "pause_turn": "pause_turn",
    "refusal": "refusal",
    "context_exceeded": "model_context_window_exceeded",
    "error": "end_turn",
}

#: Anthropic ``output_config.effort`` <-> IR effort (OpenAI names).
_EFFORT_IN = {"low": "low", "medium": "medium", "high": "high", "max": "xhigh"}
_EFFORT_OUT = {"minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "max"}

_CONTINUE_TEXT = "(continue)"
_MIN_BUDGET = 1024

# =========================================================================== client half: parse


def parse_request(body: bytes) -> ir.Request:
    """Decode and validate a ``POST /v1/messages`` body into the IR (raises InvalidRequest)."""
    return _parse(body, count=False)


def parse_count_request(body: bytes) -> ir.Request:
    """Same as :func:`parse_request` for ``/v1/messages/count_tokens`` (no max_tokens needed)."""
    return _parse(body, count=True)


def _bad(path: str, what: str) -> InvalidRequest:
    return InvalidRequest(f"{path}: {what}", param=path)


def _parse(body: bytes, *, count: bool) -> ir.Request:
    try:
        raw = _json_decode(body)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"body: not valid JSON ({exc}); send a JSON object") from None
    if not isinstance(raw, dict):
        raise InvalidRequest("body: expected a JSON object with model, messages and max_tokens")
    try:
        doc = msgspec.convert(raw, wire.CountTokensRequest if count else wire.MessagesRequest)
    except msgspec.ValidationError as exc:
        raise _convert_error(exc) from None

    if not doc.model:
        raise _bad("model", "required: send the model name as a non-empty string")
    if doc.messages is None:
        raise _bad("messages", "required: send a non-empty list of messages")
    if not doc.messages:
        raise _bad("messages", "must not be empty: send at least one user message")

    req = ir.Request(model=doc.model, source=NATIVE)

    if not count:
        assert isinstance(doc, wire.MessagesRequest)
        if doc.max_tokens is None:
            raise _bad("max_tokens", "required: send the maximum number of tokens to generate (a positive integer)")
        if doc.max_tokens < 1:
            raise _bad("max_tokens", f"must be a positive integer, got {doc.max_tokens}")
        req.max_output_tokens = doc.max_tokens
        req.temperature = doc.temperature
        req.top_p = doc.top_p
        req.top_k = doc.top_k
        req.stream = bool(doc.stream)
        if doc.stop_sequences:
            req.stop = list(doc.stop_sequences)

    req.system = _parse_system(doc.system)
    req.messages = [_parse_message(m, f"messages[{i}]") for i, m in enumerate(doc.messages)]
    if doc.tools:
        req.tools = [_parse_tool(t, f"tools[{i}]") for i, t in enumerate(doc.tools)]
    if doc.tool_choice is not None:
        req.tool_choice, parallel = _parse_tool_choice(doc.tool_choice)
        if parallel is not None:
            req.parallel_tool_calls = parallel
    req.reasoning = _parse_reasoning(doc.thinking, doc.output_config)
    if doc.metadata is not None:
        uid = doc.metadata.get("user_id")
        if uid is not None and not isinstance(uid, str):
            raise _bad("metadata.user_id", "expected a string")
        req.user = uid

    modeled = wire.MODELED_REQUEST_FIELDS
    req.extras = {k: v for k, v in raw.items() if k not in modeled}
    return req


def _convert_error(exc: msgspec.ValidationError) -> InvalidRequest:
    """msgspec "Expected `x`, got `y` - at `$.a[0].b`" -> "a[0].b: expected `x`, got `y`"."""
    text = str(exc)
    what, sep, where = text.rpartition(" - at `")
    if not sep:
        return InvalidRequest(f"body: {text}")
    path = where.rstrip("`")
    path = path[2:] if path.startswith("$.") else path.lstrip("$")
    if what.startswith("Object missing required field `"):
        field = what[len("Object missing required field `") : -1]
        path = f"{path}.{field}" if path else field
        return _bad(path, "required field is missing")
    if path.endswith(".content") and path.startswith("messages["):
        return _bad(path, "expected a string or a list of content blocks")
    if path.endswith(".role"):
        return _bad(path, f"{what[:1].lower()}{what[1:]}; expected \"user\" or \"assistant\"")
    if path == "system":
        return _bad(path, "expected a string or a list of text blocks")
    return _bad(path or "body", what[:1].lower() + what[1:])


def _str_field(d: dict, key: str, path: str, *, required: bool = True) -> str | None:
    v = d.get(key)
    if v is None:
        if required:
            raise _bad(f"{path}.{key}", "required: send a string")
        return None
    if not isinstance(v, str):
        raise _bad(f"{path}.{key}", f"expected a string, got {type(v).__name__}")
    return v


def _dict_field(d: dict, key: str, path: str, *, required: bool = True) -> dict | None:
    v = d.get(key)
    if v is None:
        if required:
            raise _bad(f"{path}.{key}", "required: send an object")
        return None
    if not isinstance(v, dict):
        raise _bad(f"{path}.{key}", f"expected an object, got {type(v).__name__}")
    return v


def _cache(block: dict, path: str) -> dict | None:
    return _dict_field(block, "cache_control", path, required=False)


def _parse_system(system: str | list[dict] | None) -> list[ir.TextPart]:
    if system is None:
        return []
    if isinstance(system, str):
        return [ir.TextPart(text=system)] if system else []
    parts: list[ir.TextPart] = []
    for i, block in enumerate(system):
        path = f"system[{i}]"
        if block.get("type") != "text":
            raise _bad(f"{path}.type", 'expected "text" (system accepts only text blocks)')
        text = _str_field(block, "text", path)
        assert text is not None
        parts.append(ir.TextPart(text=text, cache=_cache(block, path)))
    return parts


def _parse_message(m: wire.MessageParam, path: str) -> ir.Message:
    content = m.content
    if isinstance(content, str):
        return ir.Message(role=m.role, content=[ir.TextPart(text=content)])
    parts: list[ir.Part] = [_parse_block(b, f"{path}.content[{i}]") for i, b in enumerate(content)]
    return ir.Message(role=m.role, content=parts)


def _parse_block(block: dict, path: str) -> ir.Part:
    btype = block.get("type")
    if not isinstance(btype, str):
        raise _bad(f"{path}.type", "required: send the content block type as a string")
    if btype == "text":
        text = _str_field(block, "text", path)
        assert text is not None
        return ir.TextPart(text=text, cache=_cache(block, path))
    if btype == "image":
        return _parse_image(block, path)
    if btype == "document":
        return _parse_document(block, path)
    if btype == "tool_use":
        call_id = _str_field(block, "id", path)
        name = _str_field(block, "name", path)
        inp = block.get("input")
        if inp is None:
            args = "{}"
        elif isinstance(inp, dict):
            args = _json_encode(inp).decode()
        else:
            raise _bad(f"{path}.input", f"expected an object, got {type(inp).__name__}")
        assert call_id is not None and name is not None
        return ir.ToolCallPart(id=call_id, name=name, arguments=args)
    if btype == "tool_result":
        return _parse_tool_result(block, path)
    if btype == "thinking":
        text = _str_field(block, "thinking", path, required=False) or ""
        sig = _str_field(block, "signature", path, required=False)
        if sig:
            provider, sig = ir.unwrap_signature(sig, NATIVE)
        else:
            provider, sig = NATIVE, None
        return ir.ReasoningPart(text=text, signature=sig, provider=provider)  # type: ignore[arg-type]
    if btype == "redacted_thinking":
        data = _str_field(block, "data", path)
        return ir.ReasoningPart(redacted=data, provider=NATIVE)
    return ir.RawPart(dialect=NATIVE, data=block)


def _parse_image(block: dict, path: str) -> ir.Part:
    src = _dict_field(block, "source", path)
    assert src is not None
    stype = src.get("type")
    if stype == "base64":
        return ir.ImagePart(
            data=_str_field(src, "data", f"{path}.source"),
            media_type=_str_field(src, "media_type", f"{path}.source", required=False),
        )
    if stype == "url":
        return ir.ImagePart(url=_str_field(src, "url", f"{path}.source"))
    return ir.RawPart(dialect=NATIVE, data=block)


def _parse_document(block: dict, path: str) -> ir.Part:
    src = _dict_field(block, "source", path)
    assert src is not None
    stype = src.get("type")
    spath = f"{path}.source"
    title = _str_field(block, "title", path, required=False)
    if stype == "base64":
        return ir.DocumentPart(
            data=_str_field(src, "data", spath),
            media_type=_str_field(src, "media_type", spath, required=False) or "application/pdf",
            filename=title,
        )
    if stype == "text":
        text = _str_field(src, "data", spath) or ""
        return ir.DocumentPart(
            data=base64.b64encode(text.encode()).decode(),
            media_type=_str_field(src, "media_type", spath, required=False) or "text/plain",
            filename=title,
        )
    if stype == "url":
        return ir.DocumentPart(url=_str_field(src, "url", spath), filename=title)
    return ir.RawPart(dialect=NATIVE, data=block)


def _parse_tool_result(block: dict, path: str) -> ir.ToolResultPart:
    call_id = _str_field(block, "tool_use_id", path)
    assert call_id is not None
    is_error = block.get("is_error")
    if is_error is not None and not isinstance(is_error, bool):
        raise _bad(f"{path}.is_error", "expected a boolean")
    content = block.get("content")
    parts: list[ir.TextPart | ir.ImagePart] = []
    if isinstance(content, str):
        parts.append(ir.TextPart(text=content))
    elif isinstance(content, list):
        for i, sub in enumerate(content):
            spath = f"{path}.content[{i}]"
            if not isinstance(sub, dict):
                raise _bad(spath, f"expected a content block object, got {type(sub).__name__}")
            stype = sub.get("type")
            if stype == "text":
                text = _str_field(sub, "text", spath)
                assert text is not None
                parts.append(ir.TextPart(text=text))
            elif stype == "image":
                img = _parse_image(sub, spath)
                if isinstance(img, ir.ImagePart):
                    parts.append(img)
            elif stype == "document":
                # Only plain-text documents can live in an IR tool result; others are dropped.
                src = sub.get("source")
                if isinstance(src, dict) and src.get("type") == "text" and isinstance(src.get("data"), str):
                    parts.append(ir.TextPart(text=src["data"]))
            elif not isinstance(stype, str):
                raise _bad(f"{spath}.type", "required: send the content block type as a string")
    elif content is not None:
        raise _bad(f"{path}.content", "expected a string or a list of content blocks")
    return ir.ToolResultPart(call_id=call_id, content=parts, is_error=bool(is_error))


def _parse_tool(tool: dict, path: str) -> ir.Tool:
    ttype = tool.get("type")
    if ttype is not None and not isinstance(ttype, str):
        raise _bad(f"{path}.type", "expected a string")
    if ttype is None or ttype == "custom":
        name = _str_field(tool, "name", path)
        assert name is not None
        desc = _str_field(tool, "description", path, required=False)
        schema = _dict_field(tool, "input_schema", path, required=False)
        strict = tool.get("strict")
        t = ir.Tool(name=name, description=desc, cache=_cache(tool, path))
        if schema is not None:
            t.parameters = schema
        if isinstance(strict, bool):
            t.strict = strict
        return t
    name = tool.get("name")
    return ir.Tool(
        name=name if isinstance(name, str) and name else ttype,
        kind="builtin",
        raw=tool,
        dialect=NATIVE,
        cache=_cache(tool, path),
    )


def _parse_tool_choice(tc: dict) -> tuple[ir.ToolChoice, bool | None]:
    kind = tc.get("type")
    parallel: bool | None = None
    dp = tc.get("disable_parallel_tool_use")
    if dp is not None:
        if not isinstance(dp, bool):
            raise _bad("tool_choice.disable_parallel_tool_use", "expected a boolean")
        if dp:
            parallel = False
    if kind == "auto":
        return ir.ToolChoice(mode="auto"), parallel
    if kind == "any":
        return ir.ToolChoice(mode="required"), parallel
    if kind == "none":
        return ir.ToolChoice(mode="none"), parallel
    if kind == "tool":
        name = _str_field(tc, "name", "tool_choice")
        return ir.ToolChoice(mode="tool", name=name), parallel
    raise _bad("tool_choice.type", 'expected "auto", "any", "tool" or "none"')


def _parse_reasoning(thinking: dict | None, output_config: dict | None) -> ir.Reasoning | None:
    effort: str | None = None
    if output_config is not None:
        e = output_config.get("effort")
        if e is not None:
            if not isinstance(e, str):
                raise _bad("output_config.effort", "expected a string")
            effort = _EFFORT_IN.get(e, e)
    if thinking is None:
        return ir.Reasoning(effort=effort) if effort else None
    ttype = thinking.get("type")
    if ttype == "enabled":
        budget = thinking.get("budget_tokens")
        if isinstance(budget, bool) or not isinstance(budget, int):
            raise _bad("thinking.budget_tokens", "required with type \"enabled\": send a positive integer")
        return ir.Reasoning(enabled=True, budget_tokens=budget, effort=effort)
    if ttype == "adaptive":
        return ir.Reasoning(enabled=True, adaptive=True, effort=effort)
    if ttype == "disabled":
        return ir.Reasoning(enabled=False, effort=effort)
    raise _bad("thinking.type", 'expected "enabled", "adaptive" or "disabled"')


# =========================================================================== client half: render


def _msg_id(upstream_id: str | None) -> str:
    return upstream_id if upstream_id and upstream_id.startswith("msg_") else new_id("msg_")


def _client_stop(reason: str | None, has_tool: bool) -> str:
    if has_tool:
        return "tool_use"
    r = _STOP_OUT.get(reason or "end_turn", "end_turn")
    return "end_turn" if r == "tool_use" else r


def _out_usage(u: ir.Usage) -> wire.OutUsage:
    return wire.OutUsage(
        input_tokens=u.input_tokens,
        cache_creation_input_tokens=u.cache_write_tokens,
        cache_read_input_tokens=u.cache_read_tokens,
        output_tokens=u.output_tokens,
    )


def _wrap(provider: str | None, sig: str | None) -> str | None:
    if not sig or not provider:
        return None
    return ir.wrap_signature(provider, sig, NATIVE)


def render_response(resp: ir.Response, req: ir.Request, model: str) -> bytes:
    """The non-stream Messages body for an Anthropic client (§2)."""
    content: list[Any] = []
    has_tool = False
    for part in resp.content:
        if isinstance(part, ir.TextPart):
            content.append({"type": "text", "text": part.text})
        elif isinstance(part, ir.ReasoningPart):
            if part.redacted is not None:
                content.append({"type": "redacted_thinking", "data": part.redacted})
            else:
                sig = _wrap(part.provider, part.signature)
                if part.text or sig:
                    content.append({"type": "thinking", "thinking": part.text, "signature": sig or ""})
        elif isinstance(part, ir.ToolCallPart):
            has_tool = True
            content.append(
                {"type": "tool_use", "id": part.id, "name": part.name, "input": parse_arguments(part.arguments)}
            )
        elif isinstance(part, ir.RawPart) and part.dialect == NATIVE:
            content.append(part.data)
    reason = _client_stop(resp.stop_reason, has_tool)
    msg = wire.OutMessage(
        id=_msg_id(resp.id),
        model=model,
        content=content,
        stop_reason=reason,
        stop_sequence=resp.stop_sequence if reason == "stop_sequence" else None,
        usage=_out_usage(resp.usage),
    )
    return wire.encoder.encode(msg)


def _error_type(kind: ErrorKind | str) -> str:
    value = kind.value if isinstance(kind, ErrorKind) else kind
    return _KIND_TO_TYPE.get(value, "api_error")


def render_error(err: GatewayError) -> bytes:
    """``{"type":"error","error":{"type","message"}}`` for an Anthropic client (§7.1)."""
    body = wire.ErrorBody(
        error=wire.ErrorDetail(type=_error_type(err.kind), message=err.message),
        request_id=getattr(err, "request_id", None),
    )
    return wire.encoder.encode(body)


def count_tokens_response(n: int) -> bytes:
    return wire.encoder.encode(wire.CountTokensResponse(input_tokens=n))


def models_list(ids: list[str]) -> bytes:
    """The Anthropic ``GET /v1/models`` list body."""
    data = [wire.ModelInfo(id=i, display_name=i, created_at="1970-01-01T00:00:00Z") for i in ids]
    return wire.encoder.encode(
        wire.ModelList(
            data=data,
            has_more=False,
            first_id=ids[0] if ids else None,
            last_id=ids[-1] if ids else None,
        )
    )


# =========================================================================== client half: stream


def _frame(event: bytes, payload: bytes) -> bytes:
    return b"event: " + event + b"\ndata: " + payload + b"\n\n"


_DELTA_HEAD = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
_TEXT_MID = b',"delta":{"type":"text_delta","text":'
_THINK_MID = b',"delta":{"type":"thinking_delta","thinking":'
_SIG_MID = b',"delta":{"type":"signature_delta","signature":'
_JSON_MID = b',"delta":{"type":"input_json_delta","partial_json":'
_DELTA_TAIL = b"}}\n\n"
_START_HEAD = b'event: content_block_start\ndata: {"type":"content_block_start","index":'
_STOP_HEAD = b'event: content_block_stop\ndata: {"type":"content_block_stop","index":'
_MESSAGE_STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'


class _Block:
    __slots__ = ("kind", "am", "buf", "args", "sig", "stopped", "id", "name", "data", "provider")

    def __init__(self, ev: ir.BlockStart) -> None:
        self.kind = ev.kind
        self.am = -1  # AM index once started on the wire
        self.buf: list[str] = []  # deltas held while another block is open
        self.args: list[str] = []  # tool: every fragment sent (for the final repair check)
        self.sig: list[str] = []
        self.stopped = False
        self.id = ev.id
        self.name = ev.name
        self.data = ev.data
        self.provider = ev.provider


class StreamEncoder:
    """IR events -> Anthropic SSE bytes for an Anthropic client (§5.1, §6.1).

    One AM block is open at a time; blocks that start while another is open (interleaved
    parallel tool calls) are buffered and flushed, in IR start order, when the open one
    closes. ``message_delta``/``message_stop`` wait for ``End`` (usage may follow Finish).
    """

    __slots__ = (
        "_model", "_req", "_started", "_done", "_next", "_cur", "_pending", "_blocks",
        "_usage", "_reason", "_stop_seq", "_tool",
    )  # fmt: skip

    def __init__(self, req: ir.Request, model: str) -> None:
        self._req = req
        self._model = model
        self._started = False
        self._done = False
        self._next = 0
        self._cur: _Block | None = None
        self._pending: list[_Block] = []
        self._blocks: dict[int, _Block] = {}
        self._usage = ir.Usage()
        self._reason: str | None = None
        self._stop_seq: str | None = None
        self._tool = False

    # ----------------------------------------------------------------- feed

    def feed(self, ev: ir.Event) -> bytes:
        if self._done:
            return b""
        t = type(ev)
        out: list[bytes] = []
        if not self._started and t is not ir.Error:
            self._message_start(ev if t is ir.Start else None, out)  # type: ignore[arg-type]
            if t is ir.Start:
                return out[0]
        if t is ir.TextDelta or t is ir.ReasoningDelta or t is ir.ArgsDelta:
            text = ev.json if t is ir.ArgsDelta else ev.text  # type: ignore[union-attr]
            if not text:
                return b"".join(out)
            blk = self._blocks.get(ev.index)  # type: ignore[union-attr]
            if blk is None:
                kind = "text" if t is ir.TextDelta else "reasoning" if t is ir.ReasoningDelta else "tool_call"
                blk = self._add(ir.BlockStart(index=ev.index, kind=kind), out)  # type: ignore[union-attr, arg-type]
            if blk is self._cur:
                out.append(self._delta(blk, text))
            elif blk.am < 0:  # not on the wire yet: hold until its turn
                blk.buf.append(text)
        elif t is ir.BlockStart:
            if ev.index not in self._blocks:  # type: ignore[union-attr]
                self._add(ev, out)  # type: ignore[arg-type]
        elif t is ir.BlockStop:
            blk = self._blocks.get(ev.index)  # type: ignore[union-attr]
            if blk is not None and not blk.stopped:
                blk.stopped = True
                if blk is self._cur:
                    self._close(blk, out)
                    self._cur = None
                    self._drain(out, all_=False)
        elif t is ir.SignatureDelta:
            blk = self._blocks.get(ev.index)  # type: ignore[union-attr]
            if blk is not None:
                blk.sig.append(ev.signature)  # type: ignore[union-attr]
        elif t is ir.UsageEvent:
            merge_usage(self._usage, ev.usage)  # type: ignore[union-attr]
        elif t is ir.Start:
            if ev.usage:  # type: ignore[union-attr]
                merge_usage(self._usage, ev.usage)  # type: ignore[union-attr]
        elif t is ir.Finish:
            self._reason = ev.reason  # type: ignore[union-attr]
            self._stop_seq = ev.stop_sequence  # type: ignore[union-attr]
            self._flush_all(out)
        elif t is ir.End:
            self._flush_all(out)
            reason = _client_stop(self._reason, self._tool)
            delta = wire.MessageDeltaEvent(
                delta=wire.MessageDeltaBody(
                    stop_reason=reason, stop_sequence=self._stop_seq if reason == "stop_sequence" else None
                ),
                usage=_out_usage(self._usage),
            )
            out.append(_frame(b"message_delta", wire.encoder.encode(delta)))
            out.append(_MESSAGE_STOP)
            self._done = True
        elif t is ir.Error:
            if self._cur is not None:
                self._close(self._cur, out)
                self._cur = None
            self._pending.clear()
            body = wire.ErrorBody(error=wire.ErrorDetail(type=_error_type(ev.kind), message=ev.message))  # type: ignore[union-attr]
            out.append(_frame(b"error", wire.encoder.encode(body)))
            self._done = True
        return b"".join(out)

    # ----------------------------------------------------------------- helpers

    def _message_start(self, ev: ir.Start | None, out: list[bytes]) -> None:
        self._started = True
        if ev is not None and ev.usage:
            merge_usage(self._usage, ev.usage)
        msg = wire.OutMessage(
            id=_msg_id(ev.id if ev is not None else None),
            model=self._model,
            content=[],
            stop_reason=None,
            stop_sequence=None,
            usage=_out_usage(self._usage),
        )
        out.append(_frame(b"message_start", wire.encoder.encode(wire.MessageStartEvent(message=msg))))

    def _add(self, ev: ir.BlockStart, out: list[bytes]) -> _Block:
        blk = _Block(ev)
        self._blocks[ev.index] = blk
        if self._cur is None:
            self._open(blk, out)
        else:
            self._pending.append(blk)
        return blk

    def _open(self, blk: _Block, out: list[bytes]) -> None:
        blk.am = self._next
        self._next += 1
        idx = str(blk.am).encode()
        kind = blk.kind
        if kind == "text":
            cb = b'{"type":"text","text":""}'
        elif kind == "reasoning":
            cb = b'{"type":"thinking","thinking":"","signature":""}'
        elif kind == "redacted_reasoning":
            cb = b'{"type":"redacted_thinking","data":' + _json_encode(blk.data or "") + b"}"
        else:
            self._tool = True
            cb = (
                b'{"type":"tool_use","id":'
                + _json_encode(blk.id or new_id("toolu_"))
                + b',"name":'
                + _json_encode(blk.name or f"tool_{blk.am}")
                + b',"input":{}}'
            )
        out.append(_START_HEAD + idx + b',"content_block":' + cb + b"}\n\n")
        self._cur = blk
        if blk.buf:
            text = "".join(blk.buf)
            blk.buf.clear()
            if kind == "tool_call" and blk.stopped:
                # Complete arguments: send them repaired (an empty object needs no delta).
                text = repair_json_object(text)
                if text == "{}":
                    return
            out.append(self._delta(blk, text))

    def _delta(self, blk: _Block, text: str) -> bytes:
        kind = blk.kind
        if kind == "text":
            mid = _TEXT_MID
        elif kind == "reasoning":
            mid = _THINK_MID
        elif kind == "tool_call":
            blk.args.append(text)
            mid = _JSON_MID
        else:  # redacted blocks take no deltas
            return b""
        return _DELTA_HEAD + str(blk.am).encode() + mid + _json_encode(text) + _DELTA_TAIL

    def _close(self, blk: _Block, out: list[bytes]) -> None:
        idx = str(blk.am).encode()
        if blk.kind == "reasoning" and blk.sig:
            sig = _wrap(blk.provider, "".join(blk.sig))
            if sig:
                out.append(_DELTA_HEAD + idx + _SIG_MID + _json_encode(sig) + _DELTA_TAIL)
        elif blk.kind == "tool_call" and blk.args:
            # A truncated argument text is repaired by appending what closes it (§6.1 step 9).
            sent = "".join(blk.args)
            fixed = repair_json_object(sent)
            if fixed != sent and fixed.startswith(sent):
                out.append(_DELTA_HEAD + idx + _JSON_MID + _json_encode(fixed[len(sent) :]) + _DELTA_TAIL)
        out.append(_STOP_HEAD + idx + b"}\n\n")

    def _drain(self, out: list[bytes], *, all_: bool) -> None:
        """Start buffered blocks in order; stop at the first one still open (unless ``all_``)."""
        while self._pending:
            blk = self._pending.pop(0)
            if all_:
                blk.stopped = True
            self._open(blk, out)
            if blk.stopped:
                self._close(blk, out)
                self._cur = None
            else:
                return

    def _flush_all(self, out: list[bytes]) -> None:
        if self._cur is not None:
            self._cur.stopped = True
            self._close(self._cur, out)
            self._cur = None
        self._drain(out, all_=True)


# =========================================================================== upstream half: request


def render_request(req: ir.Request, target: ir.Target) -> ir.Outgoing:
    """The Messages body for an Anthropic upstream (§1.3, §9)."""
    if req.n is not None and req.n > 1:
        raise InvalidRequest(
            "n: more than one choice (n>1) is not supported by this model; send n=1 or omit it", param="n"
        )
    out = ir.Outgoing(body={}, stream=req.stream)
    names = out.tool_names
    ids = out.call_ids
    same = req.source == NATIVE

    # ---- system (mid-conversation system messages become user text blocks below)
    system: list[dict] = []
    for p in req.system:
        if p.text.strip():
            system.append(_text_block(p))
    fmt = _format_instruction(req.response_format)
    if fmt:
        system.append({"type": "text", "text": fmt})

    # ---- messages
    messages: list[dict] = []
    for m in req.messages:
        role = "user" if m.role == "system" else m.role
        blocks = [b for p in m.content if (b := _render_part(p, names, ids)) is not None]
        if not blocks:
            continue
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})
    for msg in messages:
        if msg["role"] == "user":
            # tool_result blocks must come first in their user message.
            c = msg["content"]
            results = [b for b in c if b.get("type") == "tool_result"]
            if results and c[: len(results)] != results:
                msg["content"] = results + [b for b in c if b.get("type") != "tool_result"]
    prefill = False
    if messages and messages[-1]["role"] == "assistant":
        prefill = _trim_prefill(messages)
    if not messages or messages[0]["role"] != "user":
        messages.insert(0, {"role": "user", "content": [{"type": "text", "text": _CONTINUE_TEXT}]})

    body: dict[str, Any] = {"model": target.model}
    max_tokens = req.max_output_tokens or target.default_max_tokens
    if system:
        body["system"] = system
    body["messages"] = messages

    # ---- tools
    tools: list[dict] = []
    for t in req.tools:
        rt = _render_tool(t, names)
        if rt is not None:
            tools.append(rt)
    if tools:
        body["tools"] = tools
    tc = _render_tool_choice(req, names) if tools else None

    # ---- thinking
    thinking, budget = _render_thinking(req, messages, prefill)
    if thinking is not None:
        body["thinking"] = thinking
        if budget is not None and max_tokens <= budget:
            max_tokens = budget + max_tokens
    thinking_on = thinking is not None and thinking.get("type") != "disabled"
    body["max_tokens"] = max_tokens

    if req.temperature is not None and not thinking_on:
        body["temperature"] = min(max(req.temperature, 0.0), 1.0)
    if req.top_p is not None and "temperature" not in body:
        if not thinking_on or req.top_p >= 0.95:
            body["top_p"] = req.top_p
    if req.top_k is not None and not thinking_on:
        body["top_k"] = req.top_k
    if req.stop:
        body["stop_sequences"] = list(req.stop)
    if tc is not None:
        if thinking_on and tc["type"] in ("any", "tool"):
            tc = {"type": "auto", **({"disable_parallel_tool_use": True} if tc.get("disable_parallel_tool_use") else {})}
        body["tool_choice"] = tc
    if req.stream:
        body["stream"] = True

    if same:
        for k, v in req.extras.items():
            body.setdefault(k, v)
    if req.user and "metadata" not in body:
        body["metadata"] = {"user_id": req.user}
    if not same and req.reasoning is not None and req.reasoning.adaptive and req.reasoning.effort and thinking_on:
        body["output_config"] = {"effort": _EFFORT_OUT.get(req.reasoning.effort, "medium")}
    out.body = body
    return out


def _text_block(p: ir.TextPart) -> dict:
    b: dict[str, Any] = {"type": "text", "text": p.text}
    if p.cache:
        b["cache_control"] = p.cache
    return b


def _image_block(p: ir.ImagePart) -> dict | None:
    if p.data:
        return {"type": "image", "source": {"type": "base64", "media_type": p.media_type or "image/png", "data": p.data}}
    if p.url:
        split = split_data_url(p.url)
        if split is not None:
            media, data = split
            return {"type": "image", "source": {"type": "base64", "media_type": media or "image/png", "data": data}}
        return {"type": "image", "source": {"type": "url", "url": p.url}}
    return None


def _document_block(p: ir.DocumentPart) -> dict | None:
    source: dict[str, Any]
    media = p.media_type or "application/pdf"
    if p.data:
        if media.startswith("text/"):
            try:
                text = base64.b64decode(p.data, validate=False).decode("utf-8", errors="replace")
            except (binascii.Error, ValueError):
                return None
            source = {"type": "text", "media_type": "text/plain", "data": text}
        else:
            source = {"type": "base64", "media_type": media, "data": p.data}
    elif p.url:
        split = split_data_url(p.url)
        if split is not None:
            source = {"type": "base64", "media_type": split[0] or media, "data": split[1]}
        else:
            source = {"type": "url", "url": p.url}
    else:
        return None
    b: dict[str, Any] = {"type": "document", "source": source}
    if p.filename:
        b["title"] = p.filename
    return b


def _render_part(p: ir.Part, names: dict[str, str], ids: dict[str, str]) -> dict | None:
    t = type(p)
    if t is ir.TextPart:
        return _text_block(p) if p.text.strip() else None  # type: ignore[union-attr]
    if t is ir.ToolCallPart:
        return {
            "type": "tool_use",
            "id": normalize_call_id(p.id, ids),  # type: ignore[union-attr]
            "name": normalize_tool_name(p.name, names),  # type: ignore[union-attr]
            "input": parse_arguments(p.arguments),  # type: ignore[union-attr]
        }
    if t is ir.ToolResultPart:
        assert isinstance(p, ir.ToolResultPart)
        content: list[dict] = []
        cache = None
        for c in p.content:
            if isinstance(c, ir.TextPart):
                if c.text.strip():
                    content.append({"type": "text", "text": c.text})
                # cache_control is not allowed inside tool_result content: lift it (§9.11).
                cache = cache or c.cache
            else:
                img = _image_block(c)
                if img is not None:
                    content.append(img)
        b: dict[str, Any] = {"type": "tool_result", "tool_use_id": normalize_call_id(p.call_id, ids)}
        if content:
            b["content"] = content
        if p.is_error:
            b["is_error"] = True
        if cache:
            b["cache_control"] = cache
        return b
    if t is ir.ReasoningPart:
        assert isinstance(p, ir.ReasoningPart)
        if p.provider != NATIVE:
            return None
        if p.redacted is not None:
            return {"type": "redacted_thinking", "data": p.redacted}
        if not p.signature:
            return None
        return {"type": "thinking", "thinking": p.text, "signature": p.signature}
    if t is ir.ImagePart:
        return _image_block(p)  # type: ignore[arg-type]
    if t is ir.DocumentPart:
        return _document_block(p)  # type: ignore[arg-type]
    if t is ir.RawPart:
        return p.data if p.dialect == NATIVE else None  # type: ignore[union-attr]
    return None


def _trim_prefill(messages: list[dict]) -> bool:
    """Right-trim a final assistant message (AM rejects trailing whitespace). True if one remains."""
    last = messages[-1]
    content = last["content"]
    while content:
        b = content[-1]
        if b.get("type") != "text":
            break
        trimmed = b["text"].rstrip()
        if trimmed:
            if trimmed != b["text"]:
                content[-1] = {**b, "text": trimmed}
            break
        content.pop()
    if not content:
        messages.pop()
        return False
    return True


def _render_tool(t: ir.Tool, names: dict[str, str]) -> dict | None:
    if t.kind == "builtin":
        if t.dialect == NATIVE and t.raw is not None:
            return t.raw
        return None
    out: dict[str, Any] = {"name": normalize_tool_name(t.name, names)}
    if t.description:
        out["description"] = t.description
    if t.kind == "custom":
        # Freeform (OpenAI Responses custom) tool: one string parameter named "input".
        schema: dict = {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]}
    else:
        schema = dict(t.parameters) if t.parameters else {"type": "object", "properties": {}}
        if schema.get("type", "object") == "object":
            schema.setdefault("type", "object")
            if "properties" not in schema:
                schema["properties"] = {}
    out["input_schema"] = schema
    if t.cache:
        out["cache_control"] = t.cache
    return out


def _render_tool_choice(req: ir.Request, names: dict[str, str]) -> dict | None:
    tc = req.tool_choice
    no_parallel = req.parallel_tool_calls is False
    if tc is None:
        return {"type": "auto", "disable_parallel_tool_use": True} if no_parallel else None
    if tc.mode == "none":
        return {"type": "none"}
    if tc.mode == "required":
        out: dict[str, Any] = {"type": "any"}
    elif tc.mode == "tool" and tc.name:
        out = {"type": "tool", "name": normalize_tool_name(tc.name, names)}
    else:
        out = {"type": "auto"}
    if no_parallel:
        out["disable_parallel_tool_use"] = True
    return out


def _render_thinking(req: ir.Request, messages: list[dict], prefill: bool) -> tuple[dict | None, int | None]:
    """(thinking object or None, budget or None) for the upstream (§9.19, §9.22, §9.24)."""
    r = req.reasoning
    if r is None:
        return None, None
    if r.enabled is False:
        return ({"type": "disabled"} if req.source == NATIVE else None), None
    if r.enabled is None and req.source == NATIVE:
        # An Anthropic client that sent only output_config.effort (kept in extras) did not
        # ask for thinking.
        return None, None
    if r.adaptive:
        thinking: dict = {"type": "adaptive"}
        budget = None
    else:
        if r.budget_tokens is not None:
            budget = r.budget_tokens
        elif r.effort is not None or r.enabled:
            if r.effort in ("none", "minimal"):
                return None, None
            budget = effort_to_budget(r.effort)
        else:
            return None, None
        if budget is None or budget <= 0:
            return None, None
        budget = max(budget, _MIN_BUDGET)
        thinking = {"type": "enabled", "budget_tokens": budget}
    # Thinking forbids an assistant prefill, and the last assistant turn with tool_use must
    # start with a (signed) thinking block: otherwise turn thinking off rather than fail.
    if prefill:
        return None, None
    for msg in reversed(messages):
        if msg["role"] == "assistant":
            c = msg["content"]
            if any(b.get("type") == "tool_use" for b in c) and c[0].get("type") not in ("thinking", "redacted_thinking"):
                return None, None
            break
    return thinking, budget


def _format_instruction(rf: ir.ResponseFormat | None) -> str | None:
    if rf is None or rf.type == "text":
        return None
    if rf.type == "json_schema" and rf.schema is not None:
        schema = _json_encode(rf.schema).decode()
        return (
            "Respond with a single JSON value that conforms to this JSON Schema, and nothing else "
            f"(no prose, no code fences):\n{schema}"
        )
    return "Respond with a single valid JSON object and nothing else (no prose, no code fences)."


# =========================================================================== upstream half: responses


def _in_usage(u: wire.Usage | None, *, output: bool = True) -> ir.Usage:
    if u is None:
        return ir.Usage()
    return ir.Usage(
        input_tokens=u.input_tokens or 0,
        output_tokens=(u.output_tokens or 0) if output else 0,
        cache_read_tokens=u.cache_read_input_tokens or 0,
        cache_write_tokens=u.cache_creation_input_tokens or 0,
    )


def _error_event(detail: wire.ErrorDetail | None) -> ir.Error:
    etype = detail.type if detail is not None else "api_error"
    kind, status = _TYPE_TO_KIND.get(etype, (ErrorKind.API_ERROR, 502))
    msg = detail.message if detail is not None and detail.message else etype
    return ir.Error(kind=kind.value, message=f"anthropic: {msg}", status=status, code=etype)


def _input_json(raw: msgspec.Raw) -> str:
    """tool_use ``input`` (undecoded) -> compact JSON text ("" when empty)."""
    b = bytes(raw)
    if not b or b == b"{}" or b == b"null":
        return ""
    try:
        val = _json_decode(b)
    except msgspec.DecodeError:
        return ""
    if not isinstance(val, dict) or not val:
        return ""
    return _json_encode(val).decode()


class StreamDecoder:
    """Anthropic SSE events -> IR events (§5.1). Unknown blocks (server tools) are skipped."""

    __slots__ = ("_out", "_map", "_next", "_done", "_finished")

    def __init__(self, out: ir.Outgoing) -> None:
        self._out = out
        self._map: dict[int, int | None] = {}  # AM index -> IR index (None: skipped block)
        self._next = 0
        self._done = False
        self._finished = False

    def feed(self, sse: SSEEvent) -> list[ir.Event]:
        if self._done or not sse.data:
            return []
        try:
            ev = wire.stream_event_decoder.decode(sse.data)
        except msgspec.DecodeError:
            if sse.event == "ping":
                return []
            self._done = True
            return [ir.Error(kind="api_error", message="anthropic: malformed stream event", status=502)]
        t = ev.type or sse.event or ""
        if t == "content_block_delta":
            idx = self._map.get(ev.index) if ev.index is not None else None
            d = ev.delta
            if idx is None or d is None:
                return []
            dt = d.type
            if dt == "text_delta":
                return [ir.TextDelta(index=idx, text=d.text)] if d.text else []
            if dt == "input_json_delta":
                return [ir.ArgsDelta(index=idx, json=d.partial_json)] if d.partial_json else []
            if dt == "thinking_delta":
                return [ir.ReasoningDelta(index=idx, text=d.thinking)] if d.thinking else []
            if dt == "signature_delta":
                return [ir.SignatureDelta(index=idx, signature=d.signature)] if d.signature else []
            return []
        if t == "content_block_start":
            return self._block_start(ev)
        if t == "content_block_stop":
            if ev.index is None:
                return []
            idx = self._map.get(ev.index)
            return [ir.BlockStop(index=idx)] if idx is not None else []
        if t == "ping":
            return []
        if t == "message_start":
            m = ev.message
            if m is None:
                return [ir.Start()]
            return [ir.Start(id=m.id, model=m.model, usage=_in_usage(m.usage, output=False))]
        if t == "message_delta":
            res: list[ir.Event] = []
            d = ev.delta
            if d is not None and d.stop_reason and not self._finished:
                self._finished = True
                res.append(ir.Finish(reason=_STOP_IN.get(d.stop_reason, "end_turn"), stop_sequence=d.stop_sequence))
            if ev.usage is not None:
                res.append(ir.UsageEvent(usage=_in_usage(ev.usage)))
            return res
        if t == "message_stop":
            self._done = True
            return [ir.End()]
        if t == "error":
            self._done = True
            return [_error_event(ev.error)]
        return []

    def _block_start(self, ev: wire.StreamEvent) -> list[ir.Event]:
        cb = ev.content_block
        if ev.index is None or cb is None:
            return []
        bt = cb.type
        if bt not in ("text", "thinking", "redacted_thinking", "tool_use"):
            self._map[ev.index] = None
            return []
        idx = self._next
        self._next += 1
        self._map[ev.index] = idx
        if bt == "text":
            res: list[ir.Event] = [ir.BlockStart(index=idx, kind="text")]
            if cb.text:
                res.append(ir.TextDelta(index=idx, text=cb.text))
            return res
        if bt == "tool_use":
            out = self._out
            res = [
                ir.BlockStart(
                    index=idx,
                    kind="tool_call",
                    id=out.call_ids.get(cb.id, cb.id) if cb.id else new_id("toolu_"),
                    name=out.tool_names.get(cb.name, cb.name) if cb.name else f"tool_{idx}",
                )
            ]
            args = _input_json(cb.input)
            if args:
                res.append(ir.ArgsDelta(index=idx, json=args))
            return res
        if bt == "thinking":
            res = [ir.BlockStart(index=idx, kind="reasoning", provider=NATIVE)]
            if cb.thinking:
                res.append(ir.ReasoningDelta(index=idx, text=cb.thinking))
            if cb.signature:
                res.append(ir.SignatureDelta(index=idx, signature=cb.signature))
            return res
        return [ir.BlockStart(index=idx, kind="redacted_reasoning", data=cb.data or "", provider=NATIVE)]

    def finish(self) -> list[ir.Event]:
        """At upstream EOF. A stream that reported its stop reason but lost only the final
        ``message_stop`` is complete; anything shorter is an error (§9.38)."""
        if self._done:
            return []
        self._done = True
        if self._finished:
            return [ir.End()]
        return [ir.Error(kind="api_error", message="upstream stream ended before completion", status=502)]


def decode_response(body: bytes, out: ir.Outgoing) -> list[ir.Event]:
    """A non-stream Messages body -> the event sequence a stream would have given."""
    try:
        m = wire.message_decoder.decode(body)
    except msgspec.DecodeError:
        return [ir.Error(kind="api_error", message="anthropic: upstream returned a body that is not a message", status=502)]
    if m.type == "error":
        return [_error_event(m.error)]
    events: list[ir.Event] = [ir.Start(id=m.id, model=m.model, usage=_in_usage(m.usage, output=False))]
    idx = 0
    for cb in m.content:
        bt = cb.type
        if bt == "text":
            events.append(ir.BlockStart(index=idx, kind="text"))
            if cb.text:
                events.append(ir.TextDelta(index=idx, text=cb.text))
        elif bt == "thinking":
            events.append(ir.BlockStart(index=idx, kind="reasoning", provider=NATIVE))
            if cb.thinking:
                events.append(ir.ReasoningDelta(index=idx, text=cb.thinking))
            if cb.signature:
                events.append(ir.SignatureDelta(index=idx, signature=cb.signature))
        elif bt == "redacted_thinking":
            events.append(ir.BlockStart(index=idx, kind="redacted_reasoning", data=cb.data or "", provider=NATIVE))
        elif bt == "tool_use":
            events.append(
                ir.BlockStart(
                    index=idx,
                    kind="tool_call",
                    id=out.call_ids.get(cb.id, cb.id) if cb.id else new_id("toolu_"),
                    name=out.tool_names.get(cb.name, cb.name) if cb.name else f"tool_{idx}",
                )
            )
            args = _input_json(cb.input)
            if args:
                events.append(ir.ArgsDelta(index=idx, json=args))
        else:
            continue
        events.append(ir.BlockStop(index=idx))
        idx += 1
    events.append(ir.Finish(reason=_STOP_IN.get(m.stop_reason or "end_turn", "end_turn"), stop_sequence=m.stop_sequence))
    events.append(ir.UsageEvent(usage=_in_usage(m.usage)))
    events.append(ir.End())
    return events


def _header(headers: Mapping[str, str], name: str) -> str | None:
    v = headers.get(name)
    if v is not None:
        return v
    lname = name.lower()
    for k, val in headers.items():
        if k.lower() == lname:
            return val
    return None


def parse_error(status: int, headers: Mapping[str, str], body: bytes) -> UpstreamHTTPError:
    """An Anthropic error answer (or any non-JSON body) -> UpstreamHTTPError (§7)."""
    etype: str | None = None
    message: str | None = None
    request_id = _header(headers, "request-id")
    try:
        m = wire.message_decoder.decode(body)
        if m.error is not None:
            etype = m.error.type or None
            message = m.error.message or None
    except msgspec.DecodeError:
        pass
    if request_id is None:
        try:
            rid = _json_decode(body)
            if isinstance(rid, dict) and isinstance(rid.get("request_id"), str):
                request_id = rid["request_id"]
        except msgspec.DecodeError:
            pass
    if message is None:
        text = body.decode("utf-8", errors="replace").strip()
        message = text[:500] if text else f"HTTP {status}"
    kind = _TYPE_TO_KIND[etype][0] if etype in _TYPE_TO_KIND else kind_for_status(status)
    retry_after: float | None = None
    extra_headers: dict[str, str] = {}
    ra = _header(headers, "retry-after")
    if ra is not None:
        try:
            retry_after = max(0.0, float(ra))
            extra_headers["retry-after"] = ra
        except ValueError:
            pass
    return UpstreamHTTPError(
        f"anthropic: {message}",
        kind=kind,
        status=status,
        code=etype,
        retry_after=retry_after,
        headers=extra_headers,
        provider=NATIVE,
        request_id=request_id,
    )


def scan_usage(ev: SSEEvent) -> ir.Usage | None:
    """Usage carried by a ``message_start`` / ``message_delta`` event (None for others)."""
    name = ev.event
    if name is not None:
        if name != "message_delta" and name != "message_start":
            return None
    elif '"usage"' not in ev.data:
        return None
    try:
        e = wire.stream_event_decoder.decode(ev.data)
    except msgspec.DecodeError:
        return None
    if e.type == "message_start" and e.message is not None and e.message.usage is not None:
        return _in_usage(e.message.usage)
    if e.type == "message_delta" and e.usage is not None:
        return _in_usage(e.usage)
    return None
