"""Gemini API dialect, upstream half only (pure): IR request -> generateContent body, and
generateContent / ``streamGenerateContent?alt=sse`` / countTokens answers -> IR.

May import: stdlib, msgspec, ``antiapi.errors``, ``antiapi.translate.*``, ``antiapi.wire.*``.
Implements the upstream half of :mod:`antiapi.translate.dialect` plus the countTokens pair
(:func:`render_count_request`, :func:`parse_count_response`). The model name and the stream
flag live in the URL (the provider builds it), so the body has no ``model``.

Choices made here (translation.md §1.5, §9):

* Mid-conversation ``system`` messages become ``user`` text at their position (§9.15), not
  ``systemInstruction``: a system reminder refers to that point of the conversation.
  ``Request.system`` goes to ``systemInstruction.parts``; Claude Code's
  ``x-anthropic-billing-header:`` text (§9.14) is dropped.
* Image/document URLs that are not ``data:`` URLs become ``fileData {fileUri, mimeType}``
  (mime type guessed from the extension). The Gemini API only accepts Files-API URIs (and, on
  some models, public HTTP URLs); Vertex accepts ``gs://``. Other URLs may be rejected with a
  400 by the service: downloading them is the provider layer's job (§9.41), not this pure one.
* In a ``user`` turn the ``functionResponse`` parts come first, then the images of those
  results (``inlineData``), then the other parts, so one turn's results stay together.
* A tool result whose function name is unknown (no ``name``, no earlier call with that id)
  cannot be a ``functionResponse`` (Gemini needs the name): it becomes user text.
* A Gemini reasoning part with no text but a signature (the decoder's carrier for a signature
  that arrived on a text part) is put back on the preceding text part of the same turn, or
  sent as ``{"text": "", "thoughtSignature": ...}`` when there is none (what Gemini itself sent).
* Empty object parameter schemas are omitted (Gemini rejects an OBJECT with no properties).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec

from antiapi.errors import ErrorKind, UpstreamHTTPError, kind_for_status
from antiapi.translate import ir
from antiapi.translate.common import (
    effort_to_budget,
    new_id,
    normalize_tool_name,
    parse_arguments,
    split_data_url,
)
from antiapi.wire import gemini as wire
from antiapi.wire.sse import SSEEvent

__all__ = [
    "SIGNATURE_SENTINEL",
    "StreamDecoder",
    "clean_schema",
    "decode_response",
    "parse_count_response",
    "parse_error",
    "render_count_request",
    "render_request",
    "scan_usage",
]

#: Sent as the thoughtSignature of a functionCall whose real signature is unknown (§9.20).
SIGNATURE_SENTINEL = "skip_thought_signature_validator"
#: Text of the user turn prepended when the conversation starts with the model (§9.43).
_PLACEHOLDER_USER_TEXT = "…"
_BILLING_HEADER = "x-anthropic-billing-header:"

_encode = msgspec.json.encode

# =========================================================================== requests


def render_request(req: ir.Request, target: ir.Target) -> ir.Outgoing:
    """The generateContent body for ``req``. ``Outgoing.stream`` tells the provider which URL
    (``:generateContent`` or ``:streamGenerateContent?alt=sse``) to call."""
    names: dict[str, str] = {}
    body = _render_body(req, names)
    gen = _generation_config(req)
    if gen:
        body["generationConfig"] = gen
    return ir.Outgoing(body=body, stream=req.stream, tool_names=names)


def render_count_request(req: ir.Request, target: ir.Target) -> dict:
    """The ``:countTokens`` body: ``{"contents": [...]}`` when only messages matter, else
    ``{"generateContentRequest": {..., "model": "models/<m>"}}`` so system and tools count."""
    names: dict[str, str] = {}
    body = _render_body(req, names)
    if len(body) == 1:
        return {"contents": body["contents"]}
    model = target.model if target.model.startswith("models/") else f"models/{target.model}"
    body["model"] = model
    return {"generateContentRequest": body}


def parse_count_response(body: bytes) -> int:
    """``totalTokens`` of a countTokens answer."""
    try:
        return wire.count_tokens_decoder.decode(body).total_tokens
    except msgspec.DecodeError as e:
        raise UpstreamHTTPError(
            f"gemini: countTokens returned an unreadable body ({e})", kind=ErrorKind.API_ERROR, status=502
        ) from None


def _render_body(req: ir.Request, names: dict[str, str]) -> dict:
    # tools first so the name map follows declaration order
    decls = _function_declarations(req.tools, names)
    body: dict[str, Any] = {"contents": _contents(req.messages, names)}
    sys_parts = [{"text": p.text} for p in req.system if p.text and not p.text.startswith(_BILLING_HEADER)]
    if sys_parts:
        body["systemInstruction"] = {"parts": sys_parts}
    if decls:
        body["tools"] = [{"functionDeclarations": decls}]
        tc = _tool_config(req.tool_choice, names)
        if tc is not None:
            body["toolConfig"] = tc
    return body


# --------------------------------------------------------------------------- contents


def _contents(messages: list[ir.Message], names: dict[str, str]) -> list[dict]:
    call_names: dict[str, str] = {}
    for m in messages:
        if m.role == "assistant":
            for p in m.content:
                if type(p) is ir.ToolCallPart:
                    call_names[p.id] = p.name
    contents: list[dict] = []
    for m in messages:
        if m.role == "assistant":
            role, parts = "model", _model_parts(m.content, names)
        else:  # user, and mid-conversation system -> user text (§9.15)
            role, parts = "user", _user_parts(m.content, names, call_names)
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    # §9.44: a trailing model turn whose function calls were never answered is rejected
    if contents and contents[-1]["role"] == "model" and any("functionCall" in p for p in contents[-1]["parts"]):
        contents.pop()
    # §9.43: the first content must be the user's
    if contents and contents[0]["role"] == "model":
        contents.insert(0, {"role": "user", "parts": [{"text": _PLACEHOLDER_USER_TEXT}]})
    return contents


def _model_parts(content: list[ir.Part], names: dict[str, str]) -> list[dict]:
    out: list[dict] = []
    for p in content:
        t = type(p)
        if t is ir.TextPart:
            if p.text:  # type: ignore[union-attr]
                out.append({"text": p.text})  # type: ignore[union-attr]
        elif t is ir.ToolCallPart:
            assert isinstance(p, ir.ToolCallPart)
            out.append(
                {
                    "functionCall": {
                        "name": normalize_tool_name(p.name, names, gemini=True),
                        "args": parse_arguments(p.arguments),
                    },
                    # §9.20: replay the signature Gemini minted, else the documented bypass
                    "thoughtSignature": p.signature or SIGNATURE_SENTINEL,
                }
            )
        elif t is ir.ReasoningPart:
            assert isinstance(p, ir.ReasoningPart)
            if p.provider != "gemini" or p.redacted is not None:
                continue  # foreign reasoning is meaningless (and its signature invalid) here
            if p.text:
                part: dict[str, Any] = {"text": p.text, "thought": True}
                if p.signature:
                    part["thoughtSignature"] = p.signature
                out.append(part)
            elif p.signature:
                prev = out[-1] if out else None
                if prev is not None and "text" in prev and not prev.get("thought") and "thoughtSignature" not in prev:
                    prev["thoughtSignature"] = p.signature
                else:
                    out.append({"text": "", "thoughtSignature": p.signature})
        elif t is ir.ImagePart or t is ir.DocumentPart:
            media = _media_part(p)  # type: ignore[arg-type]
            if media is not None:
                out.append(media)
        elif t is ir.RawPart:
            if p.dialect == "gemini":  # type: ignore[union-attr]
                out.append(dict(p.data))  # type: ignore[union-attr]
    return out


def _user_parts(content: list[ir.Part], names: dict[str, str], call_names: dict[str, str]) -> list[dict]:
    responses: list[dict] = []
    result_media: list[dict] = []
    others: list[dict] = []
    for p in content:
        t = type(p)
        if t is ir.TextPart:
            if p.text:  # type: ignore[union-attr]
                others.append({"text": p.text})  # type: ignore[union-attr]
        elif t is ir.ToolResultPart:
            assert isinstance(p, ir.ToolResultPart)
            text = "\n".join(c.text for c in p.content if type(c) is ir.TextPart)
            media = [m for m in (_media_part(c) for c in p.content if type(c) is ir.ImagePart) if m is not None]
            name = p.name or call_names.get(p.call_id)
            if not name:
                label = "Error result" if p.is_error else "Result"
                others.append({"text": f"{label} of tool call {p.call_id}:\n{text}"})
                others.extend(media)
                continue
            responses.append(
                {
                    "functionResponse": {
                        "name": normalize_tool_name(name, names, gemini=True),
                        "response": {"error" if p.is_error else "result": text},
                    }
                }
            )
            result_media.extend(media)
        elif t is ir.ImagePart or t is ir.DocumentPart:
            media_part = _media_part(p)  # type: ignore[arg-type]
            if media_part is not None:
                others.append(media_part)
        elif t is ir.RawPart:
            if p.dialect == "gemini":  # type: ignore[union-attr]
                others.append(dict(p.data))  # type: ignore[union-attr]
        # ToolCallPart / ReasoningPart in a user turn: nothing Gemini could accept
    return responses + result_media + others


_EXT_MIME = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "heic": "image/heic",
    "heif": "image/heif",
    "pdf": "application/pdf",
    "txt": "text/plain",
    "md": "text/markdown",
    "html": "text/html",
    "csv": "text/csv",
}

_B64_MAGIC = (("iVBORw0KGgo", "image/png"), ("/9j/", "image/jpeg"), ("R0lGOD", "image/gif"), ("UklGR", "image/webp"), ("JVBERi0", "application/pdf"))


def _sniff(data: str, default: str) -> str:
    for prefix, mime in _B64_MAGIC:
        if data.startswith(prefix):
            return mime
    return default


def _guess_mime(url: str, default: str) -> str:
    path = url.split("?", 1)[0].split("#", 1)[0]
    dot = path.rfind(".")
    if dot > path.rfind("/"):
        return _EXT_MIME.get(path[dot + 1 :].lower(), default)
    return default


def _media_part(p: ir.ImagePart | ir.DocumentPart) -> dict | None:
    default = "image/jpeg" if type(p) is ir.ImagePart else "application/pdf"
    if p.data:
        return {"inlineData": {"mimeType": p.media_type or _sniff(p.data, default), "data": p.data}}
    if p.url:
        split = split_data_url(p.url)
        if split is not None:
            media, data = split
            return {"inlineData": {"mimeType": media or p.media_type or _sniff(data, default), "data": data}}
        # not base64: only Files-API URIs / gs:// / some public URLs work (see module doc)
        return {"fileData": {"mimeType": p.media_type or _guess_mime(p.url, default), "fileUri": p.url}}
    return None


# --------------------------------------------------------------------------- tools


def _function_declarations(tools: list[ir.Tool], names: dict[str, str]) -> list[dict]:
    decls: list[dict] = []
    for t in tools:
        if t.kind == "builtin":
            continue  # provider-native tools of another dialect have no Gemini meaning
        d: dict[str, Any] = {"name": normalize_tool_name(t.name, names, gemini=True)}
        if t.description:
            d["description"] = t.description
        params = _parameters(t.parameters)
        if params is not None:
            d["parameters"] = params
        decls.append(d)
    return decls


def _parameters(schema: Any) -> dict | None:
    """A cleaned object schema, or None when there is nothing to declare (Gemini rejects an
    OBJECT with empty ``properties``; a function without ``parameters`` takes no arguments)."""
    cleaned = clean_schema(schema)
    props = cleaned.get("properties")
    if not props:
        return None
    cleaned["type"] = "object"
    cleaned.pop("anyOf", None)
    return cleaned


def _tool_config(tc: ir.ToolChoice | None, names: dict[str, str]) -> dict | None:
    if tc is None:
        return None
    mode = {"auto": "AUTO", "none": "NONE", "required": "ANY", "tool": "ANY"}.get(tc.mode, "AUTO")
    cfg: dict[str, Any] = {"mode": mode}
    if tc.mode == "tool" and tc.name:
        cfg["allowedFunctionNames"] = [normalize_tool_name(tc.name, names, gemini=True)]
    return {"functionCallingConfig": cfg}


# --------------------------------------------------------------------------- schema cleaning

_TYPES = frozenset(("string", "number", "integer", "boolean", "array", "object"))
_FORMATS = {
    "string": frozenset(("enum", "date-time")),
    "number": frozenset(("float", "double")),
    "integer": frozenset(("int32", "int64")),
}
_NUMERIC_KEYS = ("minimum", "maximum", "minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties")
_MAX_REF_DEPTH = 8


def clean_schema(schema: Any) -> dict:
    """JSON Schema -> the OpenAPI subset Gemini accepts (§1.5, §9.28).

    ``$ref`` is inlined from ``$defs``/``definitions`` (a recursive reference becomes a plain
    ``{"type": "object"}``); ``allOf`` is merged; ``oneOf`` joins ``anyOf``; a ``null`` branch or
    type becomes ``nullable: true``; a type list keeps its first non-null type; ``const`` becomes
    ``enum: [v]``; enum values become strings (type string; boolean-only enums are dropped);
    unsupported formats and keywords (``$schema``, ``additionalProperties``,
    ``patternProperties``, ``propertyNames``, ``default``, ``examples``, ...) are dropped;
    ``required`` keeps only names in ``properties``; arrays always get ``items``. Property
    *names* are never treated as keywords. Never mutates its input.
    """
    if not isinstance(schema, dict):
        return {}
    defs: dict[str, Any] = {}
    for key in ("definitions", "$defs"):
        d = schema.get(key)
        if isinstance(d, dict):
            defs.update(d)
    return _clean(schema, defs, ())


def _clean(node: Any, defs: dict[str, Any], stack: tuple[str, ...]) -> dict:
    if not isinstance(node, dict):
        return {}
    ref = node.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        target = defs.get(name)
        rest = {k: v for k, v in node.items() if k != "$ref"}
        if isinstance(target, dict) and name not in stack and len(stack) < _MAX_REF_DEPTH:
            return _clean({**target, **rest}, defs, (*stack, name))
        out = _clean(rest, defs, stack)
        if "type" not in out and "anyOf" not in out:
            out["type"] = "object"  # unresolvable or recursive: a permissive stand-in
        return out
    all_of = node.get("allOf")
    if isinstance(all_of, list) and all_of:
        merged = _clean({k: v for k, v in node.items() if k != "allOf"}, defs, stack)
        for sub in all_of:
            _merge_schema(merged, _clean(sub, defs, stack))
        return _finalize(merged)

    out: dict[str, Any] = {}
    nullable = node.get("nullable") is True
    t = node.get("type")
    if isinstance(t, list):
        kinds = [x for x in t if isinstance(x, str)]
        nullable = nullable or "null" in kinds
        non_null = [x for x in kinds if x != "null"]
        t = non_null[0] if non_null else None
    if t == "null":
        nullable, t = True, None
    if isinstance(t, str) and t.lower() in _TYPES:
        out["type"] = t.lower()

    for key in ("title", "description", "pattern"):
        v = node.get(key)
        if isinstance(v, str):
            out[key] = v
    for key in _NUMERIC_KEYS:
        v = node.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[key] = v

    enum = node.get("enum")
    if not isinstance(enum, list) and "const" in node:
        enum = [node["const"]]
    if isinstance(enum, list):
        values: list[str] = []
        all_bool = True
        for v in enum:
            if v is None:
                nullable = True
                continue
            all_bool = all_bool and isinstance(v, bool)
            s = _enum_text(v)
            if s not in values:
                values.append(s)
        if values and not all_bool:
            out["enum"] = values
            out["type"] = "string"  # Gemini enums are string-only

    fmt = node.get("format")
    if isinstance(fmt, str) and fmt in _FORMATS.get(out.get("type", ""), ()):
        out["format"] = fmt

    props = node.get("properties")
    if isinstance(props, dict):
        cleaned_props = {k: _clean(v, defs, stack) for k, v in props.items() if isinstance(k, str)}
        if cleaned_props:
            out["properties"] = cleaned_props
            req = node.get("required")
            if isinstance(req, list):
                required: list[str] = []
                for r in req:
                    if isinstance(r, str) and r in cleaned_props and r not in required:
                        required.append(r)
                if required:
                    out["required"] = required

    items = node.get("items")
    if isinstance(items, list):
        items = items[0] if items else None
    if isinstance(items, dict):
        out["items"] = _clean(items, defs, stack)

    variants: list[Any] = []
    for key in ("anyOf", "oneOf"):
        v = node.get(key)
        if isinstance(v, list):
            variants.extend(v)
    if variants:
        kept: list[dict] = []
        for v in variants:
            c = _clean(v, defs, stack)
            if c.get("nullable") and len(c) == 1:
                nullable = True
            elif c and c not in kept:
                kept.append(c)
        if len(kept) == 1:
            for k, v in kept[0].items():
                out.setdefault(k, v)
        elif kept:
            out["anyOf"] = kept
    if nullable:
        out["nullable"] = True
    return _finalize(out)


def _finalize(out: dict) -> dict:
    """Invariants Gemini checks, also after a hoisted or merged subschema brought keywords."""
    if "enum" in out:
        out["type"] = "string"
        if out.get("format") not in _FORMATS["string"]:
            out.pop("format", None)
    if "type" not in out:
        if "properties" in out:
            out["type"] = "object"
        elif "items" in out:
            out["type"] = "array"
    if out.get("type") == "array":
        if not out.get("items"):
            out["items"] = {"type": "string"}  # Gemini needs a typed items schema
    else:
        out.pop("items", None)
    return out


def _merge_schema(into: dict, sub: dict) -> None:
    for k, v in sub.items():
        if k == "properties" and isinstance(into.get(k), dict):
            into[k] = {**into[k], **v}
        elif k == "required" and isinstance(into.get(k), list):
            into[k] = into[k] + [r for r in v if r not in into[k]]
        else:
            into.setdefault(k, v)
    if "properties" in into and "type" not in into:
        into["type"] = "object"


def _enum_text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, (int, float)):
        return str(v)
    return _encode(v).decode()


# --------------------------------------------------------------------------- generation config


def _generation_config(req: ir.Request) -> dict:
    g: dict[str, Any] = {}
    if req.max_output_tokens is not None:
        g["maxOutputTokens"] = req.max_output_tokens
    if req.temperature is not None:
        g["temperature"] = req.temperature
    if req.top_p is not None:
        g["topP"] = req.top_p
    if req.top_k is not None:
        g["topK"] = req.top_k
    if req.stop:
        g["stopSequences"] = list(req.stop)
    if req.n is not None:
        g["candidateCount"] = req.n
    if req.seed is not None:
        g["seed"] = req.seed
    rf = req.response_format
    if rf is not None and rf.type != "text":
        g["responseMimeType"] = "application/json"
        if rf.type == "json_schema" and isinstance(rf.schema, dict):
            g["responseSchema"] = clean_schema(rf.schema)
    tc = _thinking_config(req.reasoning)
    if tc is not None:
        g["thinkingConfig"] = tc
    return g


def _thinking_config(r: ir.Reasoning | None) -> dict | None:
    """budget_tokens wins, then effort (common.effort_to_budget); explicitly off or effort
    "none" -> budget 0; enabled/adaptive/summary without a size -> -1 (dynamic)."""
    if r is None:
        return None
    if r.enabled is False or r.effort == "none":
        return {"thinkingBudget": 0}
    budget: int | None
    if r.budget_tokens is not None:
        budget = r.budget_tokens
    elif r.effort is not None:
        budget = effort_to_budget(r.effort)
    elif r.enabled or r.adaptive or r.summary:
        budget = -1
    else:
        return None
    if budget is None or (budget <= 0 and budget != -1):
        return {"thinkingBudget": 0}
    return {"thinkingBudget": budget, "includeThoughts": True}


# =========================================================================== responses

_STOP_REASONS: dict[str, ir.StopReason] = {
    "STOP": "end_turn",
    "FINISH_REASON_UNSPECIFIED": "end_turn",
    "OTHER": "end_turn",
    "MAX_TOKENS": "max_tokens",
    "SAFETY": "refusal",
    "RECITATION": "refusal",
    "BLOCKLIST": "refusal",
    "PROHIBITED_CONTENT": "refusal",
    "SPII": "refusal",
    "LANGUAGE": "refusal",
    "IMAGE_SAFETY": "refusal",
    "IMAGE_PROHIBITED_CONTENT": "refusal",
    "IMAGE_RECITATION": "refusal",
}
#: Finish reasons that mean the answer is broken: an ir.Error (the router may retry once).
_ERROR_REASONS = frozenset(("MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS"))

_SAFE_ID = re.compile(r"^[a-zA-Z0-9_-]+$")


def _usage(u: wire.UsageMetadata) -> ir.Usage:
    """§4: input excludes cached reads; output includes thoughts."""
    cached = u.cached_content_token_count
    return ir.Usage(
        input_tokens=max(0, u.prompt_token_count - cached) + u.tool_use_prompt_token_count,
        output_tokens=u.candidates_token_count + u.thoughts_token_count,
        cache_read_tokens=cached,
        reasoning_tokens=u.thoughts_token_count,
    )


def _has_counts(u: wire.UsageMetadata) -> bool:
    return bool(u.prompt_token_count or u.candidates_token_count or u.thoughts_token_count or u.total_token_count)


class _PendingCall:
    """A function call whose arguments stream as ``partialArgs`` fragments."""

    __slots__ = ("name", "id", "args", "signature", "open_path")

    def __init__(self, name: str, call_id: str | None, args: dict | None, signature: str | None) -> None:
        self.name = name
        self.id = call_id
        self.args: dict = dict(args) if args else {}
        self.signature = signature
        #: path of a string value still being continued
        self.open_path: str | None = None


_PATH_TOKEN = re.compile(r"""\.([^.\[\]]+)|\[(\d+)\]|\[['"]((?:[^'"\\]|\\.)*)['"]\]""")


def _path_keys(path: str) -> list[str | int] | None:
    """``$.a.b[0]['c d']`` -> ["a", "b", 0, "c d"]; None if it is not such a path."""
    if not path.startswith("$"):
        return None
    keys: list[str | int] = []
    pos = 1
    while pos < len(path):
        m = _PATH_TOKEN.match(path, pos)
        if m is None:
            return None
        if m.group(1) is not None:
            keys.append(m.group(1))
        elif m.group(2) is not None:
            keys.append(int(m.group(2)))
        else:
            keys.append(m.group(3))
        pos = m.end()
    return keys or None


def _apply_partial(args: dict, pa: wire.PartialArg) -> None:
    keys = _path_keys(pa.json_path or "")
    if keys is None or not isinstance(keys[0], str):
        return
    if pa.string_value is not None:
        value: Any = pa.string_value
    elif pa.number_value is not None:
        value = pa.number_value
    elif pa.bool_value is not None:
        value = pa.bool_value
    elif pa.null_value is not msgspec.UNSET:
        value = None
    else:
        return
    container: Any = args
    for key, nxt in zip(keys, keys[1:]):
        fresh: Any = [] if isinstance(nxt, int) else {}
        if isinstance(container, dict) and isinstance(key, str):
            child = container.get(key)
            if not isinstance(child, (dict, list)):
                child = container[key] = fresh
        elif isinstance(container, list) and isinstance(key, int):
            while len(container) <= key:
                container.append(None)
            child = container[key]
            if not isinstance(child, (dict, list)):
                child = container[key] = fresh
        else:
            return
        container = child
    last = keys[-1]
    if isinstance(container, dict) and isinstance(last, str):
        old = container.get(last)
        container[last] = old + value if isinstance(value, str) and isinstance(old, str) else value
    elif isinstance(container, list) and isinstance(last, int):
        while len(container) <= last:
            container.append(None)
        old = container[last]
        container[last] = old + value if isinstance(value, str) and isinstance(old, str) else value


class StreamDecoder:
    """``alt=sse`` chunks -> IR events. Each ``data:`` is a whole GenerateContentResponse;
    there is no terminal sentinel: the chunk with ``finishReason`` is the last one."""

    __slots__ = (
        "_out",
        "_started",
        "_done",
        "_errored",
        "_next",
        "_open",
        "_open_kind",
        "_pending",
        "_tool_emitted",
        "_usage",
        "_usage_sent",
    )

    def __init__(self, out: ir.Outgoing) -> None:
        self._out = out
        self._started = False
        self._done = False
        self._errored = False
        self._next = 0
        self._open: int | None = None
        self._open_kind: str | None = None
        self._pending: _PendingCall | None = None
        self._tool_emitted = False
        self._usage: ir.Usage | None = None
        self._usage_sent: ir.Usage | None = None

    # ------------------------------------------------------------------ public

    def feed(self, ev: SSEEvent) -> list[ir.Event]:
        if self._errored:
            return []
        data = ev.data
        if not data or not data.strip() or data == "[DONE]":
            return []
        try:
            chunk = wire.response_decoder.decode(data)
        except msgspec.DecodeError as e:
            self._errored = True
            return [ir.Error(kind="api_error", message=f"gemini: unreadable stream chunk ({e})", status=502)]
        return self.chunk(chunk)

    def finish(self) -> list[ir.Event]:
        if self._errored:
            return []
        if self._done:
            self._errored = True  # closed: nothing more after End
            return [ir.End()]
        self._errored = True
        return [ir.Error(kind="api_error", message="upstream stream ended before completion", status=502)]

    def chunk(self, c: wire.GenerateContentResponse) -> list[ir.Event]:
        """Events for one decoded chunk (also used for non-stream bodies)."""
        evs: list[ir.Event] = []
        if c.error is not None:
            self._errored = True
            evs.append(_error_event(c.error))
            return evs
        if c.usage_metadata is not None and _has_counts(c.usage_metadata):
            self._usage = _usage(c.usage_metadata)
        if self._done:  # a late chunk after finishReason: only usage can still matter
            self._emit_usage(evs)
            return evs
        if not self._started:
            self._started = True
            start_usage = None
            if self._usage is not None:
                start_usage = ir.Usage(input_tokens=self._usage.input_tokens, cache_read_tokens=self._usage.cache_read_tokens)
            evs.append(ir.Start(id=c.response_id or new_id("gemini_"), model=c.model_version, usage=start_usage))
        cand = None
        for cd in c.candidates:
            if not cd.index:  # candidate 0 only (None or 0)
                cand = cd
                break
        if cand is not None and cand.content is not None:
            for part in cand.content.parts:
                self._part(part, evs)
        reason = cand.finish_reason if cand is not None else None
        if reason is None and not c.candidates and c.prompt_feedback is not None and c.prompt_feedback.block_reason:
            reason = "SAFETY"  # the prompt itself was blocked: no candidate at all
        if reason is not None:
            self._finish(reason, cand.finish_message if cand is not None else None, evs)
        return evs

    # ------------------------------------------------------------------ internals

    def _close(self, evs: list[ir.Event]) -> None:
        if self._open is not None:
            evs.append(ir.BlockStop(index=self._open))
            self._open = None
            self._open_kind = None

    def _open_block(self, kind: ir.BlockKind, evs: list[ir.Event]) -> int:
        self._close(evs)
        idx = self._next
        self._next += 1
        if kind == "reasoning":
            evs.append(ir.BlockStart(index=idx, kind="reasoning", provider="gemini"))
        else:
            evs.append(ir.BlockStart(index=idx, kind=kind))
        self._open = idx
        self._open_kind = kind
        return idx

    def _signature(self, sig: str, evs: list[ir.Event]) -> None:
        """Attach to the open reasoning block, else to a new empty one; then close it (a
        signature ends a reasoning block: nothing may follow it there)."""
        idx = self._open if self._open_kind == "reasoning" else self._open_block("reasoning", evs)
        assert idx is not None
        evs.append(ir.SignatureDelta(index=idx, signature=sig))
        self._close(evs)

    def _part(self, p: wire.Part, evs: list[ir.Event]) -> None:
        fc = p.function_call
        if fc is not None:
            self._function_call(fc, p.thought_signature, evs)
            return
        text = p.text
        if p.thought:
            if text:
                idx = self._open if self._open_kind == "reasoning" else self._open_block("reasoning", evs)
                evs.append(ir.ReasoningDelta(index=idx, text=text))  # type: ignore[arg-type]
        elif text:
            idx = self._open if self._open_kind == "text" else self._open_block("text", evs)
            evs.append(ir.TextDelta(index=idx, text=text))  # type: ignore[arg-type]
        # inlineData / executableCode / other part kinds have no IR event: skipped
        if p.thought_signature:
            self._signature(p.thought_signature, evs)

    def _function_call(self, fc: wire.FunctionCall, sig: str | None, evs: list[ir.Event]) -> None:
        if fc.name:
            if self._pending is not None:  # the previous streamed call never got its end marker
                self._emit_pending(evs)
            pending = _PendingCall(fc.name, fc.id, fc.args, sig)
            for pa in fc.partial_args or ():
                _apply_partial(pending.args, pa)
            if fc.will_continue:
                self._pending = pending
            else:
                self._emit_call(pending, evs)
            return
        pending = self._pending
        if pending is None:
            if fc.args:  # a nameless whole call: keep it rather than drop it (§9.5)
                self._emit_call(_PendingCall("", fc.id, fc.args, sig), evs)
            elif sig:
                self._signature(sig, evs)
            return
        if fc.args:
            pending.args.update(fc.args)
        for pa in fc.partial_args or ():
            _apply_partial(pending.args, pa)
        if sig and not pending.signature:
            pending.signature = sig
        if not fc.will_continue:
            self._emit_pending(evs)

    def _emit_pending(self, evs: list[ir.Event]) -> None:
        pending = self._pending
        self._pending = None
        if pending is not None:
            self._emit_call(pending, evs)

    def _emit_call(self, call: _PendingCall, evs: list[ir.Event]) -> None:
        self._close(evs)
        idx = self._next
        self._next += 1
        call_id = call.id if call.id and _SAFE_ID.match(call.id) else new_id("call_")
        name = self._out.tool_names.get(call.name, call.name) if call.name else f"tool_{idx}"
        evs.append(ir.BlockStart(index=idx, kind="tool_call", id=call_id, name=name))
        if call.args:
            evs.append(ir.ArgsDelta(index=idx, json=_encode(call.args).decode()))
        if call.signature:
            evs.append(ir.SignatureDelta(index=idx, signature=call.signature))
        evs.append(ir.BlockStop(index=idx))
        self._tool_emitted = True

    def _emit_usage(self, evs: list[ir.Event]) -> None:
        if self._usage is not None and self._usage != self._usage_sent:
            evs.append(ir.UsageEvent(usage=self._usage))
            self._usage_sent = self._usage

    def _finish(self, reason: str, message: str | None, evs: list[ir.Event]) -> None:
        self._emit_pending(evs)
        self._close(evs)
        if reason in _ERROR_REASONS:
            self._errored = True
            detail = f": {message}" if message else ""
            evs.append(ir.Error(kind="api_error", message=f"gemini: the model stopped with {reason}{detail}", status=502, code=reason))
            return
        stop = _STOP_REASONS.get(reason, "end_turn")
        if stop == "end_turn" and self._tool_emitted:
            stop = "tool_use"  # §3.1: Gemini says STOP after function calls
        evs.append(ir.Finish(reason=stop))
        self._emit_usage(evs)
        self._done = True


def decode_response(body: bytes, out: ir.Outgoing) -> list[ir.Event]:
    """A non-stream generateContent body (or the JSON-array form of streamGenerateContent)
    as the event sequence the stream would give."""
    try:
        stripped = body.lstrip()
        if stripped[:1] == b"[":
            chunks = wire.responses_decoder.decode(stripped)
        else:
            chunks = [wire.response_decoder.decode(body)]
    except msgspec.DecodeError as e:
        return [ir.Error(kind="api_error", message=f"gemini: unreadable response body ({e})", status=502)]
    dec = StreamDecoder(out)
    evs: list[ir.Event] = []
    for c in chunks:
        evs += dec.chunk(c)
        if dec._errored:
            return evs
    if not dec._done:
        # a whole body is complete by definition: no finishReason still means a normal end
        if not dec._started:
            evs += dec.chunk(wire.GenerateContentResponse())
        dec._finish("STOP", None, evs)
    evs += dec.finish()
    return evs


def scan_usage(ev: SSEEvent) -> ir.Usage | None:
    """Cumulative usage of one chunk (fast path); None when the chunk carries no counts."""
    data = ev.data
    if "usageMetadata" not in data:
        return None
    try:
        u = wire.usage_only_decoder.decode(data).usage_metadata
    except msgspec.DecodeError:
        return None
    if u is None or not _has_counts(u):
        return None
    return _usage(u)


# =========================================================================== errors

_RPC_KINDS: dict[str, ErrorKind] = {
    "INVALID_ARGUMENT": ErrorKind.INVALID_REQUEST,
    "FAILED_PRECONDITION": ErrorKind.INVALID_REQUEST,
    "OUT_OF_RANGE": ErrorKind.INVALID_REQUEST,
    "ALREADY_EXISTS": ErrorKind.INVALID_REQUEST,
    "UNAUTHENTICATED": ErrorKind.AUTHENTICATION,
    "PERMISSION_DENIED": ErrorKind.PERMISSION,
    "NOT_FOUND": ErrorKind.NOT_FOUND,
    "RESOURCE_EXHAUSTED": ErrorKind.RATE_LIMIT,
    "UNAVAILABLE": ErrorKind.OVERLOADED,
    "DEADLINE_EXCEEDED": ErrorKind.TIMEOUT,
    "INTERNAL": ErrorKind.API_ERROR,
    "UNKNOWN": ErrorKind.API_ERROR,
    "ABORTED": ErrorKind.API_ERROR,
    "CANCELLED": ErrorKind.API_ERROR,
    "UNIMPLEMENTED": ErrorKind.API_ERROR,
    "DATA_LOSS": ErrorKind.API_ERROR,
}

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")
_CONTEXT_EXCEEDED = re.compile(r"exceeds the maximum number of tokens", re.I)


def _retry_delay(details: list[Any]) -> float | None:
    for d in details:
        if isinstance(d, dict) and str(d.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = d.get("retryDelay")
            if isinstance(delay, str):
                m = _DURATION.match(delay)
                if m:
                    return float(m.group(1))
            elif isinstance(delay, dict):  # {"seconds": 3, "nanos": 5e8} (non-JSON-mapped form)
                try:
                    return float(delay.get("seconds", 0)) + float(delay.get("nanos", 0)) / 1e9
                except (TypeError, ValueError):
                    return None
    return None


def _error_reason(details: list[Any]) -> str | None:
    for d in details:
        if isinstance(d, dict) and str(d.get("@type", "")).endswith("google.rpc.ErrorInfo"):
            reason = d.get("reason")
            if isinstance(reason, str):
                return reason
    return None


def _classify(status: int, rpc: wire.RpcStatus) -> tuple[ErrorKind, int, str | None]:
    kind = _RPC_KINDS.get(rpc.status or "") or kind_for_status(status)
    code = rpc.status
    reason = _error_reason(rpc.details)
    if reason == "API_KEY_INVALID":  # Google answers a bad key with 400 INVALID_ARGUMENT
        return ErrorKind.AUTHENTICATION, 401, reason
    if kind is ErrorKind.INVALID_REQUEST and _CONTEXT_EXCEEDED.search(rpc.message):
        code = "context_length_exceeded"  # §9.50: lets clients trigger their compaction
    return kind, status, code


def _error_event(rpc: wire.RpcStatus) -> ir.Error:
    status = rpc.code if rpc.code and 400 <= rpc.code <= 599 else 502
    kind, status, code = _classify(status, rpc)
    return ir.Error(kind=kind.value, message=f"gemini: {rpc.message or rpc.status or 'stream error'}", status=status, code=code)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    v = headers.get(name)
    if v is not None:
        return v
    for k, val in headers.items():
        if k.lower() == name:
            return val
    return None


def parse_error(status: int, headers: Mapping[str, str], body: bytes) -> UpstreamHTTPError:
    """A Google RPC error answer -> UpstreamHTTPError (kind from ``error.status``, else from
    the HTTP status; ``retry_after`` from ``RetryInfo.retryDelay``, else ``retry-after``)."""
    rpc: wire.RpcStatus | None = None
    try:
        stripped = body.lstrip()
        if stripped[:1] == b"[":
            items = wire.errors_decoder.decode(stripped)
            rpc = items[0].error if items else None
        else:
            rpc = wire.error_decoder.decode(body).error
    except (msgspec.DecodeError, UnicodeDecodeError):
        rpc = None
    retry_after: float | None = None
    if rpc is not None:
        kind, status_out, code = _classify(status, rpc)
        message = f"gemini: {rpc.message or rpc.status or f'HTTP {status}'}"
        retry_after = _retry_delay(rpc.details)
    else:
        kind, status_out, code = kind_for_status(status), status, None
        text = body.decode("utf-8", errors="replace").strip()[:500]
        message = f"gemini: HTTP {status}" + (f": {text}" if text else "")
    if retry_after is None:
        raw = _header(headers, "retry-after")
        if raw is not None:
            try:
                retry_after = max(0.0, float(raw))
            except ValueError:
                retry_after = None
    return UpstreamHTTPError(message, kind=kind, status=status_out, code=code, retry_after=retry_after)
