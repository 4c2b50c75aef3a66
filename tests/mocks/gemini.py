"""Gemini API emulation (generateContent, streamGenerateContent, countTokens, models)."""

from __future__ import annotations

import re
from typing import Any

from ._common import Ctx, dumps, rand62, resolve_usage, sse
from .scripts import Error, MidStreamError, Reply, Text, Thinking, ToolCall

NAME = "gemini"
_FN_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")
STOP = {"end": "STOP", "max_tokens": "MAX_TOKENS", "tool_use": "STOP", "stop_sequence": "STOP",
        "content_filter": "SAFETY", "refusal": "SAFETY"}
STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
          409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED", 500: "INTERNAL",
          501: "NOT_IMPLEMENTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
_MESSAGES = {
    500: "An internal error has occurred. Please retry or report in "
         "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
    404: "Requested entity was not found.",
    403: "The caller does not have permission",
    400: "Request contains an invalid argument.",
}
KNOWN_FIELDS = frozenset(
    {"contents", "tools", "toolConfig", "tool_config", "safetySettings", "safety_settings",
     "systemInstruction", "system_instruction", "generationConfig", "generation_config",
     "cachedContent", "cached_content", "labels", "model"}
)
DEFAULT_MODELS = ["gemini-2.5-flash", "gemini-2.5-pro", "gemini-3-pro-preview"]


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def error_body(code: int, message: str, status: str, details: list[Any] | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        err["details"] = details
    return {"error": err}


def render_error(err: Error, request_id: str) -> tuple[int, dict[str, str], Any]:
    headers = dict(err.headers)
    if err.body is not None:
        return err.status, headers, err.body
    status = err.type or STATUS.get(err.status, "INTERNAL" if err.status >= 500 else "INVALID_ARGUMENT")
    details: list[Any] = []
    message = err.message
    if err.status == 429:
        if message is None:
            message = ("You exceeded your current quota, please check your plan and billing details. For "
                       "more information on this error, head to: https://ai.google.dev/gemini-api/docs/"
                       "rate-limits. To monitor your current usage, head to: https://ai.dev/usage?tab=rate-limit.")
            if err.retry_after is not None:
                message += f" Please retry in {_num(err.retry_after)}s."
        details.append({"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
            "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_input_token_count",
            "quotaId": err.code or "GenerateContentInputTokensPerModelPerMinute-FreeTier",
            "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"},
            "quotaValue": "250000"}]})
        details.append({"@type": "type.googleapis.com/google.rpc.Help", "links": [{
            "description": "Learn more about Gemini API quotas",
            "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]})
    if err.retry_after is not None:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo",
                        "retryDelay": f"{_num(err.retry_after)}s"})
    if message is None:
        message = _MESSAGES.get(err.status, "Internal error encountered.")
    return err.status, headers, error_body(err.status, message, status, details)


def base_headers(request_id: str) -> dict[str, str]:
    return {"server": "scaffolding on HTTPServer2", "x-xss-protection": "0", "x-frame-options": "SAMEORIGIN",
            "x-content-type-options": "nosniff", "vary": "Origin, X-Origin, Referer"}


def auth_error(headers: dict[str, str], query: dict[str, str], key: str) -> Error | None:
    given = headers.get("x-goog-api-key") or query.get("key")
    if not given:
        return Error(403, message="Method doesn't allow unregistered callers (callers without established "
                     "identity). Please use API Key or other form of API consumer identity to call this API.",
                     type="PERMISSION_DENIED")
    if given != key:
        return Error(400, type="INVALID_ARGUMENT", message="API key not valid. Please pass a valid API key.",
                     body=error_body(400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT", [
                         {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                          "domain": "googleapis.com",
                          "metadata": {"service": "generativelanguage.googleapis.com"}}]))
    return None


def models_body(ids: list[str], query: dict[str, str] | None = None) -> dict[str, Any]:
    """``GET /v1beta/models``: pages of ``pageSize`` (default 50, at most 1000) from ``pageToken``;
    ``nextPageToken`` while more remain, as the API."""
    q = query or {}
    size = max(1, min(1000, int(q.get("pageSize") or 50)))
    start = int(q["pageToken"][4:]) if q.get("pageToken", "").startswith("page") else 0
    body: dict[str, Any] = {"models": [
        {"name": f"models/{m}", "version": "001", "displayName": m.replace("-", " ").title(),
         "description": f"Mock {m}", "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
         "supportedGenerationMethods": ["generateContent", "countTokens", "createCachedContent",
                                        "batchGenerateContent"],
         "temperature": 1, "topP": 0.95, "topK": 64, "maxTemperature": 2, "thinking": True}
        for m in ids[start:start + size]]}
    if start + size < len(ids):
        body["nextPageToken"] = f"page{start + size}"
    return body


def last_user_text(body: dict[str, Any]) -> str:
    for c in reversed(body.get("contents") or []):
        if isinstance(c, dict) and c.get("role", "user") == "user":
            texts = [p["text"] for p in c.get("parts") or [] if isinstance(p, dict) and "text" in p]
            if texts:
                return texts[-1]
    return ""


def _bad(message: str) -> Error:
    return Error(400, type="INVALID_ARGUMENT", message=message)


_SIGNATURE_BYPASS = frozenset({"skip_thought_signature_validator", "context_engineering_is_the_way_to_go"})


def validate(body: Any, *, count_tokens: bool = False, strict_params: bool = True, model: str = "",
             signatures: set[str] | None = None) -> Error | None:
    if not isinstance(body, dict):
        return _bad("Invalid JSON payload received. Expected an object.")
    if count_tokens and "generateContentRequest" in body:
        inner = body["generateContentRequest"]
        return validate(inner, strict_params=strict_params, model=model,
                        signatures=signatures) if isinstance(inner, dict) else None
    if strict_params:
        for k in body:
            if k not in KNOWN_FIELDS:
                return _bad(f'Invalid JSON payload received. Unknown name "{k}": Cannot find field.')
    contents = body.get("contents")
    if not contents:
        return _bad("* GenerateContentRequest.contents: contents is not specified\n")
    if not isinstance(contents, list):
        return _bad('Invalid JSON payload received. Unknown name "contents": Proto field is not repeating, '
                    "cannot start list.")
    for i, t in enumerate(body.get("tools") or []):
        decls = (t.get("functionDeclarations") or t.get("function_declarations") or []) if isinstance(t, dict) else []
        for j, d in enumerate(decls):
            if not isinstance(d, dict) or not _FN_RE.match(str(d.get("name", ""))):
                return _bad(f"* GenerateContentRequest.tools[{i}].function_declarations[{j}].name: Invalid "
                            "function name. Must start with a letter or an underscore. Must be a-z, A-Z, 0-9, "
                            "or contain underscores, dots, colons and dashes, with a maximum length of 64.\n")
    for i, c in enumerate(contents):
        if not isinstance(c, dict):
            return _bad(f"* GenerateContentRequest.contents[{i}]: must be an object\n")
        if "role" in c and c["role"] not in ("user", "model"):
            return _bad("Please use a valid role: user, model.")
        parts = c.get("parts")
        if not parts:
            return _bad(f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.\n")
        for j, p in enumerate(parts):
            if not isinstance(p, dict):
                continue
            fr = p.get("functionResponse", p.get("function_response"))
            if fr is not None and not (isinstance(fr, dict) and fr.get("name")):
                return _bad(f"* GenerateContentRequest.contents[{i}].parts[{j}].function_response.name: "
                            "Name cannot be empty.\n")
            fc = p.get("functionCall", p.get("function_call"))
            if fc is not None and not (isinstance(fc, dict) and fc.get("name")):
                return _bad(f"* GenerateContentRequest.contents[{i}].parts[{j}].function_call.name: "
                            "Name cannot be empty.\n")
            sig = p.get("thoughtSignature", p.get("thought_signature"))
            if signatures is not None and sig is not None and sig not in signatures \
                    and sig not in _SIGNATURE_BYPASS:
                return _bad("Corrupted thought signature.")
    if model.startswith("gemini-3") and not count_tokens:
        return _check_current_turn_signatures(contents)
    return None


def _check_current_turn_signatures(contents: list[Any]) -> Error | None:
    """Gemini 3: in the current turn (since the last user text), the first functionCall part of every
    model step must carry a thoughtSignature."""
    start = 0
    for i, c in enumerate(contents):
        if c.get("role", "user") == "user" and any(isinstance(p, dict) and "text" in p for p in c["parts"]):
            start = i + 1
    for i in range(start, len(contents)):
        c = contents[i]
        if c.get("role") != "model":
            continue
        calls = [p for p in c["parts"] if isinstance(p, dict) and ("functionCall" in p or "function_call" in p)]
        if calls and not (calls[0].get("thoughtSignature") or calls[0].get("thought_signature")):
            fc = calls[0].get("functionCall") or calls[0].get("function_call") or {}
            return _bad("Function call is missing a thought_signature in functionCall parts. This is required "
                        "for tools to work correctly, and missing thought_signature may lead to degraded model "
                        f"performance. Additional data, function call `default_api:{fc.get('name')}` , position "
                        f"{i + 1}. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for "
                        "more details.")
    return None


# --------------------------------------------------------------------------- rendering


def _include_thoughts(ctx: Ctx) -> bool:
    gc = ctx.body.get("generationConfig") or ctx.body.get("generation_config") or {}
    tc = (gc.get("thinkingConfig") or gc.get("thinking_config") or {}) if isinstance(gc, dict) else {}
    return isinstance(tc, dict) and bool(tc.get("includeThoughts", tc.get("include_thoughts")))


def _usage(reply: Reply, ctx: Ctx, candidates: int | None = None) -> dict[str, Any]:
    u = resolve_usage(reply, ctx.input_estimate)
    cand = u.visible_output if candidates is None else candidates
    um: dict[str, Any] = {"promptTokenCount": u.input_total, "candidatesTokenCount": cand,
                          "totalTokenCount": u.input_total + cand + u.reasoning,
                          "promptTokensDetails": [{"modality": "TEXT", "tokenCount": u.input_total}]}
    if u.cached:
        um["cachedContentTokenCount"] = u.cached
    if u.reasoning:
        um["thoughtsTokenCount"] = u.reasoning
    return um


def _fc(p: ToolCall) -> dict[str, Any]:
    fc: dict[str, Any] = {"name": p.name, "args": p.args_dict}
    if p.id:
        fc["id"] = p.id
    return fc


def render_body(reply: Reply, ctx: Ctx) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    pending_sig: str | None = None
    for p in reply.parts:
        if isinstance(p, Thinking):
            if _include_thoughts(ctx) and p.full:
                parts.append({"text": p.full, "thought": True})
            pending_sig = p.sig
            continue
        if isinstance(p, Text):
            part: dict[str, Any] = {"text": p.full}
        elif isinstance(p, ToolCall):
            part = {"functionCall": _fc(p)}
        else:
            continue
        if pending_sig:
            part["thoughtSignature"] = pending_sig
            pending_sig = None
        parts.append(part)
    if pending_sig or not parts:
        parts.append({"text": "", **({"thoughtSignature": pending_sig} if pending_sig else {})})
    return {"candidates": [{"content": {"parts": parts, "role": "model"},
                            "finishReason": STOP.get(reply.stop(), reply.stop()), "index": 0}],
            "usageMetadata": _usage(reply, ctx),
            "modelVersion": reply.model or ctx.model,
            "responseId": reply.id or rand62(22)}


def stream_chunks(reply: Reply, ctx: Ctx) -> list[dict[str, Any]]:
    """The GenerateContentResponse chunks of a streamed reply (cumulative usage, finish on last)."""
    groups: list[list[dict[str, Any]]] = []
    pending_sig: str | None = None
    for p in reply.parts:
        if isinstance(p, Thinking):
            if _include_thoughts(ctx) and p.full:
                groups += [[{"text": s, "thought": True}] for s in p.pieces()]
            pending_sig = p.sig
        elif isinstance(p, Text):
            groups += [[{"text": s}] for s in p.pieces()]
        elif isinstance(p, ToolCall):
            part: dict[str, Any] = {"functionCall": _fc(p)}
            if pending_sig:
                part["thoughtSignature"] = pending_sig
                pending_sig = None
            # parallel calls arrive together in one chunk
            if groups and groups[-1] and "functionCall" in groups[-1][-1]:
                groups[-1].append(part)
            else:
                groups.append([part])
    if pending_sig or not groups:
        groups.append([{"text": "", **({"thoughtSignature": pending_sig} if pending_sig else {})}])
    u = resolve_usage(reply, ctx.input_estimate)
    sizes = [sum(len(dumps(x)) for x in g if not x.get("thought")) for g in groups]
    total = sum(sizes) or 1
    rid = reply.id or rand62(22)
    chunks, acc = [], 0
    for n, (g, size) in enumerate(zip(groups, sizes)):
        acc += size
        last = n == len(groups) - 1
        cand = u.visible_output if last else min(u.visible_output, max(1, round(u.visible_output * acc / total)))
        cand_obj: dict[str, Any] = {"content": {"parts": g, "role": "model"}, "index": 0}
        if last:
            cand_obj["finishReason"] = STOP.get(reply.stop(), reply.stop())
        chunks.append({"candidates": [cand_obj], "usageMetadata": _usage(reply, ctx, cand),
                       "modelVersion": reply.model or ctx.model, "responseId": rid})
    return chunks


def render_events(reply: Reply, ctx: Ctx) -> list[bytes]:
    crlf = ctx.options.get("gemini_crlf", True)
    chunks = stream_chunks(reply, ctx)
    if ctx.options.get("gemini_sse", True):
        return [sse(c, crlf=crlf) for c in chunks]
    # streamGenerateContent without alt=sse: one JSON array, written incrementally
    out = [("[" if i == 0 else ",\r\n") + dumps(c, indent=2) for i, c in enumerate(chunks)]
    return [s.encode() for s in out] + [b"]"]


def mid_stream_error(f: MidStreamError, ctx: Ctx, seq: int) -> list[bytes]:
    status = f.status or 503
    body = error_body(status, f.message or _MESSAGES.get(status, "Internal error encountered."),
                      f.type or STATUS.get(status, "INTERNAL"))
    if ctx.options.get("gemini_sse", True):
        return [sse(body, crlf=ctx.options.get("gemini_crlf", True))]
    prefix = "[" if seq == 0 else ",\r\n"
    return [(prefix + dumps(body, indent=2)).encode(), b"]"]


def count_tokens_body(n: int) -> dict[str, Any]:
    return {"totalTokens": n, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": n}]}
