"""The OpenAI Responses dialect: both halves of :mod:`antiapi.translate.dialect` (pure).

Client half (a Responses client such as Codex CLI talks to the gateway): ``parse_request``,
``StreamEncoder``, ``render_response``, ``render_error``. Upstream half (the gateway talks to
``/v1/responses`` of OpenAI / Azure, or to the ChatGPT Codex backend when
``target.provider == "codex"``): ``render_request``, ``StreamDecoder``, ``decode_response``,
``parse_error``, plus ``scan_usage`` for the same-dialect fast path.

May import: the standard library, msgspec, ``antiapi.errors``, ``antiapi.translate.*``,
``antiapi.wire.*``. No I/O, no clock (``created_at`` is passed in by the caller).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec

from antiapi.errors import KIND_STATUS, ErrorKind, GatewayError, InvalidRequest, UpstreamHTTPError, kind_for_status
from antiapi.translate import ir
from antiapi.translate.aggregate import merge_usage
from antiapi.translate.common import (
    budget_to_effort,
    data_url,
    new_id,
    normalize_call_id,
    normalize_tool_name,
    restore,
    split_data_url,
)
from antiapi.wire import openai_responses as w
from antiapi.wire.sse import SSEEvent

DIALECT = "openai_responses"
_NATIVE = "openai"

_ENC = msgspec.json.Encoder()
_decode_any = msgspec.json.Decoder()
_event_decoder = msgspec.json.Decoder(w.StreamEvent)
_body_decoder = msgspec.json.Decoder(w.ResponseBody)
_error_decoder = msgspec.json.Decoder(w.ErrorBody)
_usage_decoder = msgspec.json.Decoder(w.UsageScan)


def _esc(s: str) -> str:
    """``s`` as the inside of a JSON string literal (for streaming a string value in pieces)."""
    return _ENC.encode(s)[1:-1].decode()


def _custom_schema() -> dict:
    return {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]}


# =========================================================================== errors / kinds

_CODE_KIND: dict[str, ErrorKind] = {
    "rate_limit_exceeded": ErrorKind.RATE_LIMIT,
    "rate_limit_error": ErrorKind.RATE_LIMIT,
    # a plan window of the ChatGPT backend is used up: cool the account down, try another
    "usage_limit_reached": ErrorKind.RATE_LIMIT,
    "insufficient_quota": ErrorKind.BILLING,
    "usage_not_included": ErrorKind.BILLING,
    "billing_hard_limit_reached": ErrorKind.BILLING,
    "context_length_exceeded": ErrorKind.INVALID_REQUEST,
    "context_too_large": ErrorKind.INVALID_REQUEST,
    "invalid_request_error": ErrorKind.INVALID_REQUEST,
    "invalid_prompt": ErrorKind.INVALID_REQUEST,
    "invalid_value": ErrorKind.INVALID_REQUEST,
    "invalid_encrypted_content": ErrorKind.INVALID_REQUEST,
    "previous_response_not_found": ErrorKind.INVALID_REQUEST,
    "server_is_overloaded": ErrorKind.OVERLOADED,
    "slow_down": ErrorKind.OVERLOADED,
    "service_unavailable": ErrorKind.OVERLOADED,
    "service_unavailable_error": ErrorKind.OVERLOADED,
    "overloaded_error": ErrorKind.OVERLOADED,
    "invalid_api_key": ErrorKind.AUTHENTICATION,
    "authentication_error": ErrorKind.AUTHENTICATION,
    "permission_error": ErrorKind.PERMISSION,
    "permission_denied": ErrorKind.PERMISSION,
    "model_not_found": ErrorKind.NOT_FOUND,
    "not_found_error": ErrorKind.NOT_FOUND,
    "server_error": ErrorKind.API_ERROR,
}

#: error ``type`` values that are really codes (Codex backend puts them in ``type``)
_CODE_LIKE_TYPES = frozenset({"usage_limit_reached", "usage_not_included", "insufficient_quota"})


def _kind_for(code: Any, etype: Any) -> ErrorKind | None:
    for v in (code, etype):
        if isinstance(v, str):
            k = _CODE_KIND.get(v)
            if k is not None:
                return k
    return None


def _str_or_none(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def _error_from(code: Any, etype: Any, message: Any) -> ir.Error:
    kind = _kind_for(code, etype) or ErrorKind.API_ERROR
    c = _str_or_none(code) or (etype if etype in _CODE_LIKE_TYPES else None)
    msg = message if isinstance(message, str) and message else (c or "the upstream reported an error")
    return ir.Error(kind=kind.value, message=f"openai: {msg}", status=KIND_STATUS[kind], code=c)


# (type, default code) per kind, for the OpenAI error envelope
_ERROR_TYPE: dict[ErrorKind, tuple[str, str | None]] = {
    ErrorKind.INVALID_REQUEST: ("invalid_request_error", None),
    ErrorKind.AUTHENTICATION: ("invalid_request_error", "invalid_api_key"),
    ErrorKind.PERMISSION: ("permission_error", None),
    ErrorKind.NOT_FOUND: ("invalid_request_error", None),
    ErrorKind.REQUEST_TOO_LARGE: ("invalid_request_error", "request_too_large"),
    ErrorKind.RATE_LIMIT: ("rate_limit_error", "rate_limit_exceeded"),
    ErrorKind.BILLING: ("insufficient_quota", "insufficient_quota"),
    ErrorKind.TIMEOUT: ("server_error", "timeout"),
    ErrorKind.OVERLOADED: ("server_error", "server_is_overloaded"),
    ErrorKind.API_ERROR: ("server_error", None),
}

# response.error.code per kind (in-stream failure), when the IR error carries no code
_FAILED_CODE: dict[str, str] = {
    "rate_limit": "rate_limit_exceeded",
    "billing": "insufficient_quota",
    "overloaded": "server_is_overloaded",
    "invalid_request": "invalid_prompt",
    "request_too_large": "context_length_exceeded",
}


def render_error(err: GatewayError) -> bytes:
    """The OpenAI error envelope ``{"error": {"message", "type", "param", "code"}}``."""
    typ, default_code = _ERROR_TYPE.get(err.kind, ("server_error", None))
    return _ENC.encode(
        w.ErrorEnvelope(w.ErrorObject(message=err.message, type=typ, param=err.param, code=err.code or default_code))
    )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    v = headers.get(name)
    if v is None:
        for k, val in headers.items():
            if k.lower() == name:
                return val
    return v


def _seconds(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v) if v >= 0 else None
    if isinstance(v, str):
        try:
            f = float(v.strip())
        except ValueError:
            return None
        return f if f >= 0 else None
    return None


def parse_error(status: int, headers: Mapping[str, str], body: bytes) -> UpstreamHTTPError:
    """An upstream error answer (OpenAI envelope, Codex ``{"detail"}`` / usage-limit shapes)."""
    message: str | None = None
    code: str | None = None
    etype: Any = None
    param: str | None = None
    retry: float | None = None
    try:
        eb: w.ErrorBody | None = _error_decoder.decode(body)
    except msgspec.DecodeError:
        eb = None
    if eb is not None:
        err = eb.error
        if isinstance(err, w.ErrorDetail):
            etype = err.type
            code = _str_or_none(err.code) or (etype if etype in _CODE_LIKE_TYPES else None)
            param = _str_or_none(err.param)
            if isinstance(err.message, str) and err.message:
                message = err.message
            retry = _seconds(err.resets_in_seconds)
            if message is None:
                message = code or _str_or_none(etype)
        elif isinstance(err, str) and err:
            message = err
        if message is None and eb.detail is not None:
            message = eb.detail if isinstance(eb.detail, str) else _ENC.encode(eb.detail).decode()
    if message is None:
        text = body.decode("utf-8", errors="replace").strip()
        message = text[:500] if text else f"HTTP {status}"
    kind = _kind_for(code, etype) or kind_for_status(status)
    if retry is None:
        ms = _seconds(_header(headers, "retry-after-ms"))
        retry = ms / 1000.0 if ms is not None else _seconds(_header(headers, "retry-after"))
    request_id = _header(headers, "x-request-id") or _header(headers, "x-oai-request-id")
    return UpstreamHTTPError(
        f"openai: {message}",
        kind=kind,
        status=status,
        code=code,
        param=param,
        retry_after=retry,
        request_id=request_id,
    )


# =========================================================================== parse_request

_AT = re.compile(r"^(.*?)(?: - at `\$(.*)`)?$", re.S)


def _join(base: str, sub: str) -> str:
    if not sub:
        return base
    if not base:
        return sub[1:] if sub.startswith(".") else sub
    return base + sub


def _convert(obj: Any, typ: type, path: str) -> Any:
    try:
        return msgspec.convert(obj, typ)
    except msgspec.ValidationError as e:
        m = _AT.match(str(e))
        what, sub = (m.group(1), m.group(2) or "") if m else (str(e), "")
        where = _join(path, sub) or "body"
        raise InvalidRequest(f"{where}: {what[:1].lower()}{what[1:]}", param=where) from None


def _bad(path: str, what: str) -> InvalidRequest:
    return InvalidRequest(f"{path}: {what}", param=path)


def _image(part: dict, path: str) -> ir.Part:
    p = _convert(part, w.InputImageParam, path)
    if p.image_url:
        split = split_data_url(p.image_url)
        if split is not None:
            return ir.ImagePart(data=split[1], media_type=split[0], detail=p.detail)
        return ir.ImagePart(url=p.image_url, detail=p.detail)
    if p.file_id:
        return ir.RawPart(dialect=DIALECT, data=part)
    raise _bad(path, "an input_image needs image_url (an https URL or a data: URL) or file_id")


def _file(part: dict, path: str) -> ir.Part:
    p = _convert(part, w.InputFileParam, path)
    if p.file_data:
        split = split_data_url(p.file_data)
        if split is not None:
            return ir.DocumentPart(data=split[1], media_type=split[0], filename=p.filename)
        media = "application/pdf" if (p.filename or "").lower().endswith(".pdf") else None
        return ir.DocumentPart(data=p.file_data, media_type=media, filename=p.filename)
    if p.file_url:
        return ir.DocumentPart(url=p.file_url, filename=p.filename)
    if p.file_id:
        return ir.RawPart(dialect=DIALECT, data=part)
    raise _bad(path, "an input_file needs file_data (a data: URL), file_url or file_id")


def _content(content: Any, path: str) -> list[ir.Part]:
    if isinstance(content, str):
        return [ir.TextPart(text=content)] if content else []
    parts: list[ir.Part] = []
    for j, part in enumerate(content):
        pp = f"{path}[{j}]"
        if not isinstance(part, dict):
            raise _bad(pp, "expected a content part object such as {\"type\": \"input_text\", \"text\": \"...\"}")
        t = part.get("type")
        if t in ("input_text", "output_text", "text"):
            text = _convert(part, w.InputTextParam, pp).text
            if text:
                parts.append(ir.TextPart(text=text))
        elif t == "refusal":
            text = _convert(part, w.RefusalParam, pp).refusal
            if text:
                parts.append(ir.TextPart(text=text))
        elif t == "input_image":
            parts.append(_image(part, pp))
        elif t == "input_file":
            parts.append(_file(part, pp))
        elif isinstance(t, str):
            parts.append(ir.RawPart(dialect=DIALECT, data=part))
        else:
            raise _bad(pp + ".type", "required; send a content part type such as \"input_text\"")
    return parts


def _tool_output(output: Any, path: str) -> list[ir.TextPart | ir.ImagePart]:
    if output is None:
        return []
    if isinstance(output, str):
        return [ir.TextPart(text=output)] if output else []
    if isinstance(output, dict):
        return [ir.TextPart(text=_ENC.encode(output).decode())]
    out: list[ir.TextPart | ir.ImagePart] = []
    for j, part in enumerate(output):
        pp = f"{path}[{j}]"
        if not isinstance(part, dict):
            raise _bad(pp, "expected an input_text or input_image object")
        t = part.get("type")
        if t in ("input_text", "output_text", "text"):
            text = _convert(part, w.InputTextParam, pp).text
            if text:
                out.append(ir.TextPart(text=text))
        elif t == "input_image":
            img = _image(part, pp)
            if isinstance(img, ir.ImagePart):
                out.append(img)
            else:
                out.append(ir.TextPart(text=f"[image file {part.get('file_id')}]"))
        elif t == "input_file":
            out.append(ir.TextPart(text=f"[file {part.get('filename') or part.get('file_id') or ''}]".replace(" ]", "]")))
        else:
            out.append(ir.TextPart(text=_ENC.encode(part).decode()))
    return out


def _add_assistant(msgs: list[ir.Message], parts: list[ir.Part]) -> None:
    if not parts:
        return
    if msgs and msgs[-1].role == "assistant":
        msgs[-1].content.extend(parts)
    else:
        msgs.append(ir.Message(role="assistant", content=parts))


def _add_result(msgs: list[ir.Message], part: ir.Part) -> None:
    last = msgs[-1] if msgs else None
    if (
        last is not None
        and last.role == "user"
        and last.content
        and all(isinstance(p, (ir.ToolResultPart, ir.RawPart)) for p in last.content)
    ):
        last.content.append(part)
    else:
        msgs.append(ir.Message(role="user", content=[part]))


_USER_SIDE_RAW = frozenset({"item_reference", "mcp_approval_response"})


def _parse_input(items: list[Any], req: ir.Request) -> None:
    msgs = req.messages
    seen_turn = False
    for i, item in enumerate(items):
        path = f"input[{i}]"
        if not isinstance(item, dict):
            raise _bad(path, "expected an input item object, e.g. {\"role\": \"user\", \"content\": \"...\"}")
        t = item.get("type")
        if t is None and "role" in item:
            t = "message"
        if not isinstance(t, str):
            raise _bad(path + ".type", "required; send an item type such as \"message\" or \"function_call_output\"")
        if t == "message":
            m = _convert(item, w.MessageItemParam, path)
            parts = _content(m.content, path + ".content")
            if m.role in ("system", "developer"):
                if not seen_turn:
                    req.system.extend(p for p in parts if isinstance(p, ir.TextPart))
                elif parts:
                    msgs.append(ir.Message(role="system", content=parts))
                continue
            if m.role == "user":
                if parts:
                    msgs.append(ir.Message(role="user", content=parts))
            elif m.role == "assistant":
                _add_assistant(msgs, parts)
            else:
                raise _bad(path + ".role", f"unknown role {m.role!r}; use user, assistant, system or developer")
        elif t == "function_call":
            fc = _convert(item, w.FunctionCallParam, path)
            _add_assistant(msgs, [ir.ToolCallPart(id=fc.call_id, name=fc.name, arguments=fc.arguments or "{}")])
        elif t == "custom_tool_call":
            cc = _convert(item, w.CustomToolCallParam, path)
            args = _ENC.encode({"input": cc.input}).decode()
            _add_assistant(msgs, [ir.ToolCallPart(id=cc.call_id, name=cc.name, arguments=args)])
        elif t in ("function_call_output", "custom_tool_call_output"):
            fo = _convert(item, w.FunctionCallOutputParam, path)
            _add_result(msgs, ir.ToolResultPart(call_id=fo.call_id, content=_tool_output(fo.output, path + ".output")))
        elif t == "reasoning":
            r = _convert(item, w.ReasoningItemParam, path)
            text = "\n\n".join(s.text for s in r.summary if s.text)
            if r.encrypted_content:
                provider, sig = ir.unwrap_signature(r.encrypted_content, _NATIVE)
                _add_assistant(msgs, [ir.ReasoningPart(text=text, signature=sig, provider=provider)])  # type: ignore[arg-type]
            else:
                _add_assistant(msgs, [ir.ReasoningPart(text=text)])
        else:
            raw = ir.RawPart(dialect=DIALECT, data=item)
            if t.endswith("_output") or t in _USER_SIDE_RAW:
                _add_result(msgs, raw)
            else:
                _add_assistant(msgs, [raw])
        seen_turn = True


def _parse_tools(tools: list[Any]) -> list[ir.Tool]:
    out: list[ir.Tool] = []
    for i, t in enumerate(tools):
        path = f"tools[{i}]"
        if not isinstance(t, dict):
            raise _bad(path, "expected a tool object such as {\"type\": \"function\", \"name\": \"...\", \"parameters\": {...}}")
        typ = t.get("type", "function")
        if typ == "function":
            src = t
            if "name" not in t and isinstance(t.get("function"), dict):  # Chat-style nesting
                src = t["function"]
            f = _convert(src, w.FunctionToolParam, path)
            if not f.name:
                raise _bad(path + ".name", "must be a non-empty string")
            tool = ir.Tool(name=f.name, description=f.description, strict=f.strict)
            if f.parameters is not None:
                tool.parameters = f.parameters
            out.append(tool)
        elif typ == "custom":
            c = _convert(t, w.CustomToolParam, path)
            if not c.name:
                raise _bad(path + ".name", "must be a non-empty string")
            out.append(
                ir.Tool(
                    name=c.name,
                    description=c.description,
                    parameters=_custom_schema(),
                    kind="custom",
                    raw=t,
                    dialect=DIALECT,
                )
            )
        elif isinstance(typ, str):
            name = t.get("name") if isinstance(t.get("name"), str) and t.get("name") else typ
            out.append(ir.Tool(name=name, kind="builtin", raw=t, dialect=DIALECT))
        else:
            raise _bad(path + ".type", "must be a string such as \"function\"")
    return out


def _parse_tool_choice(tc: Any, extras: dict) -> ir.ToolChoice | None:
    if tc is None:
        return None
    if isinstance(tc, str):
        if tc not in ("auto", "none", "required"):
            raise _bad("tool_choice", f"unknown value {tc!r}; use \"auto\", \"none\", \"required\" or an object")
        return ir.ToolChoice(mode=tc)  # type: ignore[arg-type]
    typ = tc.get("type")
    if typ in ("function", "custom"):
        name = tc.get("name")
        if not isinstance(name, str) or not name:
            raise _bad("tool_choice.name", "required when tool_choice.type is \"function\" or \"custom\"")
        return ir.ToolChoice(mode="tool", name=name)
    extras["tool_choice"] = tc
    if typ == "allowed_tools":
        return ir.ToolChoice(mode="required" if tc.get("mode") == "required" else "auto")
    if isinstance(typ, str):  # a hosted tool ({"type": "web_search"}, mcp, ...) is forced
        return ir.ToolChoice(mode="required")
    raise _bad("tool_choice.type", "required; send {\"type\": \"function\", \"name\": \"...\"}")


def _parse_format(fmt: dict | None) -> ir.ResponseFormat | None:
    if not fmt:
        return None
    typ = fmt.get("type")
    if typ == "text":
        return None
    if typ == "json_object":
        return ir.ResponseFormat(type="json_object")
    if typ == "json_schema":
        schema = fmt.get("schema")
        if schema is not None and not isinstance(schema, dict):
            raise _bad("text.format.schema", "must be a JSON schema object")
        name = fmt.get("name")
        strict = fmt.get("strict")
        return ir.ResponseFormat(
            type="json_schema",
            name=name if isinstance(name, str) else None,
            schema=schema,
            strict=strict if isinstance(strict, bool) else None,
        )
    raise _bad("text.format.type", f"unknown value {typ!r}; use \"text\", \"json_object\" or \"json_schema\"")


def parse_request(body: bytes) -> ir.Request:
    """A Responses client request body -> IR. Raises InvalidRequest naming the JSON path."""
    try:
        raw = _decode_any.decode(body)
    except msgspec.DecodeError as e:
        raise InvalidRequest(f"body: not valid JSON ({e}); send a JSON object") from None
    if not isinstance(raw, dict):
        raise InvalidRequest("body: expected a JSON object with model and input")
    top: w.ResponsesRequest = _convert(raw, w.ResponsesRequest, "")
    if not top.model:
        raise _bad("model", "required; send the model name as a string")
    extras = {k: v for k, v in raw.items() if k not in w.MODELED_REQUEST_KEYS}
    req = ir.Request(model=top.model, source=DIALECT, include_usage=True, extras=extras)
    if top.instructions:
        req.system.append(ir.TextPart(text=top.instructions))
    if isinstance(top.input, str):
        if top.input:
            req.messages.append(ir.Message(role="user", content=[ir.TextPart(text=top.input)]))
    elif top.input is not None:
        _parse_input(top.input, req)
    if top.tools:
        req.tools = _parse_tools(top.tools)
    req.tool_choice = _parse_tool_choice(top.tool_choice, extras)
    req.parallel_tool_calls = top.parallel_tool_calls
    r = top.reasoning
    if r is not None:
        enabled = None if r.effort is None else r.effort != "none"
        req.reasoning = ir.Reasoning(enabled=enabled, effort=r.effort, summary=r.summary)
    req.want_reasoning = bool(r is not None and r.summary and r.summary != "none")
    req.max_output_tokens = top.max_output_tokens
    req.temperature = top.temperature
    req.top_p = top.top_p
    if top.text is not None:
        req.response_format = _parse_format(top.text.format)
        rest = {k: v for k, v in raw["text"].items() if k != "format"}
        if rest:
            extras["text"] = rest
    req.stream = bool(top.stream)
    req.user = top.user
    req.metadata = top.metadata
    return req


# =========================================================================== render_request

#: extras a Codex (ChatGPT backend) upstream accepts; everything else is rejected there
_CODEX_EXTRAS = frozenset({"prompt_cache_key", "client_metadata", "service_tier", "text"})


def _is_part(data: dict) -> bool:
    t = data.get("type")
    return isinstance(t, str) and (t.startswith("input_") or t.startswith("output_") or t == "refusal")


def _image_out(p: ir.ImagePart) -> dict:
    url = p.url if p.url else data_url(p.media_type, p.data or "")
    return {"type": "input_image", "image_url": url, "detail": p.detail or "auto"}


def _document_out(p: ir.DocumentPart) -> dict:
    if p.data is not None:
        media = p.media_type or "application/pdf"
        name = p.filename or ("document.pdf" if media == "application/pdf" else "document")
        return {"type": "input_file", "filename": name, "file_data": data_url(media, p.data)}
    d: dict = {"type": "input_file", "file_url": p.url or ""}
    if p.filename:
        d["filename"] = p.filename
    return d


def _result_output(p: ir.ToolResultPart) -> str | list[dict]:
    prefix = "Error: " if p.is_error else ""
    if not any(isinstance(c, ir.ImagePart) for c in p.content):
        text = "\n".join(c.text for c in p.content if isinstance(c, ir.TextPart))
        if p.is_error:
            return prefix + text if text else "Error"
        return text
    out: list[dict] = []
    for c in p.content:
        if isinstance(c, ir.TextPart):
            out.append({"type": "input_text", "text": prefix + c.text})
            prefix = ""
        else:
            out.append(_image_out(c))
    if prefix:
        out.insert(0, {"type": "input_text", "text": "Error"})
    return out


class _Renderer:
    __slots__ = ("names", "ids", "custom", "custom_ids", "items")

    def __init__(self, custom: set[str]) -> None:
        self.names: dict[str, str] = {}
        self.ids: dict[str, str] = {}
        self.custom = custom
        self.custom_ids: set[str] = set()
        self.items: list[dict] = []

    def user(self, m: ir.Message) -> None:
        content: list[dict] = []
        for p in m.content:
            if isinstance(p, ir.TextPart):
                if p.text:
                    content.append({"type": "input_text", "text": p.text})
            elif isinstance(p, ir.ImagePart):
                content.append(_image_out(p))
            elif isinstance(p, ir.DocumentPart):
                content.append(_document_out(p))
            elif isinstance(p, ir.ToolResultPart):
                call_id = normalize_call_id(p.call_id, self.ids)
                typ = "custom_tool_call_output" if p.call_id in self.custom_ids else "function_call_output"
                self.items.append({"type": typ, "call_id": call_id, "output": _result_output(p)})
            elif isinstance(p, ir.RawPart) and p.dialect == DIALECT:
                if _is_part(p.data):
                    content.append(p.data)
                else:
                    self.items.append(p.data)
        if content:
            self.items.append({"type": "message", "role": "user", "content": content})

    def system(self, m: ir.Message) -> None:
        content = [{"type": "input_text", "text": p.text} for p in m.content if isinstance(p, ir.TextPart) and p.text]
        if content:
            self.items.append({"type": "message", "role": "developer", "content": content})

    def assistant(self, m: ir.Message) -> None:
        content: list[dict] = []
        items = self.items

        def flush() -> None:
            if content:
                items.append({"type": "message", "role": "assistant", "content": content.copy()})
                content.clear()

        for p in m.content:
            if isinstance(p, ir.TextPart):
                if p.text:
                    content.append({"type": "output_text", "text": p.text})
            elif isinstance(p, ir.ToolCallPart):
                flush()
                call_id = normalize_call_id(p.id, self.ids)
                name = normalize_tool_name(p.name, self.names)
                if p.name in self.custom:
                    self.custom_ids.add(p.id)
                    items.append(
                        {"type": "custom_tool_call", "call_id": call_id, "name": name, "input": _custom_input(p.arguments)}
                    )
                else:
                    items.append(
                        {"type": "function_call", "call_id": call_id, "name": name, "arguments": p.arguments or "{}"}
                    )
            elif isinstance(p, ir.ReasoningPart):
                if p.provider == _NATIVE and p.signature and p.redacted is None:
                    flush()
                    summary = [{"type": "summary_text", "text": p.text}] if p.text else []
                    items.append({"type": "reasoning", "summary": summary, "encrypted_content": p.signature})
            elif isinstance(p, ir.RawPart) and p.dialect == DIALECT:
                if _is_part(p.data):
                    content.append(p.data)
                else:
                    flush()
                    items.append(p.data)
        flush()


def _custom_input(arguments: str) -> str:
    """The freeform input of a custom tool call from its IR arguments ``{"input": "..."}``."""
    if not arguments:
        return ""
    try:
        val = _decode_any.decode(arguments)
    except msgspec.DecodeError:
        return arguments
    if isinstance(val, dict):
        if "input" in val:
            v = val["input"]
            return v if isinstance(v, str) else _ENC.encode(v).decode()
        if not val:
            return ""
    return arguments


def _object_schema(params: dict) -> dict:
    """Drop ``$schema``; give an object schema without ``properties`` an empty one (§9.29)."""
    needs_props = params.get("type") == "object" and "properties" not in params
    if needs_props or "$schema" in params:
        params = {k: v for k, v in params.items() if k != "$schema"}
        if needs_props:
            params["properties"] = {}
    return params


def _render_tools(req: ir.Request, names: dict[str, str]) -> list[dict]:
    out: list[dict] = []
    same = req.source == DIALECT
    for t in req.tools:
        if t.kind == "function":
            d: dict = {"type": "function", "name": normalize_tool_name(t.name, names)}
            if t.description:
                d["description"] = t.description
            d["parameters"] = _object_schema(t.parameters)
            if t.strict is not None:
                d["strict"] = t.strict
            elif not same:
                # the Responses API defaults strict to true, which rejects ordinary schemas
                d["strict"] = False
            out.append(d)
        elif t.kind == "custom":
            name = normalize_tool_name(t.name, names)
            if t.raw is not None and t.dialect == DIALECT:
                out.append(t.raw if name == t.name else {**t.raw, "name": name})
            else:
                d = {"type": "custom", "name": name}
                if t.description:
                    d["description"] = t.description
                out.append(d)
        elif t.raw is not None:
            if t.dialect == DIALECT:
                out.append(t.raw)
            elif t.dialect == "anthropic" and str(t.raw.get("type", "")).startswith("web_search"):
                out.append({"type": "web_search"})
    return out


def _render_tool_choice(req: ir.Request, custom: set[str], names: dict[str, str]) -> Any:
    if req.source == DIALECT and "tool_choice" in req.extras:
        return req.extras["tool_choice"]
    tc = req.tool_choice
    if tc is None:
        return None
    if tc.mode == "tool" and tc.name:
        typ = "custom" if tc.name in custom else "function"
        return {"type": typ, "name": normalize_tool_name(tc.name, names)}
    return "required" if tc.mode == "tool" else tc.mode


def _render_format(rf: ir.ResponseFormat | None) -> dict | None:
    if rf is None or rf.type == "text":
        return None
    if rf.type == "json_object":
        return {"type": "json_object"}
    d: dict = {"type": "json_schema", "name": rf.name or "response", "schema": rf.schema or {"type": "object"}}
    if rf.strict is not None:
        d["strict"] = rf.strict
    return d


def render_request(req: ir.Request, target: ir.Target) -> ir.Outgoing:
    """IR -> a ``/v1/responses`` body for OpenAI/Azure, or for the Codex backend (provider "codex")."""
    codex = target.provider == "codex"
    same = req.source == DIALECT
    custom = {t.name for t in req.tools if t.kind == "custom"}
    r = _Renderer(custom)
    body: dict[str, Any] = {"model": target.model}
    sys_texts = [p.text for p in req.system if p.text]
    if codex:
        body["instructions"] = ""
        if sys_texts:
            r.items.append(
                {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": t} for t in sys_texts]}
            )
    elif sys_texts:
        body["instructions"] = "\n\n".join(sys_texts)
    for m in req.messages:
        if m.role == "user":
            r.user(m)
        elif m.role == "assistant":
            r.assistant(m)
        else:
            r.system(m)
    body["input"] = r.items
    tools = _render_tools(req, r.names)
    if tools or codex:
        body["tools"] = tools
        tc = _render_tool_choice(req, custom, r.names)
        if tc is not None:
            body["tool_choice"] = tc
        elif codex:
            body["tool_choice"] = "auto"
        if codex:
            body["parallel_tool_calls"] = bool(tools)
        elif req.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = req.parallel_tool_calls

    # reasoning
    rs = req.reasoning
    send_reasoning = codex or target.reasoning_model or (same and rs is not None)
    if send_reasoning:
        effort = None
        summary = None
        if rs is not None:
            effort = rs.effort
            if effort is None and rs.budget_tokens is not None:
                effort = budget_to_effort(rs.budget_tokens)
            elif effort is None and (rs.enabled or rs.adaptive):
                effort = budget_to_effort(None)
            summary = rs.summary
        if summary is None and req.want_reasoning:
            summary = "auto"
        reasoning = {}
        if effort is not None:
            reasoning["effort"] = effort
        if summary is not None:
            reasoning["summary"] = summary
        if reasoning:
            body["reasoning"] = reasoning

    if not codex:
        if req.max_output_tokens is not None:
            body["max_output_tokens"] = req.max_output_tokens
        if not target.reasoning_model:
            if req.temperature is not None:
                body["temperature"] = req.temperature
            if req.top_p is not None:
                body["top_p"] = req.top_p
        if req.user is not None:
            body["user"] = req.user
        if req.metadata is not None:
            body["metadata"] = req.metadata
        if not same and send_reasoning:
            # the gateway keeps no state: ask for the reasoning blob to replay it next turn
            body["store"] = False
            body["include"] = ["reasoning.encrypted_content"]
    fmt = _render_format(req.response_format)
    if fmt is not None:
        body["text"] = {"format": fmt}

    if same:
        for k, v in req.extras.items():
            if k == "tool_choice":
                continue
            if codex and k not in _CODEX_EXTRAS:
                continue
            if k == "text" and isinstance(v, dict):
                body["text"] = {**v, **body.get("text", {})}
            elif k == "service_tier" and codex:
                if v == "priority":
                    body[k] = v
            elif k not in body:
                body[k] = v

    stream = True if codex else req.stream
    body["stream"] = stream
    if codex:
        body["store"] = False
        body["include"] = ["reasoning.encrypted_content"]
    return ir.Outgoing(body=body, stream=stream, tool_names=r.names, call_ids=r.ids)


# =========================================================================== upstream decoding


class _Item:
    """Decoder state for one upstream output item."""

    __slots__ = ("kind", "index", "open", "saw_delta", "seen", "last_key", "has_text", "json_closed")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.index: int | None = None
        self.open = False
        self.saw_delta = False
        #: content / summary parts already emitted (keys ("c", i) / ("s", i) / ("r", i))
        self.seen: set[tuple[str, int]] = set()
        self.last_key: tuple[str, int] | None = None
        self.has_text = False
        self.json_closed = False


def _usage(u: w.UsageBody) -> ir.Usage:
    cached = int((u.input_tokens_details.cached_tokens or 0) if u.input_tokens_details else 0)
    reasoning = int((u.output_tokens_details.reasoning_tokens or 0) if u.output_tokens_details else 0)
    inp = int(u.input_tokens or 0)
    return ir.Usage(
        input_tokens=max(0, inp - cached),
        output_tokens=int(u.output_tokens or 0),
        cache_read_tokens=cached,
        reasoning_tokens=reasoning,
    )


def _part_text(part: Any) -> str:
    if isinstance(part, dict):
        t = part.get("text")
        if isinstance(t, str):
            return t
        t = part.get("refusal")
        if isinstance(t, str):
            return t
    return ""


class StreamDecoder:
    """Responses SSE events (from OpenAI, Azure or the Codex backend) -> IR events."""

    __slots__ = (
        "_names",
        "_ids",
        "_by_index",
        "_by_id",
        "_next",
        "_started",
        "_done",
        "_tool",
        "_seen_any",
        "_seen_ids",
    )

    def __init__(self, out: ir.Outgoing) -> None:
        self._names = out.tool_names
        self._ids = out.call_ids
        self._by_index: dict[int, _Item] = {}
        self._by_id: dict[str, _Item] = {}
        self._next = 0
        self._started = False
        self._done = False
        self._tool = False
        self._seen_any = False
        self._seen_ids: set[str] = set()

    # ------------------------------------------------------------------ public

    def feed(self, ev: SSEEvent) -> list[ir.Event]:
        if self._done:
            return []
        data = ev.data
        if not data:
            return []
        try:
            e = _event_decoder.decode(data)
        except msgspec.DecodeError:
            return []
        t = e.type or ev.event or ""
        handler = _HANDLERS.get(t)
        if handler is None:
            return []
        out: list[ir.Event] = []
        if not self._started and t not in _NO_START:
            self._start(e.response, out)
        handler(self, e, out)
        return out

    def finish(self) -> list[ir.Event]:
        if self._done:
            return []
        self._done = True
        return [ir.Error(kind="api_error", message="stream closed before response.completed")]

    # ------------------------------------------------------------------ helpers

    def _start(self, resp: w.ResponseBody | None, out: list[ir.Event]) -> None:
        self._started = True
        out.append(ir.Start(id=resp.id if resp else None, model=resp.model if resp else None))

    def _lookup(self, e: w.StreamEvent) -> _Item | None:
        if e.item_id is not None:
            it = self._by_id.get(e.item_id)
            if it is not None:
                return it
        if e.output_index is not None:
            return self._by_index.get(e.output_index)
        return None

    def _register(self, kind: str, output_index: int | None, item_id: Any) -> _Item:
        it = _Item(kind)
        self._seen_any = True
        if output_index is not None:
            self._by_index[output_index] = it
        if isinstance(item_id, str):
            self._by_id[item_id] = it
            self._seen_ids.add(item_id)
        return it

    def _open(self, it: _Item, out: list[ir.Event], **kw: Any) -> int:
        if it.index is None:
            it.index = self._next
            self._next += 1
            it.open = True
            out.append(ir.BlockStart(index=it.index, **kw))
        return it.index

    def _close(self, it: _Item, out: list[ir.Event]) -> None:
        if it.open:
            it.open = False
            out.append(ir.BlockStop(index=it.index))  # type: ignore[arg-type]

    def _item_added(self, item: dict, output_index: int | None, out: list[ir.Event], whole: bool = False) -> _Item:
        typ = item.get("type")
        if typ == "message":
            return self._register("message", output_index, item.get("id"))
        if typ == "reasoning":
            it = self._register("reasoning", output_index, item.get("id"))
            self._open(it, out, kind="reasoning", provider=_NATIVE)
            return it
        if typ in ("function_call", "custom_tool_call"):
            it = self._register(typ, output_index, item.get("id"))
            call_id = item.get("call_id") or item.get("id")
            call_id = restore(call_id, self._ids) if isinstance(call_id, str) else new_id("call_")
            name = item.get("name")
            name = restore(name, self._names) if isinstance(name, str) and name else None
            idx = self._open(it, out, kind="tool_call", id=call_id, name=name)
            self._tool = True
            if whole:  # the done handler emits the arguments in one piece
                return it
            if typ == "function_call":
                args = item.get("arguments")
                if isinstance(args, str) and args:
                    out.append(ir.ArgsDelta(index=idx, json=args))
                    it.saw_delta = True
            else:
                inp = item.get("input")
                if isinstance(inp, str) and inp:
                    out.append(ir.ArgsDelta(index=idx, json='{"input":"' + _esc(inp)))
                    it.saw_delta = True
            return it
        return self._register("other", output_index, item.get("id"))

    def _text(self, it: _Item, key: tuple[str, int], text: str, out: list[ir.Event]) -> None:
        """Emit message text (key ("c", content_index)) or reasoning text (("s"|"r", i))."""
        it.seen.add(key)
        if not text or (it.index is not None and not it.open):
            return
        if it.kind == "message":
            idx = self._open(it, out, kind="text")
            out.append(ir.TextDelta(index=idx, text=text))
        else:
            idx = self._open(it, out, kind="reasoning", provider=_NATIVE)
            if it.has_text and it.last_key != key:
                text = "\n\n" + text
            out.append(ir.ReasoningDelta(index=idx, text=text))
        it.has_text = True
        it.last_key = key

    def _item_done(self, it: _Item, item: dict, out: list[ir.Event]) -> None:
        kind = it.kind
        if kind == "message":
            content = item.get("content")
            if isinstance(content, list):
                for ci, part in enumerate(content):
                    if ("c", ci) not in it.seen:
                        self._text(it, ("c", ci), _part_text(part), out)
        elif kind == "reasoning":
            if not it.has_text:
                summary = item.get("summary")
                if isinstance(summary, list):
                    for si, part in enumerate(summary):
                        self._text(it, ("s", si), _part_text(part), out)
            idx = self._open(it, out, kind="reasoning", provider=_NATIVE)
            enc = item.get("encrypted_content")
            if isinstance(enc, str) and enc and it.open:
                out.append(ir.SignatureDelta(index=idx, signature=enc))
        elif kind == "function_call":
            args = item.get("arguments")
            if not it.saw_delta and isinstance(args, str) and args and it.open:
                out.append(ir.ArgsDelta(index=it.index, json=args))  # type: ignore[arg-type]
                it.saw_delta = True
        elif kind == "custom_tool_call":
            self._custom_done(it, item.get("input"), out)
        self._close(it, out)

    def _custom_done(self, it: _Item, inp: Any, out: list[ir.Event]) -> None:
        if not it.open or it.json_closed:
            return
        it.json_closed = True
        if it.saw_delta:
            out.append(ir.ArgsDelta(index=it.index, json='"}'))  # type: ignore[arg-type]
        else:
            text = inp if isinstance(inp, str) else ""
            out.append(ir.ArgsDelta(index=it.index, json=_ENC.encode({"input": text}).decode()))  # type: ignore[arg-type]
            it.saw_delta = True

    def _whole_item(self, item: Any, output_index: int | None, out: list[ir.Event]) -> None:
        if not isinstance(item, dict):
            return
        it = self._item_added(item, output_index, out, whole=True)
        self._item_done(it, item, out)

    def _terminal(self, resp: w.ResponseBody | None, incomplete: bool, out: list[ir.Event]) -> None:
        for it in sorted(
            {id(x): x for x in (*self._by_index.values(), *self._by_id.values())}.values(),
            key=lambda x: x.index if x.index is not None else -1,
        ):
            if it.open:
                if it.kind == "custom_tool_call":
                    self._custom_done(it, None, out)
                self._close(it, out)
        if resp is not None and resp.output:
            # items only the final object shows (some servers leave out the item events)
            for item in resp.output:
                if not isinstance(item, dict):
                    continue
                iid = item.get("id")
                if (isinstance(iid, str) and iid not in self._seen_ids) or (not isinstance(iid, str) and not self._seen_any):
                    self._whole_item(item, None, out)
        if incomplete:
            details = resp.incomplete_details if resp is not None else None
            why = details.get("reason") if isinstance(details, dict) else None
            reason: ir.StopReason = "refusal" if why == "content_filter" else "max_tokens"
        else:
            reason = "tool_use" if self._tool else "end_turn"
        out.append(ir.Finish(reason=reason))
        if resp is not None and resp.usage is not None:
            out.append(ir.UsageEvent(usage=_usage(resp.usage)))
        out.append(ir.End())
        self._done = True

    def _fail(self, err: ir.Error, out: list[ir.Event]) -> None:
        out.append(err)
        self._done = True

    # ------------------------------------------------------------------ handlers

    def _on_created(self, e: w.StreamEvent, out: list[ir.Event]) -> None:
        if not self._started:
            self._start(e.response, out)

    def _on_item_added(self, e: w.StreamEvent, out: list[ir.Event]) -> None:
        if e.item is not None:
            self._item_added(e.item, e.output_index, out)

    def _on_item_done(self, e: w.StreamEvent, out: list[ir.Event]) -> None:
        item = e.item
        if item is None:
            return
        it = self._lookup_item(e, item)
        if it is None:
            self._whole_item(item, e.output_index, out)
        else:
            self._item_done(it, item, out)

    def _lookup_item(self, e: w.StreamEvent, item: dict) -> _Item | None:
        iid = item.get("id")
        if isinstance(iid, str) and iid in self._by_id:
            return self._by_id[iid]
        if e.output_index is not None:
            return self._by_index.get(e.output_index)
        return None

    def _ensure(self, e: w.StreamEvent, kind: str, out: list[ir.Event]) -> _Item:
        it = self._lookup(e)
        if it is None:  # a delta for an item whose output_item.added never came
            it = self._item_added({"type": kind, "id": e.item_id}, e.output_index, out)
        return it

    def _on_text_delta(self, e: w.StreamEvent, out: list[ir.Event]) -> None:
        d = e.delta
        if isinstance(d, str) and d:
            it = self._ensure(e, "message", out)
            if it.kind == "message":
                self._text(it, ("c", e.content_index or 0), d, out)

    def _on_text_done(self, e: w.StreamEvent, out: list[ir.Event]) -> None:
        key = ("c", e.content_index or 0)
        it = self._lookup(e)
        text = e.text if e.text is not None else e.refusal
        if it is not None and it.kind == "message" and key not in it.seen and text:
            self._text(it, key, text, out)

    def _on_summary_delta(self, e: w.StreamEvent, out: list[ir.Event]) -> None:
        d = e.delta
        if isinstance(d, str) and d:
            it = self._ensure(e, "reasoning", out)
            if it.kind == "reasoning" and it.open:
                self._text(it, ("s", e.summary_index or 0), d, out)

    def _on_summary_done(self, e: w.StreamEvent, out: list[ir.Event]) -> None:
        key = ("s", e.summary_index or 0)
        it = self._lookup(e)
        if it is not None and it.kind == "reasoning" and it.open and key not in it.seen and e.text:
            self._text(it, key, e.text, out)

    def _on_reasoning_text_delta(self, e: w.StreamEvent, out: list[ir.Event]) -> None:
        d = e.delta
        if isinstance(d, str) and d:
            it = self._ensure(e, "reasoning", out)
            if it.kind == "reasoning" and it.open:
                self._text(it, ("r", e.content_index or 0), d, out)

    def _on_reasoning_text_done(self, e: w.StreamEvent, out: list[ir.Event]) -> None:
        key = ("r", e.content_index or 0)
        it = self._lookup(e)
        if it is not None and it.kind == "reasoning" and it.open and key not in it.seen and e.text:
            self._text(it, key, e.text, out)

    def _on_args_delta(self, e: w.StreamEvent, out: list[ir.Event]) -> None:
        d = e.delta
        if isinstance(d, str) and d:
            it = self._ensure(e, "function_call", out)
            if it.kind == "function_call" and it.open:
                out.append(ir.ArgsDelta(index=it.index, json=d))  # type: ignore[arg-type]
                it.saw_delta = True

    def _on_args_done(self, e: w.StreamEvent, out: list[ir.Event]) -> None:
        it = self._lookup(e)
        if it is not None and it.kind == "function_call" and it.open and not it.saw_delta and e.arguments:
            out.append(ir.ArgsDelta(index=it.index, json=e.arguments))  # type: ignore[arg-type]
            it.saw_delta = True

    def _on_custom_delta(self, e: w.StreamEvent, out: list[ir.Event]) -> None:
        d = e.delta
        if isinstance(d, str) and d:
            it = self._ensure(e, "custom_tool_call", out)
            if it.kind == "custom_tool_call" and it.open and not it.json_closed:
                frag = _esc(d) if it.saw_delta else '{"input":"' + _esc(d)
                out.append(ir.ArgsDelta(index=it.index, json=frag))  # type: ignore[arg-type]
                it.saw_delta = True

    def _on_custom_done(self, e: w.StreamEvent, out: list[ir.Event]) -> None:
        it = self._lookup(e)
        if it is not None and it.kind == "custom_tool_call":
            self._custom_done(it, e.input, out)

    def _on_completed(self, e: w.StreamEvent, out: list[ir.Event]) -> None:
        self._terminal(e.response, False, out)

    def _on_incomplete(self, e: w.StreamEvent, out: list[ir.Event]) -> None:
        self._terminal(e.response, True, out)

    def _on_failed(self, e: w.StreamEvent, out: list[ir.Event]) -> None:
        err = e.response.error if e.response is not None else None
        if isinstance(err, dict):
            self._fail(_error_from(err.get("code"), err.get("type"), err.get("message")), out)
        else:
            self._fail(_error_from(None, None, "response.failed"), out)

    def _on_error(self, e: w.StreamEvent, out: list[ir.Event]) -> None:
        nested = e.error
        if isinstance(nested, dict):
            self._fail(_error_from(nested.get("code"), nested.get("type"), nested.get("message")), out)
        else:
            self._fail(_error_from(e.code, None, e.message), out)


_HANDLERS: dict[str, Any] = {
    "response.created": StreamDecoder._on_created,
    "response.in_progress": StreamDecoder._on_created,
    "response.queued": StreamDecoder._on_created,
    "response.output_item.added": StreamDecoder._on_item_added,
    "response.output_item.done": StreamDecoder._on_item_done,
    "response.output_text.delta": StreamDecoder._on_text_delta,
    "response.refusal.delta": StreamDecoder._on_text_delta,
    "response.output_text.done": StreamDecoder._on_text_done,
    "response.refusal.done": StreamDecoder._on_text_done,
    "response.reasoning_summary_text.delta": StreamDecoder._on_summary_delta,
    "response.reasoning_summary_text.done": StreamDecoder._on_summary_done,
    "response.reasoning_text.delta": StreamDecoder._on_reasoning_text_delta,
    "response.reasoning_text.done": StreamDecoder._on_reasoning_text_done,
    "response.function_call_arguments.delta": StreamDecoder._on_args_delta,
    "response.function_call_arguments.done": StreamDecoder._on_args_done,
    "response.custom_tool_call_input.delta": StreamDecoder._on_custom_delta,
    "response.custom_tool_call_input.done": StreamDecoder._on_custom_done,
    "response.completed": StreamDecoder._on_completed,
    "response.incomplete": StreamDecoder._on_incomplete,
    "response.failed": StreamDecoder._on_failed,
    "error": StreamDecoder._on_error,
}

#: events that do not trigger a synthetic Start when they come first
_NO_START = frozenset({"error", "response.failed", "response.created", "response.in_progress", "response.queued"})


def decode_response(body: bytes, out: ir.Outgoing) -> list[ir.Event]:
    """A non-stream Responses body -> the same events its stream would give."""
    try:
        resp = _body_decoder.decode(body)
    except msgspec.DecodeError as e:
        return [ir.Error(kind="api_error", message=f"openai: the upstream sent an unreadable response body ({e})")]
    dec = StreamDecoder(out)
    events: list[ir.Event] = []
    if resp.status == "failed" or (resp.status is None and resp.error):
        err = resp.error or {}
        return [_error_from(err.get("code"), err.get("type"), err.get("message"))]
    dec._start(resp, events)
    for i, item in enumerate(resp.output or ()):
        dec._whole_item(item, i, events)
    dec._terminal(resp, resp.status == "incomplete", events)
    return events


def scan_usage(ev: SSEEvent) -> ir.Usage | None:
    """Usage of a terminal Responses event (``response.completed`` / ``.incomplete``); else None."""
    name = ev.event
    data = ev.data
    if name is not None:
        if name not in _USAGE_EVENTS:
            return None
    elif "response.completed" not in data and "response.incomplete" not in data:
        return None
    try:
        scan = _usage_decoder.decode(data)
    except msgspec.DecodeError:
        return None
    if scan.type not in _USAGE_EVENTS or scan.response is None or scan.response.usage is None:
        return None
    return _usage(scan.response.usage)


_USAGE_EVENTS = frozenset({"response.completed", "response.incomplete"})


# =========================================================================== client encoding


def _echo_tools(req: ir.Request) -> list[Any]:
    out: list[Any] = []
    for t in req.tools:
        if t.kind == "function":
            out.append(
                {
                    "type": "function",
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                    "strict": t.strict if t.strict is not None else True,
                }
            )
        elif t.raw is not None and t.dialect == DIALECT:
            out.append(t.raw)
        elif t.kind == "custom":
            out.append({"type": "custom", "name": t.name, "description": t.description})
    return out


def _echo_tool_choice(req: ir.Request, custom: set[str]) -> Any:
    if req.source == DIALECT and "tool_choice" in req.extras:
        return req.extras["tool_choice"]
    tc = req.tool_choice
    if tc is None:
        return "auto"
    if tc.mode == "tool" and tc.name:
        return {"type": "custom" if tc.name in custom else "function", "name": tc.name}
    return "required" if tc.mode == "tool" else tc.mode


def _echo_text(req: ir.Request) -> dict:
    fmt = _render_format(req.response_format) or {"type": "text"}
    text: dict = {"format": fmt}
    extra = req.extras.get("text") if req.source == DIALECT else None
    if isinstance(extra, dict) and isinstance(extra.get("verbosity"), str):
        text["verbosity"] = extra["verbosity"]
    return text


def _response_fields(req: ir.Request, custom: set[str]) -> dict[str, Any]:
    """The request echo every response object carries (computed once per response)."""
    rs = req.reasoning
    return {
        "parallel_tool_calls": req.parallel_tool_calls if req.parallel_tool_calls is not None else True,
        "tool_choice": _echo_tool_choice(req, custom),
        "tools": _echo_tools(req),
        "max_output_tokens": req.max_output_tokens,
        "reasoning": {"effort": rs.effort, "summary": rs.summary} if rs is not None else None,
        "temperature": req.temperature,
        "top_p": req.top_p,
        "text": _echo_text(req),
        "user": req.user,
        "metadata": req.metadata if req.metadata is not None else {},
    }


def _usage_out(u: ir.Usage) -> w.Usage:
    prompt = u.prompt_tokens
    return w.Usage(
        input_tokens=prompt,
        input_tokens_details=w.InputTokensDetailsOut(
            cached_tokens=u.cache_read_tokens, cache_write_tokens=u.cache_write_tokens
        ),
        output_tokens=u.output_tokens,
        output_tokens_details=w.OutputTokensDetailsOut(reasoning_tokens=u.reasoning_tokens),
        total_tokens=prompt + u.output_tokens,
    )


def _status_for(reason: str) -> tuple[str, w.IncompleteDetails | None]:
    if reason in ("max_tokens", "context_exceeded"):
        return "incomplete", w.IncompleteDetails(reason="max_output_tokens")
    if reason == "refusal":
        return "incomplete", w.IncompleteDetails(reason="content_filter")
    return "completed", None


def _response_id(upstream_id: str | None) -> str:
    if upstream_id and upstream_id.startswith("resp_"):
        return upstream_id
    return new_id("resp_")


def _frame_prefix(cls: type) -> bytes:
    return b"event: " + cls.__struct_config__.tag.encode() + b"\ndata: "  # type: ignore[attr-defined]


_PREFIX: dict[type, bytes] = {
    cls: _frame_prefix(cls)
    for cls in (
        w.ResponseCreatedEvent,
        w.ResponseInProgressEvent,
        w.ResponseCompletedEvent,
        w.ResponseIncompleteEvent,
        w.ResponseFailedEvent,
        w.OutputItemAddedEvent,
        w.OutputItemDoneEvent,
        w.ContentPartAddedEvent,
        w.ContentPartDoneEvent,
        w.OutputTextDeltaEvent,
        w.OutputTextDoneEvent,
        w.FunctionCallArgumentsDeltaEvent,
        w.FunctionCallArgumentsDoneEvent,
        w.CustomToolCallInputDeltaEvent,
        w.CustomToolCallInputDoneEvent,
        w.ReasoningSummaryPartAddedEvent,
        w.ReasoningSummaryPartDoneEvent,
        w.ReasoningSummaryTextDeltaEvent,
        w.ReasoningSummaryTextDoneEvent,
    )
}


class _Block:
    __slots__ = ("kind", "oi", "item_id", "parts", "sig", "provider", "call_id", "name", "custom", "summary_open")

    def __init__(self, kind: str, oi: int, item_id: str) -> None:
        self.kind = kind
        self.oi = oi
        self.item_id = item_id
        self.parts: list[str] = []
        self.sig: list[str] = []
        self.provider: str | None = None
        self.call_id = ""
        self.name = ""
        self.custom = False
        self.summary_open = False


class StreamEncoder:
    """IR events -> Responses SSE for a Responses client (Codex CLI, the openai SDK).

    ``created_at`` (unix seconds) is echoed in the response object; the caller owns the clock.
    """

    __slots__ = (
        "_req",
        "_model",
        "_created",
        "_seq",
        "_rid",
        "_started",
        "_finished",
        "_blocks",
        "_items",
        "_reason",
        "_usage",
        "_want",
        "_custom",
        "_fields",
    )

    def __init__(self, req: ir.Request, model: str, *, created_at: int = 0) -> None:
        self._req = req
        self._model = model
        self._created = created_at
        self._seq = 0
        self._rid = ""
        self._started = False
        self._finished = False
        self._blocks: dict[int, _Block | None] = {}
        #: output items by output_index, set when their output_item.done was sent
        self._items: list[w.OutputItem | None] = []
        self._reason: str = "end_turn"
        self._usage = ir.Usage()
        self._want = req.want_reasoning
        self._custom = {t.name for t in req.tools if t.kind == "custom"}
        self._fields: dict[str, Any] | None = None

    # ------------------------------------------------------------------ framing

    def _n(self) -> int:
        n = self._seq
        self._seq = n + 1
        return n

    @staticmethod
    def _frame(ev: Any) -> bytes:
        return _PREFIX[type(ev)] + _ENC.encode(ev) + b"\n\n"

    def _response(
        self,
        status: str,
        output: list[w.OutputItem],
        *,
        usage: w.Usage | None = None,
        error: w.ResponseError | None = None,
        incomplete: w.IncompleteDetails | None = None,
    ) -> w.ResponseObject:
        if self._fields is None:
            self._fields = _response_fields(self._req, self._custom)
        return w.ResponseObject(
            id=self._rid,
            created_at=self._created,
            status=status,
            model=self._model,
            output=output,
            usage=usage,
            error=error,
            incomplete_details=incomplete,
            **self._fields,
        )

    def _begin(self, upstream_id: str | None = None) -> bytes:
        self._started = True
        self._rid = _response_id(upstream_id)
        resp = self._response("in_progress", [])
        return self._frame(w.ResponseCreatedEvent(sequence_number=self._n(), response=resp)) + self._frame(
            w.ResponseInProgressEvent(sequence_number=self._n(), response=resp)
        )

    # ------------------------------------------------------------------ feed

    def feed(self, ev: ir.Event) -> bytes:
        if self._finished:
            return b""
        t = type(ev)
        if t is ir.TextDelta:
            b = self._blocks.get(ev.index)  # type: ignore[union-attr]
            if b is None or not ev.text:  # type: ignore[union-attr]
                return b""
            b.parts.append(ev.text)  # type: ignore[union-attr]
            return self._frame(
                w.OutputTextDeltaEvent(
                    sequence_number=self._n(), item_id=b.item_id, output_index=b.oi, content_index=0, delta=ev.text  # type: ignore[union-attr]
                )
            )
        if t is ir.ArgsDelta:
            b = self._blocks.get(ev.index)  # type: ignore[union-attr]
            if b is None or not ev.json:  # type: ignore[union-attr]
                return b""
            b.parts.append(ev.json)  # type: ignore[union-attr]
            if b.custom:
                return b""
            return self._frame(
                w.FunctionCallArgumentsDeltaEvent(
                    sequence_number=self._n(), item_id=b.item_id, output_index=b.oi, delta=ev.json  # type: ignore[union-attr]
                )
            )
        if t is ir.ReasoningDelta:
            return self._reasoning_delta(ev)  # type: ignore[arg-type]
        if t is ir.BlockStart:
            return self._block_start(ev)  # type: ignore[arg-type]
        if t is ir.BlockStop:
            b = self._blocks.pop(ev.index, None)  # type: ignore[union-attr]
            return self._block_stop(b) if b is not None else b""
        if t is ir.SignatureDelta:
            b = self._blocks.get(ev.index)  # type: ignore[union-attr]
            if b is not None:
                b.sig.append(ev.signature)  # type: ignore[union-attr]
            return b""
        if t is ir.Start:
            if ev.usage is not None:  # type: ignore[union-attr]
                merge_usage(self._usage, ev.usage)  # type: ignore[union-attr]
            return b"" if self._started else self._begin(ev.id)  # type: ignore[union-attr]
        if t is ir.Finish:
            self._reason = ev.reason  # type: ignore[union-attr]
            return b""
        if t is ir.UsageEvent:
            merge_usage(self._usage, ev.usage)  # type: ignore[union-attr]
            return b""
        if t is ir.End:
            return self._end()
        if t is ir.Error:
            return self._error(ev)  # type: ignore[arg-type]
        return b""

    # ------------------------------------------------------------------ blocks

    def _block_start(self, ev: ir.BlockStart) -> bytes:
        head = b"" if self._started else self._begin()
        kind = ev.kind
        if kind == "redacted_reasoning" or ev.index in self._blocks:
            self._blocks.setdefault(ev.index, None)
            return head
        oi = len(self._items)
        self._items.append(None)
        n = self._n
        if kind == "text":
            b = _Block("text", oi, new_id("msg_"))
            self._blocks[ev.index] = b
            return (
                head
                + self._frame(
                    w.OutputItemAddedEvent(
                        sequence_number=n(), output_index=oi, item=w.MessageItem(id=b.item_id, status="in_progress", content=[])
                    )
                )
                + self._frame(
                    w.ContentPartAddedEvent(
                        sequence_number=n(), item_id=b.item_id, output_index=oi, content_index=0, part=w.OutputText(text="")
                    )
                )
            )
        if kind == "reasoning":
            b = _Block("reasoning", oi, new_id("rs_"))
            b.provider = ev.provider
            self._blocks[ev.index] = b
            return head + self._frame(
                w.OutputItemAddedEvent(sequence_number=n(), output_index=oi, item=w.ReasoningItem(id=b.item_id, summary=[]))
            )
        # tool_call
        name = ev.name or f"tool_{ev.index}"
        b = _Block("tool_call", oi, "")
        b.call_id = ev.id or new_id("call_")
        b.name = name
        b.custom = name in self._custom
        self._blocks[ev.index] = b
        if b.custom:
            b.item_id = new_id("ctc_")
            item: w.OutputItem = w.CustomToolCallItem(
                id=b.item_id, status="in_progress", call_id=b.call_id, input="", name=name
            )
        else:
            b.item_id = new_id("fc_")
            item = w.FunctionCallItem(id=b.item_id, status="in_progress", arguments="", call_id=b.call_id, name=name)
        return head + self._frame(w.OutputItemAddedEvent(sequence_number=n(), output_index=oi, item=item))

    def _reasoning_delta(self, ev: ir.ReasoningDelta) -> bytes:
        b = self._blocks.get(ev.index)
        if b is None or not self._want or not ev.text:
            return b""
        b.parts.append(ev.text)
        head = b""
        if not b.summary_open:
            b.summary_open = True
            head = self._frame(
                w.ReasoningSummaryPartAddedEvent(
                    sequence_number=self._n(),
                    item_id=b.item_id,
                    output_index=b.oi,
                    summary_index=0,
                    part=w.SummaryText(text=""),
                )
            )
        return head + self._frame(
            w.ReasoningSummaryTextDeltaEvent(
                sequence_number=self._n(), item_id=b.item_id, output_index=b.oi, summary_index=0, delta=ev.text
            )
        )

    def _block_stop(self, b: _Block) -> bytes:
        n = self._n
        oi = b.oi
        iid = b.item_id
        text = "".join(b.parts)
        out = b""
        if b.kind == "text":
            part = w.OutputText(text=text)
            item: w.OutputItem = w.MessageItem(id=iid, status="completed", content=[part])
            out = (
                self._frame(w.OutputTextDoneEvent(sequence_number=n(), item_id=iid, output_index=oi, content_index=0, text=text))
                + self._frame(w.ContentPartDoneEvent(sequence_number=n(), item_id=iid, output_index=oi, content_index=0, part=part))
            )
        elif b.kind == "reasoning":
            summary: list[w.SummaryText] = []
            if b.summary_open:
                st = w.SummaryText(text=text)
                summary.append(st)
                out = self._frame(
                    w.ReasoningSummaryTextDoneEvent(sequence_number=n(), item_id=iid, output_index=oi, summary_index=0, text=text)
                ) + self._frame(
                    w.ReasoningSummaryPartDoneEvent(sequence_number=n(), item_id=iid, output_index=oi, summary_index=0, part=st)
                )
            sig = "".join(b.sig)
            enc = ir.wrap_signature(b.provider, sig, _NATIVE) if sig and b.provider else None
            item = w.ReasoningItem(id=iid, summary=summary, encrypted_content=enc)
        elif b.custom:
            inp = _custom_input(text)
            if inp:
                out = self._frame(w.CustomToolCallInputDeltaEvent(sequence_number=n(), item_id=iid, output_index=oi, delta=inp))
            out += self._frame(w.CustomToolCallInputDoneEvent(sequence_number=n(), item_id=iid, output_index=oi, input=inp))
            item = w.CustomToolCallItem(id=iid, status="completed", call_id=b.call_id, input=inp, name=b.name)
        else:
            if not text:
                # keep the streamed deltas equal to the final arguments
                text = "{}"
                out = self._frame(w.FunctionCallArgumentsDeltaEvent(sequence_number=n(), item_id=iid, output_index=oi, delta=text))
            out += self._frame(
                w.FunctionCallArgumentsDoneEvent(sequence_number=n(), item_id=iid, output_index=oi, arguments=text)
            )
            item = w.FunctionCallItem(id=iid, status="completed", arguments=text, call_id=b.call_id, name=b.name)
        self._items[oi] = item
        return out + self._frame(w.OutputItemDoneEvent(sequence_number=n(), output_index=oi, item=item))

    # ------------------------------------------------------------------ terminal

    def _done_items(self) -> list[w.OutputItem]:
        return [it for it in self._items if it is not None]

    def _end(self) -> bytes:
        out = b"" if self._started else self._begin()
        for idx in sorted(k for k, v in self._blocks.items() if v is not None):
            out += self._block_stop(self._blocks.pop(idx))  # type: ignore[arg-type]
        self._blocks.clear()
        self._finished = True
        status, incomplete = _status_for(self._reason)
        resp = self._response(status, self._done_items(), usage=_usage_out(self._usage), incomplete=incomplete)
        if status == "completed":
            return out + self._frame(w.ResponseCompletedEvent(sequence_number=self._n(), response=resp))
        return out + self._frame(w.ResponseIncompleteEvent(sequence_number=self._n(), response=resp))

    def _error(self, ev: ir.Error) -> bytes:
        out = b"" if self._started else self._begin()
        self._finished = True
        code = ev.code or _FAILED_CODE.get(ev.kind, "server_error")
        resp = self._response("failed", self._done_items(), error=w.ResponseError(code=code, message=ev.message))
        return out + self._frame(w.ResponseFailedEvent(sequence_number=self._n(), response=resp))


# =========================================================================== render_response


def render_response(resp: ir.Response, req: ir.Request, model: str, *, created_at: int = 0) -> bytes:
    """The non-stream ``/v1/responses`` body for a Responses client."""
    custom = {t.name for t in req.tools if t.kind == "custom"}
    want = req.want_reasoning
    output: list[w.OutputItem] = []
    for p in resp.content:
        if isinstance(p, ir.TextPart):
            output.append(w.MessageItem(id=new_id("msg_"), status="completed", content=[w.OutputText(text=p.text)]))
        elif isinstance(p, ir.ToolCallPart):
            if p.name in custom:
                output.append(
                    w.CustomToolCallItem(
                        id=new_id("ctc_"), status="completed", call_id=p.id, input=_custom_input(p.arguments), name=p.name
                    )
                )
            else:
                output.append(
                    w.FunctionCallItem(
                        id=new_id("fc_"), status="completed", arguments=p.arguments or "{}", call_id=p.id, name=p.name
                    )
                )
        elif isinstance(p, ir.ReasoningPart) and p.redacted is None:
            summary = [w.SummaryText(text=p.text)] if want and p.text else []
            enc = ir.wrap_signature(p.provider, p.signature, _NATIVE) if p.signature and p.provider else None
            output.append(w.ReasoningItem(id=new_id("rs_"), summary=summary, encrypted_content=enc))
    status, incomplete = _status_for(resp.stop_reason)
    obj = w.ResponseObject(
        id=_response_id(resp.id),
        created_at=created_at,
        status=status,
        model=model,
        output=output,
        usage=_usage_out(resp.usage),
        incomplete_details=incomplete,
        **_response_fields(req, custom),
    )
    return _ENC.encode(obj)
