"""The OpenAI Chat Completions dialect ("openai_chat"): both halves of the dialect contract (pure).

Client half: :func:`parse_request`, :class:`StreamEncoder`, :func:`render_response`,
:func:`render_error`, :func:`models_list`. Upstream half: :func:`render_request`,
:class:`StreamDecoder`, :func:`decode_response`, :func:`parse_error`, :func:`scan_usage`.
Rules: /work/shared/docs/translation.md §1.2, §1.3, §2-§7, §9.

May import: the standard library, msgspec, ``antiapi.errors``, ``antiapi.translate.*``,
``antiapi.wire.*``. No I/O, no clock (``created`` is injected; it defaults to 0).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

import msgspec

from antiapi.errors import KIND_STATUS, ErrorKind, GatewayError, InvalidRequest, UpstreamHTTPError, kind_for_status
from antiapi.translate import ir
from antiapi.translate.aggregate import merge_usage
from antiapi.translate.common import (
    EFFORTS,
    budget_to_effort,
    data_url,
    new_id,
    normalize_call_id,
    normalize_tool_name,
    restore,
    split_data_url,
)
from antiapi.wire import openai_chat as wire
from antiapi.wire.sse import SSEEvent

DIALECT = "openai_chat"

_decode = msgspec.json.decode
_encode = wire.encoder.encode

__all__ = [
    "StreamDecoder",
    "StreamEncoder",
    "decode_response",
    "models_list",
    "parse_error",
    "parse_request",
    "render_error",
    "render_request",
    "render_response",
    "scan_usage",
]

# =========================================================================== client half: request

_ROLES_MSG = "must be one of system, developer, user, assistant, tool"
_KNOWN_FIELDS = frozenset(
    {
        "model", "messages", "max_completion_tokens", "max_tokens", "temperature", "top_p", "stop", "n",
        "seed", "user", "metadata", "reasoning_effort", "response_format", "stream", "stream_options",
        "tools", "functions", "function_call", "tool_choice", "parallel_tool_calls",
    }
)  # fmt: skip


def _bad(path: str, what: str) -> InvalidRequest:
    return InvalidRequest(f"{path}: {what}", param=path)


def parse_request(body: bytes) -> ir.Request:
    """Decode and validate a Chat Completions request body into the IR.

    Raises:
        InvalidRequest: the body is not JSON or a field is wrong; the message names the JSON path.
    """
    try:
        d = _decode(body)
    except msgspec.DecodeError as e:
        raise InvalidRequest(f"body: not valid JSON ({e}); send a JSON object") from None
    if not isinstance(d, dict):
        raise InvalidRequest("body: expected a JSON object with model and messages")
    model = d.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("model", "required; send the model name as a non-empty string")
    msgs = d.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise _bad("messages", "required; send a non-empty list of messages")
    req = ir.Request(model=model, source=DIALECT)
    _parse_messages(msgs, req)

    max_out = _int(d, "max_completion_tokens", 1)
    legacy_max = _int(d, "max_tokens", 1)
    req.max_output_tokens = max_out if max_out is not None else legacy_max
    req.temperature = _num(d, "temperature")
    req.top_p = _num(d, "top_p")
    req.stop = _stop(d.get("stop"))
    req.n = _int(d, "n", 1)
    req.seed = _int(d, "seed")
    req.user = _str(d, "user")
    meta = d.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        raise _bad("metadata", "expected an object of string keys and values")
    req.metadata = meta
    effort = _str(d, "reasoning_effort")
    if effort is not None:
        if effort not in EFFORTS:
            raise _bad("reasoning_effort", f"must be one of {', '.join(EFFORTS)}")
        req.reasoning = ir.Reasoning(effort=effort, enabled=False if effort == "none" else None)
    req.response_format = _response_format(d.get("response_format"))
    req.stream = bool(_bool(d, "stream"))
    so = d.get("stream_options")
    if so is not None:
        if not isinstance(so, dict):
            raise _bad("stream_options", 'expected an object like {"include_usage": true}')
        iu = so.get("include_usage")
        if iu is not None and not isinstance(iu, bool):
            raise _bad("stream_options.include_usage", "expected true or false")
        req.include_usage = bool(iu)
    req.tools = _tools(d.get("tools"), "tools") + _tools(d.get("functions"), "functions", legacy=True)
    req.tool_choice = _tool_choice(d.get("tool_choice"), "tool_choice")
    if req.tool_choice is None and d.get("function_call") is not None:
        req.tool_choice = _tool_choice(d.get("function_call"), "function_call", legacy=True)
    ptc = d.get("parallel_tool_calls")
    if ptc is not None and not isinstance(ptc, bool):
        raise _bad("parallel_tool_calls", "expected true or false")
    req.parallel_tool_calls = ptc
    req.extras = {k: v for k, v in d.items() if k not in _KNOWN_FIELDS}
    return req


def _int(d: dict, key: str, minimum: int | None = None) -> int | None:
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, int) or isinstance(v, bool):
        raise _bad(key, "expected an integer")
    if minimum is not None and v < minimum:
        raise _bad(key, f"must be at least {minimum}")
    return v


def _num(d: dict, key: str) -> float | None:
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        raise _bad(key, "expected a number")
    return float(v)


def _str(d: dict, key: str, path: str | None = None) -> str | None:
    v = d.get(key)
    if v is None or isinstance(v, str):
        return v
    raise _bad(path or key, "expected a string")


def _bool(d: dict, key: str) -> bool | None:
    v = d.get(key)
    if v is None or isinstance(v, bool):
        return v
    raise _bad(key, "expected true or false")


def _stop(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [v] if v else []
    if isinstance(v, list):
        for i, s in enumerate(v):
            if not isinstance(s, str):
                raise _bad(f"stop[{i}]", "expected a string")
        return [s for s in v if s]
    raise _bad("stop", "expected a string or a list of up to 4 strings")


def _response_format(v: Any) -> ir.ResponseFormat | None:
    if v is None:
        return None
    if not isinstance(v, dict):
        raise _bad("response_format", 'expected an object like {"type": "json_object"}')
    t = v.get("type")
    if t == "text":
        return ir.ResponseFormat(type="text")
    if t == "json_object":
        return ir.ResponseFormat(type="json_object")
    if t == "json_schema":
        js = v.get("json_schema")
        if not isinstance(js, dict):
            raise _bad("response_format.json_schema", "required; an object with name and schema")
        name = _str(js, "name", "response_format.json_schema.name")
        schema = js.get("schema")
        if schema is not None and not isinstance(schema, dict):
            raise _bad("response_format.json_schema.schema", "expected a JSON schema object")
        strict = js.get("strict")
        if strict is not None and not isinstance(strict, bool):
            raise _bad("response_format.json_schema.strict", "expected true or false")
        return ir.ResponseFormat(type="json_schema", name=name, schema=schema, strict=strict)
    raise _bad("response_format.type", "must be one of text, json_object, json_schema")


def _tools(v: Any, path: str, legacy: bool = False) -> list[ir.Tool]:
    if v is None:
        return []
    if not isinstance(v, list):
        raise _bad(path, "expected a list of tools")
    out: list[ir.Tool] = []
    for i, t in enumerate(v):
        p = f"{path}[{i}]"
        if not isinstance(t, dict):
            raise _bad(p, 'expected {"type": "function", "function": {"name", "description", "parameters"}}')
        if legacy:
            fn, fp = t, p
        else:
            ttype = t.get("type", "function")
            if not isinstance(ttype, str):
                raise _bad(f"{p}.type", "expected a string such as function")
            if ttype != "function":
                inner = t.get(ttype)
                name = inner.get("name") if isinstance(inner, dict) else None
                out.append(
                    ir.Tool(name=name if isinstance(name, str) and name else ttype, kind="builtin", raw=t, dialect=DIALECT)
                )
                continue
            fn, fp = t.get("function"), f"{p}.function"
            if not isinstance(fn, dict):
                raise _bad(fp, "required; an object with name, description and parameters")
        name = fn.get("name")
        if not isinstance(name, str) or not name:
            raise _bad(f"{fp}.name", "required; a non-empty string")
        desc = _str(fn, "description", f"{fp}.description")
        params = fn.get("parameters")
        if params is not None and not isinstance(params, dict):
            raise _bad(f"{fp}.parameters", "expected a JSON schema object")
        strict = fn.get("strict")
        if strict is not None and not isinstance(strict, bool):
            raise _bad(f"{fp}.strict", "expected true or false")
        tool = ir.Tool(name=name, description=desc, strict=strict)
        if params:
            tool.parameters = params
        out.append(tool)
    return out


def _tool_choice(v: Any, path: str, legacy: bool = False) -> ir.ToolChoice | None:
    if v is None:
        return None
    if isinstance(v, str):
        if v in ("auto", "none") or (v == "required" and not legacy):
            return ir.ToolChoice(mode=v)  # type: ignore[arg-type]
        raise _bad(path, "must be auto, none, required or {type: function, function: {name}}")
    if isinstance(v, dict):
        if legacy:
            name = v.get("name")
        else:
            t = v.get("type")
            if t == "allowed_tools":
                at = v.get("allowed_tools")
                mode = at.get("mode") if isinstance(at, dict) else None
                return ir.ToolChoice(mode="required" if mode == "required" else "auto")
            fn = v.get("function")
            name = fn.get("name") if isinstance(fn, dict) else None
            if t not in (None, "function"):
                raise _bad(f"{path}.type", "must be function")
        if isinstance(name, str) and name:
            return ir.ToolChoice(mode="tool", name=name)
        raise _bad(f"{path}.name" if legacy else f"{path}.function.name", "required; the name of a declared tool")
    raise _bad(path, "expected a string or an object")


# ----------------------------------------------------------------------------- messages


def _parse_messages(msgs: list, req: ir.Request) -> None:
    out: list[ir.Message] = []
    leading = True
    call_names: dict[str, str] = {}  # call id -> function name (fills ToolResultPart.name)
    legacy_ids: dict[str, str] = {}  # legacy function name -> id minted for its last call
    for i, m in enumerate(msgs):
        p = f"messages[{i}]"
        if not isinstance(m, dict):
            raise _bad(p, "expected an object with role and content")
        role = m.get("role")
        if role in ("system", "developer"):
            parts = _system_parts(m.get("content"), f"{p}.content")
            if leading:
                req.system.extend(parts)
            else:
                _append(out, "system", parts)
            continue
        leading = False
        if role == "user":
            _append(out, "user", _user_parts(m.get("content"), f"{p}.content"))
        elif role == "assistant":
            _append(out, "assistant", _assistant_parts(m, p, i, call_names, legacy_ids))
        elif role == "tool" or role == "function":
            _append_result(out, _tool_result(m, p, call_names, legacy_ids))
        else:
            raise _bad(f"{p}.role", _ROLES_MSG)
    req.messages = out


def _append(out: list[ir.Message], role: str, parts: list[ir.Part]) -> None:
    if not parts:
        return
    if out and out[-1].role == role:
        out[-1].content.extend(parts)
    else:
        out.append(ir.Message(role=role, content=parts))  # type: ignore[arg-type]


def _append_result(out: list[ir.Message], part: ir.ToolResultPart) -> None:
    """Consecutive tool messages -> ONE user message; results stay ahead of any user text."""
    if out and out[-1].role == "user":
        content = out[-1].content
        at = 0
        while at < len(content) and isinstance(content[at], ir.ToolResultPart):
            at += 1
        content.insert(at, part)
    else:
        out.append(ir.Message(role="user", content=[part]))


def _system_parts(c: Any, path: str) -> list[ir.Part]:
    if c is None:
        return []
    if isinstance(c, str):
        return [ir.TextPart(text=c)] if c else []
    if isinstance(c, list):
        parts: list[ir.Part] = []
        for j, part in enumerate(c):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise _bad(f"{path}[{j}]", 'system messages accept only text parts ({"type": "text", "text": "..."})')
            if part["text"]:
                parts.append(ir.TextPart(text=part["text"]))
        return parts
    raise _bad(path, "expected a string or a list of text parts")


def _user_parts(c: Any, path: str) -> list[ir.Part]:
    if c is None:
        return []
    if isinstance(c, str):
        return [ir.TextPart(text=c)] if c else []
    if isinstance(c, list):
        parts: list[ir.Part] = []
        for j, part in enumerate(c):
            got = _content_part(part, f"{path}[{j}]")
            if got is not None:
                parts.append(got)
        return parts
    raise _bad(path, "expected a string or a list of content parts")


def _content_part(part: Any, path: str) -> ir.Part | None:
    if not isinstance(part, dict):
        raise _bad(path, 'expected a content part object such as {"type": "text", "text": "..."}')
    t = part.get("type")
    if t == "text" or t == "refusal":
        key = "text" if t == "text" else "refusal"
        text = part.get(key)
        if not isinstance(text, str):
            raise _bad(f"{path}.{key}", "expected a string")
        return ir.TextPart(text=text) if text else None
    if t == "image_url":
        iu = part.get("image_url")
        detail = None
        if isinstance(iu, dict):
            url = iu.get("url")
            det = iu.get("detail")
            detail = det if isinstance(det, str) else None
        else:
            url = iu
        if not isinstance(url, str) or not url:
            raise _bad(f"{path}.image_url", 'expected {"url": "https://... or data:image/png;base64,..."}')
        if url.startswith("data:"):
            split = split_data_url(url)
            if split is None:
                raise _bad(f"{path}.image_url.url", "not a valid data URL (data:<media type>;base64,<data>)")
            return ir.ImagePart(data=split[1], media_type=split[0], detail=detail)
        return ir.ImagePart(url=url, detail=detail)
    if t == "file":
        f = part.get("file")
        if not isinstance(f, dict):
            raise _bad(f"{path}.file", "expected an object with file_data (a data URL) or file_id")
        fname = f.get("filename") if isinstance(f.get("filename"), str) else None
        fd = f.get("file_data")
        if isinstance(fd, str) and fd:
            split = split_data_url(fd) if fd.startswith("data:") else None
            if split is not None:
                media, data = split
            else:
                media, data = _guess_media(fname), fd
            return ir.DocumentPart(data=data, media_type=media or _guess_media(fname), filename=fname)
        return ir.RawPart(dialect=DIALECT, data=part)  # file_id: only meaningful to OpenAI
    if not isinstance(t, str):
        raise _bad(f"{path}.type", "required; one of text, image_url, file, input_audio")
    return ir.RawPart(dialect=DIALECT, data=part)  # input_audio and future types


def _guess_media(filename: str | None) -> str:
    if filename:
        low = filename.lower()
        if low.endswith((".txt", ".md")):
            return "text/plain"
    return "application/pdf"


def _assistant_parts(m: dict, p: str, i: int, call_names: dict[str, str], legacy_ids: dict[str, str]) -> list[ir.Part]:
    parts: list[ir.Part] = []
    c = m.get("content")
    if isinstance(c, str):
        if c:
            parts.append(ir.TextPart(text=c))
    elif isinstance(c, list):
        for j, part in enumerate(c):
            got = _content_part(part, f"{p}.content[{j}]")
            if got is not None:
                parts.append(got)
    elif c is not None:
        raise _bad(f"{p}.content", "expected a string, a list of content parts, or null")
    # reasoning_content (DeepSeek-style echo) is dropped: no signature, not replayable elsewhere.
    tcs = m.get("tool_calls")
    if tcs is not None:
        if not isinstance(tcs, list):
            raise _bad(f"{p}.tool_calls", "expected a list of tool calls")
        for k, tc in enumerate(tcs):
            tp = f"{p}.tool_calls[{k}]"
            if not isinstance(tc, dict):
                raise _bad(tp, 'expected {"id", "type": "function", "function": {"name", "arguments"}}')
            ttype = tc.get("type", "function")
            if ttype == "custom" and isinstance(tc.get("custom"), dict):
                fn = tc["custom"]
                fp = f"{tp}.custom"
                raw_in = fn.get("input")
                args: Any = _encode({"input": raw_in if isinstance(raw_in, str) else ""}).decode()
            else:
                fn = tc.get("function")
                fp = f"{tp}.function"
                if not isinstance(fn, dict):
                    raise _bad(fp, "required; an object with name and arguments")
                args = fn.get("arguments")
            name = fn.get("name")
            if not isinstance(name, str) or not name:
                raise _bad(f"{fp}.name", "required; a non-empty string")
            cid = tc.get("id")
            if not isinstance(cid, str) or not cid:
                cid = f"call_{i}_{k}"
            call_names[cid] = name
            parts.append(ir.ToolCallPart(id=cid, name=name, arguments=_args_text(args, f"{fp}.arguments")))
    fc = m.get("function_call")
    if fc is not None:
        if not isinstance(fc, dict) or not isinstance(fc.get("name"), str) or not fc["name"]:
            raise _bad(f"{p}.function_call", "expected {name, arguments}")
        cid = f"call_fn_{i}"
        legacy_ids[fc["name"]] = cid
        call_names[cid] = fc["name"]
        args_text = _args_text(fc.get("arguments"), f"{p}.function_call.arguments")
        parts.append(ir.ToolCallPart(id=cid, name=fc["name"], arguments=args_text))
    return parts


def _args_text(args: Any, path: str) -> str:
    if args is None or args == "":
        return "{}"
    if isinstance(args, str):
        return args
    if isinstance(args, dict):
        return _encode(args).decode()
    raise _bad(path, "expected the arguments as a JSON text string")


def _tool_result(m: dict, p: str, call_names: dict[str, str], legacy_ids: dict[str, str]) -> ir.ToolResultPart:
    if m.get("role") == "tool":
        cid = m.get("tool_call_id")
        if not isinstance(cid, str) or not cid:
            raise _bad(f"{p}.tool_call_id", "required; the id of the assistant tool call this message answers")
        nm = m.get("name")
        name = call_names.get(cid) or (nm if isinstance(nm, str) and nm else None)
    else:
        name = m.get("name")
        if not isinstance(name, str) or not name:
            raise _bad(f"{p}.name", "required for role function; the function's name")
        cid = legacy_ids.get(name) or f"call_fn_{name}"
    c = m.get("content")
    content: list[ir.TextPart | ir.ImagePart] = []
    if isinstance(c, str):
        if c:
            content.append(ir.TextPart(text=c))
    elif isinstance(c, list):
        for j, part in enumerate(c):
            got = _content_part(part, f"{p}.content[{j}]")
            if isinstance(got, (ir.TextPart, ir.ImagePart)):
                content.append(got)
            elif got is not None:
                raise _bad(f"{p}.content[{j}]", "tool messages accept text (and image) parts only")
    elif c is not None:
        raise _bad(f"{p}.content", "expected a string or a list of text parts")
    return ir.ToolResultPart(call_id=cid, content=content, name=name)


# =========================================================================== client half: output

_FINISH_OUT = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "stop",
    "context_exceeded": "length",
    "error": "stop",
}


def _finish_reason(reason: str, had_tools: bool) -> str:
    if had_tools:
        return "tool_calls"
    fr = _FINISH_OUT.get(reason, "stop")
    return "stop" if fr == "tool_calls" else fr


def _usage_obj(u: ir.Usage) -> dict:
    prompt = u.prompt_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": u.output_tokens,
        "total_tokens": prompt + u.output_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    }


def _chat_id(upstream_id: str | None) -> str:
    if not upstream_id:
        return new_id("chatcmpl-")
    return upstream_id if upstream_id.startswith("chatcmpl") else "chatcmpl-" + upstream_id



class StreamEncoder:
    """IR events -> Chat Completions chunk frames (``data: {json}\\n\\n``) for a Chat client.

    The finish chunk goes out at ``Finish``; the usage chunk (only if the client asked with
    ``stream_options.include_usage``) and ``data: [DONE]`` at ``End`` so that usage arriving
    after ``Finish`` is still reported. An ``Error`` ends the stream with ``data: {"error":...}``
    and no ``[DONE]``.
    """

    __slots__ = (
        "_model", "_created", "_want_reasoning", "_include_usage", "_pre", "_tools", "_usage", "_finished", "_closed",
    )  # fmt: skip

    def __init__(self, req: ir.Request, model: str, *, created: int = 0) -> None:
        self._model = model
        self._created = created
        self._want_reasoning = req.want_reasoning
        self._include_usage = req.include_usage
        self._pre: bytes | None = None
        self._tools: dict[int, int] = {}  # IR block index -> Chat tool_calls index
        self._usage = ir.Usage()
        self._finished = False
        self._closed = False

    def _begin(self, upstream_id: str | None = None) -> bytes:
        self._pre = (
            b'data: {"id":' + _encode(_chat_id(upstream_id)) + b',"object":"chat.completion.chunk","created":'
            + str(int(self._created)).encode() + b',"model":' + _encode(self._model) + b',"choices":'
        )  # fmt: skip
        return self._delta({"role": "assistant", "content": ""})

    def _delta(self, delta: dict, finish: str | None = None) -> bytes:
        assert self._pre is not None
        fin = b"null" if finish is None else b'"' + finish.encode() + b'"'
        return self._pre + b'[{"index":0,"delta":' + _encode(delta) + b',"logprobs":null,"finish_reason":' + fin + b"}]}\n\n"

    def feed(self, ev: ir.Event) -> bytes:
        if self._closed:
            return b""
        if self._pre is None:
            if isinstance(ev, ir.Start):
                if ev.usage:
                    merge_usage(self._usage, ev.usage)
                return self._begin(ev.id)
            if not isinstance(ev, (ir.Error, ir.UsageEvent)):
                return self._begin() + self._event(ev)
        return self._event(ev)

    def _event(self, ev: ir.Event) -> bytes:
        if isinstance(ev, ir.TextDelta):
            return self._delta({"content": ev.text}) if ev.text else b""
        if isinstance(ev, ir.ArgsDelta):
            k = self._tools.get(ev.index)
            if k is None or not ev.json:
                return b""
            return self._delta({"tool_calls": [{"index": k, "function": {"arguments": ev.json}}]})
        if isinstance(ev, ir.ReasoningDelta):
            return self._delta({"reasoning_content": ev.text}) if self._want_reasoning and ev.text else b""
        if isinstance(ev, ir.BlockStart):
            if ev.kind != "tool_call":
                return b""
            k = self._tools[ev.index] = len(self._tools)
            fn = {"name": ev.name or f"tool_{k}", "arguments": ""}
            return self._delta({"tool_calls": [{"index": k, "id": ev.id or new_id("call_"), "type": "function", "function": fn}]})
        if isinstance(ev, ir.UsageEvent):
            merge_usage(self._usage, ev.usage)
            return b""
        if isinstance(ev, ir.Finish):
            if self._finished:
                return b""
            self._finished = True
            return self._delta({}, _finish_reason(ev.reason, bool(self._tools)))
        if isinstance(ev, ir.End):
            self._closed = True
            out = b""
            if not self._finished:
                self._finished = True
                out = self._delta({}, "tool_calls" if self._tools else "stop")
            if self._include_usage:
                assert self._pre is not None
                out += self._pre + b'[],"usage":' + _encode(_usage_obj(self._usage)) + b"}\n\n"
            return out + b"data: [DONE]\n\n"
        if isinstance(ev, ir.Error):
            self._closed = True
            typ, code = _error_type(_kind(ev.kind), ev.code)
            err = {"error": {"message": ev.message, "type": typ, "param": None, "code": code}}
            return b"data: " + _encode(err) + b"\n\n"
        if isinstance(ev, ir.Start) and ev.usage:
            merge_usage(self._usage, ev.usage)  # a late Start
        return b""  # SignatureDelta, BlockStop


def render_response(resp: ir.Response, req: ir.Request, model: str, *, created: int = 0) -> bytes:
    """The non-stream ``chat.completion`` body for a Chat client."""
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[dict] = []
    for p in resp.content:
        if isinstance(p, ir.TextPart):
            texts.append(p.text)
        elif isinstance(p, ir.ReasoningPart):
            if p.text and p.redacted is None:
                reasoning.append(p.text)
        elif isinstance(p, ir.ToolCallPart):
            calls.append({"id": p.id, "type": "function", "function": {"name": p.name, "arguments": p.arguments or "{}"}})
    msg: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else (None if calls else "")}
    if calls:
        msg["tool_calls"] = calls
    if reasoning and req.want_reasoning:
        msg["reasoning_content"] = "".join(reasoning)
    msg["refusal"] = None
    body = {
        "id": _chat_id(resp.id),
        "object": "chat.completion",
        "created": int(created),
        "model": model,
        "choices": [
            {"index": 0, "message": msg, "logprobs": None, "finish_reason": _finish_reason(resp.stop_reason, bool(calls))}
        ],
        "usage": _usage_obj(resp.usage),
    }
    return _encode(body)


_KIND_TYPE: dict[ErrorKind, tuple[str, str | None]] = {
    ErrorKind.INVALID_REQUEST: ("invalid_request_error", None),
    ErrorKind.AUTHENTICATION: ("authentication_error", "invalid_api_key"),
    ErrorKind.PERMISSION: ("permission_error", "permission_denied"),
    ErrorKind.NOT_FOUND: ("not_found_error", None),
    ErrorKind.REQUEST_TOO_LARGE: ("invalid_request_error", "request_too_large"),
    ErrorKind.RATE_LIMIT: ("rate_limit_error", "rate_limit_exceeded"),
    ErrorKind.BILLING: ("insufficient_quota", "insufficient_quota"),
    ErrorKind.TIMEOUT: ("timeout_error", "timeout"),
    ErrorKind.OVERLOADED: ("server_error", "service_unavailable"),
    ErrorKind.API_ERROR: ("server_error", None),
}


def _kind(value: str) -> ErrorKind:
    try:
        return ErrorKind(value)
    except ValueError:
        return ErrorKind.API_ERROR


def _error_type(kind: ErrorKind, code: str | None, param: str | None = None) -> tuple[str, str | None]:
    typ, default = _KIND_TYPE.get(kind, ("server_error", None))
    if code is None and kind is ErrorKind.NOT_FOUND and param == "model":
        default = "model_not_found"
    return typ, code or default


def render_error(err: GatewayError) -> bytes:
    """``{"error": {"message", "type", "param", "code"}}`` (the HTTP status is ``err.status``)."""
    typ, code = _error_type(err.kind, err.code, err.param)
    return _encode(wire.ErrorBody(error=wire.ErrorDetail(message=err.message, type=typ, param=err.param, code=code)))


def models_list(ids: list[str]) -> bytes:
    """``GET /v1/models`` body in OpenAI's shape."""
    return _encode(wire.ModelsList(data=[wire.ModelInfo(id=i) for i in ids]))


# =========================================================================== upstream half: request

_BILLING_HEADER = "x-anthropic-billing-header:"


def _strip_billing(text: str) -> str:
    if _BILLING_HEADER not in text:
        return text
    return "\n".join(ln for ln in text.split("\n") if not ln.lstrip().startswith(_BILLING_HEADER)).strip("\n")


def render_request(req: ir.Request, target: ir.Target) -> ir.Outgoing:
    """The Chat Completions upstream body for ``req`` (usually from an Anthropic/Responses client)."""
    names: dict[str, str] = {}
    ids: dict[str, str] = {}
    messages: list[dict] = []
    sys_texts = [t for t in (_strip_billing(p.text) for p in req.system) if t]
    if sys_texts:
        messages.append({"role": "system", "content": "\n\n".join(sys_texts)})
    for m in req.messages:
        if m.role == "system":
            text = "\n\n".join(p.text for p in m.content if isinstance(p, ir.TextPart) and p.text)
            if text:
                messages.append({"role": "system", "content": text})
        elif m.role == "assistant":
            msg = _render_assistant(m, names, ids)
            if msg is not None:
                messages.append(msg)
        else:
            _render_user(m, target, names, ids, messages)

    body: dict[str, Any] = {"model": target.model, "messages": messages}
    tools = [t for t in (_render_tool(t, names) for t in req.tools) if t is not None]
    if tools:
        body["tools"] = tools
        tc = req.tool_choice
        if tc is not None:
            if tc.mode == "tool" and tc.name:
                body["tool_choice"] = {"type": "function", "function": {"name": normalize_tool_name(tc.name, names)}}
            elif tc.mode != "tool":
                body["tool_choice"] = tc.mode
        if req.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = req.parallel_tool_calls
    if req.max_output_tokens is not None:
        body["max_completion_tokens" if target.reasoning_model else "max_tokens"] = req.max_output_tokens
    if not target.reasoning_model:
        # OpenAI reasoning models reject non-default sampling parameters.
        if req.temperature is not None:
            body["temperature"] = req.temperature
        if req.top_p is not None:
            body["top_p"] = req.top_p
    if req.stop:
        body["stop"] = req.stop[:4]
    effort = _effort(req.reasoning) if target.reasoning_model else None
    if effort is not None:
        body["reasoning_effort"] = effort
    rf = req.response_format
    if rf is not None and rf.type != "text":
        if rf.type == "json_object":
            body["response_format"] = {"type": "json_object"}
        else:
            js: dict[str, Any] = {"name": rf.name or "response", "schema": rf.schema or {"type": "object"}}
            if rf.strict is not None:
                js["strict"] = rf.strict
            body["response_format"] = {"type": "json_schema", "json_schema": js}
    if req.user:
        body["user"] = req.user
    if req.n is not None:
        body["n"] = req.n
    if req.seed is not None:
        body["seed"] = req.seed
    if req.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    if req.source == DIALECT:
        if req.metadata is not None:
            body["metadata"] = req.metadata
        for k, v in req.extras.items():
            body.setdefault(k, v)
    return ir.Outgoing(body=body, stream=req.stream, tool_names=names, call_ids=ids)


def _effort(r: ir.Reasoning | None) -> str | None:
    if r is None:
        return None
    if r.effort:
        return r.effort
    if r.budget_tokens is not None:
        return budget_to_effort(r.budget_tokens)
    if r.enabled is False:
        return None
    if r.enabled or r.adaptive:
        return budget_to_effort(None)
    return None


def _render_assistant(m: ir.Message, names: dict[str, str], ids: dict[str, str]) -> dict | None:
    texts: list[str] = []
    raws: list[dict] = []
    calls: list[dict] = []
    for p in m.content:
        if isinstance(p, ir.TextPart):
            if p.text:
                texts.append(p.text)
        elif isinstance(p, ir.ToolCallPart):
            calls.append(
                {
                    "id": normalize_call_id(p.id, ids),
                    "type": "function",
                    "function": {"name": normalize_tool_name(p.name, names), "arguments": p.arguments or "{}"},
                }
            )
        elif isinstance(p, ir.RawPart) and p.dialect == DIALECT:
            raws.append(p.data)
        # ReasoningPart: dropped (no Chat upstream can verify foreign reasoning); images/documents
        # cannot be sent as assistant content.
    if not texts and not calls and not raws:
        return None
    content: Any
    if raws:
        content = [{"type": "text", "text": t} for t in texts] + raws
    else:
        content = "".join(texts) if texts else None
    msg: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        msg["tool_calls"] = calls
    return msg


def _render_user(m: ir.Message, target: ir.Target, names: dict[str, str], ids: dict[str, str], messages: list[dict]) -> None:
    carried: list[dict] = []  # images taken out of tool results
    rest: list[dict] = []
    for p in m.content:
        if isinstance(p, ir.ToolResultPart):
            texts = [c.text for c in p.content if isinstance(c, ir.TextPart)]
            images = [_image_part(c) for c in p.content if isinstance(c, ir.ImagePart)]
            text = "\n".join(texts)
            if p.is_error:
                text = "Error: " + text if text else "Error"
            content: Any = text
            if images and target.images_in_tool_results:
                content = ([{"type": "text", "text": text}] if text else []) + images
            elif images:
                carried.extend(images)
            messages.append({"role": "tool", "tool_call_id": normalize_call_id(p.call_id, ids), "content": content})
        else:
            part = _user_part(p)
            if part is not None:
                rest.append(part)
    parts = carried + rest
    if not parts:
        return
    if all(x["type"] == "text" for x in parts):
        messages.append({"role": "user", "content": "\n\n".join(x["text"] for x in parts)})
    else:
        messages.append({"role": "user", "content": parts})


def _image_part(p: ir.ImagePart) -> dict:
    url = p.url if p.url else data_url(p.media_type or "image/png", p.data or "")
    iu: dict[str, Any] = {"url": url}
    if p.detail:
        iu["detail"] = p.detail
    return {"type": "image_url", "image_url": iu}


def _user_part(p: ir.Part) -> dict | None:
    if isinstance(p, ir.TextPart):
        return {"type": "text", "text": p.text} if p.text else None
    if isinstance(p, ir.ImagePart):
        return _image_part(p)
    if isinstance(p, ir.DocumentPart):
        return _document_part(p)
    if isinstance(p, ir.RawPart) and p.dialect == DIALECT:
        return p.data
    return None  # reasoning, stray tool calls, foreign raw blocks


def _document_part(p: ir.DocumentPart) -> dict | None:
    media = p.media_type or "application/pdf"
    if p.data and media.startswith("text/"):
        try:
            text = base64.b64decode(p.data, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            text = None
        if text is not None:
            head = f"[document: {p.filename}]\n" if p.filename else ""
            return {"type": "text", "text": head + text}
    if p.data:
        return {"type": "file", "file": {"filename": p.filename or "document.pdf", "file_data": data_url(media, p.data)}}
    if p.url:
        return {"type": "text", "text": f"[document: {p.url}]"}
    return None


def _render_tool(t: ir.Tool, names: dict[str, str]) -> dict | None:
    if t.kind == "builtin":
        return dict(t.raw) if t.dialect == DIALECT and t.raw else None
    if t.kind == "custom":
        params: dict = {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]}
    else:
        params = _object_schema(t.parameters)
    fn: dict[str, Any] = {"name": normalize_tool_name(t.name, names)}
    if t.description:
        fn["description"] = t.description
    fn["parameters"] = params
    if t.strict is not None:
        fn["strict"] = t.strict
    return {"type": "function", "function": fn}


def _object_schema(schema: dict | None) -> dict:
    if not schema:
        return {"type": "object", "properties": {}}
    if schema.get("type") == "object" and "properties" not in schema:
        return {**schema, "properties": {}}
    return schema


# =========================================================================== upstream half: responses

_FINISH_IN: dict[str, ir.StopReason] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def _ir_usage(u: wire.ChatUsage) -> ir.Usage:
    prompt = int(u.prompt_tokens or 0)
    d = u.prompt_tokens_details
    cached = int((d.cached_tokens if d is not None else None) or u.prompt_cache_hit_tokens or 0)
    cd = u.completion_tokens_details
    return ir.Usage(
        input_tokens=max(0, prompt - cached),
        output_tokens=int(u.completion_tokens or 0),
        cache_read_tokens=cached,
        reasoning_tokens=int((cd.reasoning_tokens if cd is not None else None) or 0),
    )


class _Tool:
    __slots__ = ("index", "id", "name", "block", "buf", "closed")

    def __init__(self, index: int) -> None:
        self.index = index  # the Chat tool_calls index (names a call whose name never came)
        self.id: str | None = None
        self.name: str | None = None
        self.block: int | None = None
        self.buf: list[str] = []
        self.closed = False


class StreamDecoder:
    """Chat Completions SSE events -> IR events (see ``ir`` for the grammar).

    Tool calls are keyed by their Chat ``index`` (several may be open and interleave); a tool's
    block starts once both its id and a non-empty name are known, arguments seen earlier are
    buffered. ``finish_reason`` closes every block and emits ``Finish``; usage on any chunk
    (including ``choices: []``) becomes a ``UsageEvent``; ``[DONE]`` ends the stream.
    """

    __slots__ = (
        "_names", "_ids", "_started", "_next", "_text", "_reasoning", "_tools", "_by_index", "_any_tool", "_refusal",
        "_finished", "_done",
    )  # fmt: skip

    def __init__(self, out: ir.Outgoing) -> None:
        self._names = out.tool_names
        self._ids = out.call_ids
        self._started = False
        self._next = 0
        self._text: int | None = None
        self._reasoning: int | None = None
        self._tools: list[_Tool] = []  # in order of first appearance
        self._by_index: dict[int, _Tool] = {}  # Chat tool_calls index -> latest call with it
        self._any_tool = False
        self._refusal = False
        self._finished = False
        self._done = False

    # ------------------------------------------------------------------ feed / finish

    def feed(self, ev: SSEEvent) -> list[ir.Event]:
        if self._done:
            return []
        data = ev.data
        if not data or data.isspace():
            return []
        if data[0] == "[" and data.strip() == "[DONE]":
            return self._complete()
        try:
            chunk = wire.chunk_decoder.decode(data)
        except msgspec.DecodeError:
            if ev.event == "error":
                return self._fail([], _error_event(data))
            return self._fail([], ir.Error(kind="api_error", message=f"openai: unreadable stream chunk: {data[:300]}"))
        if chunk.error is not None or ev.event == "error":
            return self._fail([], _error_event(chunk.error if chunk.error is not None else _decode(data)))
        out: list[ir.Event] = []
        choices = chunk.choices
        if not self._started:
            if not choices and chunk.usage is None and not chunk.id:
                return out  # Azure/Copilot prelude (prompt_filter_results only)
            self._started = True
            out.append(ir.Start(id=chunk.id or None, model=chunk.model or None))
        if choices:
            for ch in choices:
                if ch.index == 0:
                    self._choice(ch, out)
                    break
        if chunk.usage is not None:
            out.append(ir.UsageEvent(usage=_ir_usage(chunk.usage)))
        return out

    def finish(self) -> list[ir.Event]:
        """Upstream EOF: ``End`` if a finish_reason was seen (some servers omit ``[DONE]``),
        otherwise close what is open and report an ``api_error``."""
        if self._done:
            return []
        self._done = True
        if self._finished:
            return [ir.End()]
        out: list[ir.Event] = []
        self._close_started(out)
        out.append(ir.Error(kind="api_error", message="upstream stream ended before completion"))
        return out

    # ------------------------------------------------------------------ internals

    def _complete(self) -> list[ir.Event]:
        out: list[ir.Event] = []
        if not self._started:
            self._started = True
            out.append(ir.Start())
        if not self._finished:
            self._finish("stop", out)
        out.append(ir.End())
        self._done = True
        return out

    def _fail(self, out: list[ir.Event], err: ir.Error) -> list[ir.Event]:
        self._close_started(out)
        out.append(err)
        self._done = True
        return out

    def _choice(self, ch: wire.ChunkChoice, out: list[ir.Event]) -> None:
        if self._finished:
            return  # e.g. Azure's content-filter chunk after the finish chunk
        d = ch.delta
        if d is not None:
            rc = d.reasoning_content or d.reasoning
            if rc:
                self._reason(rc, out)
            c = d.content
            if c:
                if isinstance(c, str):
                    self._say(c, out)
                else:
                    self._content_list(c, out)
            if d.refusal:
                self._refusal = True
                self._say(d.refusal, out)
            if d.tool_calls:
                for tc in d.tool_calls:
                    self._tool(tc, out)
            if d.function_call is not None:
                self._tool(wire.ToolCallDelta(index=0, function=d.function_call), out)
        if ch.finish_reason:
            self._finish(ch.finish_reason, out)

    def _content_list(self, parts: list, out: list[ir.Event]) -> None:
        """Mistral-style content lists: text parts and ``thinking`` parts."""
        for p in parts:
            if not isinstance(p, dict):
                continue
            t = p.get("type")
            if t == "text" and isinstance(p.get("text"), str) and p["text"]:
                self._say(p["text"], out)
            elif t == "thinking":
                th = p.get("thinking")
                if isinstance(th, str) and th:
                    self._reason(th, out)
                elif isinstance(th, list):
                    for q in th:
                        if isinstance(q, dict) and isinstance(q.get("text"), str) and q["text"]:
                            self._reason(q["text"], out)

    def _reason(self, text: str, out: list[ir.Event]) -> None:
        if self._reasoning is None:
            if self._text is not None:
                out.append(ir.BlockStop(index=self._text))
                self._text = None
            self._reasoning = self._next
            self._next += 1
            out.append(ir.BlockStart(index=self._reasoning, kind="reasoning"))
        out.append(ir.ReasoningDelta(index=self._reasoning, text=text))

    def _say(self, text: str, out: list[ir.Event]) -> None:
        if self._text is None:
            if self._reasoning is not None:
                out.append(ir.BlockStop(index=self._reasoning))
                self._reasoning = None
            self._text = self._next
            self._next += 1
            out.append(ir.BlockStart(index=self._text, kind="text"))
        out.append(ir.TextDelta(index=self._text, text=text))

    def _tool(self, tc: wire.ToolCallDelta, out: list[ir.Event]) -> None:
        fn = tc.function
        idx = tc.index
        st: _Tool | None
        if idx is not None:
            st = self._by_index.get(idx)
            if st is not None and tc.id and st.id and tc.id != st.id:
                st = None  # a server that numbers every parallel call 0: a new id is a new call
        else:
            # Servers without `index` (Gemini's OpenAI surface) send each call whole.
            st = next((s for s in self._tools if tc.id and s.id == tc.id), None)
            if st is None and not tc.id and not (fn is not None and fn.name) and self._tools:
                st = self._tools[-1]  # a continuation fragment
            idx = st.index if st is not None else len(self._tools)
        if st is None:
            st = _Tool(idx)
            self._tools.append(st)
            self._by_index[idx] = st
        if tc.id and not st.id:
            st.id = tc.id
        if fn is not None:
            if fn.name and not st.name:
                st.name = fn.name
            a = fn.arguments
            if a is not None and not isinstance(a, str):
                a = _encode(a).decode()
            if a:
                if st.block is not None:
                    out.append(ir.ArgsDelta(index=st.block, json=a))
                else:
                    st.buf.append(a)
        if st.block is None and st.id and st.name:
            self._start_tool(st, out)

    def _start_tool(self, st: _Tool, out: list[ir.Event]) -> None:
        self._close_prose(out)
        st.block = self._next
        self._next += 1
        self._any_tool = True
        out.append(
            ir.BlockStart(
                index=st.block,
                kind="tool_call",
                id=restore(st.id or "", self._ids),
                name=restore(st.name or "", self._names),
            )
        )
        if st.buf:
            out.append(ir.ArgsDelta(index=st.block, json="".join(st.buf)))
            st.buf = []

    def _close_prose(self, out: list[ir.Event]) -> None:
        if self._text is not None:
            out.append(ir.BlockStop(index=self._text))
            self._text = None
        if self._reasoning is not None:
            out.append(ir.BlockStop(index=self._reasoning))
            self._reasoning = None

    def _close_started(self, out: list[ir.Event]) -> None:
        self._close_prose(out)
        for st in sorted(self._tools, key=lambda s: -1 if s.block is None else s.block):
            if st.block is not None and not st.closed:
                st.closed = True
                out.append(ir.BlockStop(index=st.block))

    def _finish(self, reason: str, out: list[ir.Event]) -> None:
        self._close_prose(out)
        for st in self._tools:
            if st.block is None and (st.name or st.id or st.buf):
                # belated start: the name (or id) never arrived
                st.name = st.name or f"tool_{st.index}"
                st.id = st.id or new_id("call_")
                self._start_tool(st, out)
        self._close_started(out)
        r: ir.StopReason = _FINISH_IN.get(reason, "end_turn")
        if self._any_tool:
            r = "tool_use"
        elif r == "tool_use":
            r = "end_turn"
        elif r == "end_turn" and self._refusal:
            r = "refusal"
        out.append(ir.Finish(reason=r))
        self._finished = True


def decode_response(body: bytes, out: ir.Outgoing) -> list[ir.Event]:
    """A non-stream ``chat.completion`` body -> the event sequence a stream would give."""
    try:
        c = wire.completion_decoder.decode(body)
    except msgspec.DecodeError as e:
        return [ir.Error(kind="api_error", message=f"openai: unreadable response body ({e}): {body[:300]!r}")]
    if c.error is not None:
        return [_error_event(c.error)]
    dec = StreamDecoder(out)
    dec._started = True
    events: list[ir.Event] = [ir.Start(id=c.id or None, model=c.model or None)]
    choice = next((ch for ch in c.choices or () if ch.index == 0), None)
    if choice is not None and choice.message is not None:
        m = choice.message
        calls = [
            wire.ToolCallDelta(
                index=k, id=tc.id, function=wire.FunctionDelta(name=tc.function.name, arguments=tc.function.arguments)
            )
            for k, tc in enumerate(m.tool_calls or ())
            if tc.function is not None
        ]
        delta = wire.Delta(
            content=m.content,
            reasoning_content=m.reasoning_content,
            reasoning=m.reasoning,
            refusal=m.refusal if not m.content else None,
            tool_calls=calls,
            function_call=(
                wire.FunctionDelta(name=m.function_call.name, arguments=m.function_call.arguments) if m.function_call else None
            ),
        )
        dec._choice(wire.ChunkChoice(delta=delta, finish_reason=choice.finish_reason or "stop"), events)
    else:
        dec._finish(choice.finish_reason if choice is not None and choice.finish_reason else "stop", events)
    if c.usage is not None:
        events.append(ir.UsageEvent(usage=_ir_usage(c.usage)))
    events.append(ir.End())
    return events


def scan_usage(ev: SSEEvent) -> ir.Usage | None:
    """Usage carried by one upstream chunk, if any (fast path accounting; cheap)."""
    data = ev.data
    if '"usage"' not in data:
        return None
    try:
        u = wire.usage_decoder.decode(data).usage
    except msgspec.DecodeError:
        return None
    return _ir_usage(u) if u is not None else None


# =========================================================================== upstream half: errors

_RETRY_IN = re.compile(r"(?:try again|retry) in (\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|sec|seconds?|m|min|minutes?)\b", re.I)


def _read_error(obj: Any) -> tuple[str | None, str | None, str | int | None, str | None]:
    """(message, type, code, param) from the error shapes OpenAI-compatible servers send."""
    if isinstance(obj, list) and obj:
        obj = obj[0]
    if isinstance(obj, dict) and "error" in obj:
        inner = obj["error"]
        if isinstance(inner, str):
            return inner, _s(obj.get("type")), _code(obj.get("code")), None
        if isinstance(inner, dict):
            obj = inner
    if isinstance(obj, str):
        return obj, None, None, None
    if not isinstance(obj, dict):
        return None, None, None, None
    msg = obj.get("message")
    if not isinstance(msg, str):
        msg = obj.get("detail") if isinstance(obj.get("detail"), str) else None
    typ = _s(obj.get("type")) or _s(obj.get("status"))
    return msg, typ, _code(obj.get("code")), _s(obj.get("param"))


def _s(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def _code(v: Any) -> str | int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (str, int)):
        return v
    return None


_CODE_KIND = {
    "insufficient_quota": ErrorKind.BILLING,
    "quota_exceeded": ErrorKind.BILLING,
    "billing_hard_limit_reached": ErrorKind.BILLING,
    "rate_limit_exceeded": ErrorKind.RATE_LIMIT,
    "rate_limit_error": ErrorKind.RATE_LIMIT,
    "invalid_api_key": ErrorKind.AUTHENTICATION,
    "authentication_error": ErrorKind.AUTHENTICATION,
    "permission_denied": ErrorKind.PERMISSION,
    "permission_error": ErrorKind.PERMISSION,
    "model_not_found": ErrorKind.NOT_FOUND,
    "not_found_error": ErrorKind.NOT_FOUND,
    "context_length_exceeded": ErrorKind.INVALID_REQUEST,
    "invalid_request_error": ErrorKind.INVALID_REQUEST,
    "server_error": ErrorKind.API_ERROR,
    "overloaded_error": ErrorKind.OVERLOADED,
    "service_unavailable": ErrorKind.OVERLOADED,
}

# code values that override what the status alone says (429 means two different things)
_OVERRIDES = (
    "insufficient_quota", "quota_exceeded", "billing_hard_limit_reached", "context_length_exceeded", "model_not_found",
    "invalid_api_key",
)  # fmt: skip


def _classify(status: int | None, typ: str | None, code: str | int | None) -> ErrorKind:
    code_s = code if isinstance(code, str) else None
    for key in (code_s, typ):
        if key in _OVERRIDES:
            return _CODE_KIND[key]  # type: ignore[index]
    if status is not None:
        return kind_for_status(status)
    for key in (code_s, typ):
        if key in _CODE_KIND:
            return _CODE_KIND[key]  # type: ignore[index]
    return ErrorKind.API_ERROR


def _error_event(obj: Any) -> ir.Error:
    """An in-stream ``{"error": ...}`` object -> ``ir.Error``."""
    msg, typ, code, _ = _read_error(obj)
    status = code if isinstance(code, int) and 400 <= code < 600 else None
    kind = _classify(status, typ, code)
    code_s = code if isinstance(code, str) else typ
    return ir.Error(
        kind=kind.value,
        message=f"openai: {msg or 'upstream error'}",
        status=status or KIND_STATUS.get(kind, 502),
        code=code_s,
    )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    v = headers.get(name)
    if v is None:
        for k, val in headers.items():
            if k.lower() == name:
                return val
    return v


def _retry_after(headers: Mapping[str, str], message: str | None) -> float | None:
    ms = _header(headers, "retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    ra = _header(headers, "retry-after")
    if ra:
        try:
            return max(0.0, float(ra))
        except ValueError:
            pass  # an HTTP date: needs a clock; the caller may parse the header itself
    if message:
        m = _RETRY_IN.search(message)
        if m:
            n = float(m.group(1))
            unit = m.group(2).lower()
            if unit.startswith("ms") or unit.startswith("milli"):
                return n / 1000.0
            if unit.startswith("m"):
                return n * 60.0
            return n
    return None


def parse_error(status: int, headers: Mapping[str, str], body: bytes) -> UpstreamHTTPError:
    """An OpenAI-style error answer -> :class:`UpstreamHTTPError` (kind, status, code, retry_after).

    429 ``rate_limit_exceeded`` is a transient RATE_LIMIT; 429 ``insufficient_quota`` is BILLING.
    """
    try:
        obj = _decode(body) if body else None
    except msgspec.DecodeError:
        obj = None
    msg, typ, code, param = _read_error(obj)
    if msg is None:
        text = body.decode("utf-8", errors="replace").strip() if obj is None else ""
        msg = f"HTTP {status}: {text[:500]}" if text else f"HTTP {status} with no error message"
    kind = _classify(status, typ, code)
    ra = _retry_after(headers, msg)
    keep: dict[str, str] = {}
    for h in ("retry-after", "retry-after-ms"):
        v = _header(headers, h)
        if v is not None:
            keep[h] = v
    return UpstreamHTTPError(
        f"openai: {msg}",
        kind=kind,
        status=status,
        code=code if isinstance(code, str) else typ,
        param=param,
        retry_after=ra,
        headers=keep,
        request_id=_header(headers, "x-request-id"),
    )
