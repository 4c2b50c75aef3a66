"""Anthropic Messages API emulation: auth, validation, bodies, SSE events, errors."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from ._common import Ctx, dumps, rand62, resolve_usage, sse
from .scripts import Error, MidStreamError, RedactedThinking, Reply, Text, Thinking, ToolCall

NAME = "anthropic"
_ID_RE = re.compile(r"^[a-zA-Z0-9_-]+$")
_TOOL_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_MESSAGES = {
    "invalid_request_error": "Invalid request",
    "authentication_error": "invalid x-api-key",
    "billing_error": "Your credit balance is too low to access the Anthropic API.",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "not_found_error": "Not found",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "rate_limit_error": (
        "This request would exceed the rate limit for your organization of 50 requests per minute. "
        "For details, refer to: https://docs.claude.com/en/api/rate-limits. You can see the response "
        "headers for current usage. Please reduce the prompt length or the maximum tokens requested, "
        "or try again later."
    ),
    "api_error": "Internal server error",
    "timeout_error": "Request timed out",
    "overloaded_error": "Overloaded",
}
STOP = {
    "end": "end_turn", "max_tokens": "max_tokens", "tool_use": "tool_use",
    "stop_sequence": "stop_sequence", "refusal": "refusal", "content_filter": "refusal",
}
KNOWN_PARAMS = frozenset(
    {
        "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream",
        "temperature", "top_p", "top_k", "tools", "tool_choice", "thinking", "service_tier",
        "container", "mcp_servers", "context_management", "output_config", "output_format",
        "inference_geo", "cache_control", "speed",
    }
)
DEFAULT_MODELS = ["claude-sonnet-4-6", "claude-opus-4-7", "claude-haiku-4-5-20251001"]


def new_request_id() -> str:
    return "req_011C" + rand62(20)


def error_body(type_: str, message: str, request_id: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "error", "error": {"type": type_, "message": message}}
    if request_id:
        body["request_id"] = request_id
    return body


def render_error(err: Error, request_id: str) -> tuple[int, dict[str, str], Any]:
    """Status, extra headers and body (dict or raw) for an Error."""
    type_ = err.type or ERROR_TYPES.get(err.status) or (
        "api_error" if err.status >= 500 else "invalid_request_error"
    )
    headers = dict(err.headers)
    if err.retry_after is not None:
        headers.setdefault("retry-after", _num(err.retry_after))
    if err.body is not None:
        return err.status, headers, err.body
    return err.status, headers, error_body(type_, err.message or _MESSAGES.get(type_, "Error"), request_id)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def base_headers(request_id: str) -> dict[str, str]:
    reset = (datetime.now(timezone.utc) + timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    h = {"request-id": request_id, "anthropic-organization-id": "00000000-0000-4000-8000-00000000a11c"}
    for kind, limit in (("requests", 4000), ("tokens", 2000000), ("input-tokens", 1600000),
                        ("output-tokens", 400000)):
        h[f"anthropic-ratelimit-{kind}-limit"] = str(limit)
        h[f"anthropic-ratelimit-{kind}-remaining"] = str(limit - 1)
        h[f"anthropic-ratelimit-{kind}-reset"] = reset
    return h


def auth_error(headers: dict[str, str], key: str) -> Error | None:
    given = headers.get("x-api-key")
    auth = headers.get("authorization", "")
    if given is None and auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    if given is None:
        return Error(401, type="authentication_error", message="x-api-key header is required")
    if given != key:
        return Error(401, type="authentication_error", message="invalid x-api-key")
    if not headers.get("anthropic-version"):
        return Error(400, type="invalid_request_error", message="anthropic-version: header is required")
    return None


def models_body(ids: list[str], query: dict[str, str] | None = None) -> dict[str, Any]:
    """``GET /v1/models``: pages of ``limit`` (default 20, 1..1000) after ``after_id``, as the API."""
    q = query or {}
    limit = max(1, min(1000, int(q.get("limit") or 20)))
    start = ids.index(q["after_id"]) + 1 if q.get("after_id") in ids else 0
    page = ids[start:start + limit]
    data = [
        {"type": "model", "id": m, "display_name": m.replace("-", " ").title(),
         "created_at": "2025-09-29T00:00:00Z"}
        for m in page
    ]
    return {"data": data, "has_more": start + limit < len(ids), "first_id": page[0] if page else None,
            "last_id": page[-1] if page else None}


def last_user_text(body: dict[str, Any]) -> str:
    for m in reversed(body.get("messages") or []):
        if isinstance(m, dict) and m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, str):
                return c
            if isinstance(c, list):
                texts = [b.get("text", "") for b in c if isinstance(b, dict) and b.get("type") == "text"]
                if texts:
                    return texts[-1]
    return ""


# --------------------------------------------------------------------------- validation


def _bad(message: str) -> Error:
    return Error(400, type="invalid_request_error", message=message)


def validate(body: Any, *, count_tokens: bool = False, strict_params: bool = True,
             alternation: bool = True, signatures: set[str] | None = None) -> Error | None:
    """Return a 400 Error like the real API's for a bad request, or None."""
    if not isinstance(body, dict):
        return _bad("Input should be a valid dictionary")
    if strict_params:
        allowed = KNOWN_PARAMS - {"max_tokens", "stream", "stop_sequences", "temperature", "top_p",
                                  "top_k", "metadata", "service_tier"} if count_tokens else KNOWN_PARAMS
        for k in body:
            if k not in allowed:
                return _bad(f"{k}: Extra inputs are not permitted")
    if "model" not in body:
        return _bad("model: Field required")
    if not count_tokens:
        mt = body.get("max_tokens")
        if mt is None:
            return _bad("max_tokens: Field required")
        if not isinstance(mt, int) or isinstance(mt, bool) or mt < 1:
            return _bad("max_tokens: Input should be greater than or equal to 1")
    msgs = body.get("messages")
    if msgs is None:
        return _bad("messages: Field required")
    if not isinstance(msgs, list):
        return _bad("messages: Input should be a valid list")
    system = body.get("system")
    if isinstance(system, list):
        for j, b in enumerate(system):
            if isinstance(b, dict) and b.get("type") == "text" and not b.get("text"):
                return _bad(f"system.{j}.text: text content blocks must be non-empty")
    for i, t in enumerate(body.get("tools") or []):
        if isinstance(t, dict) and "name" in t and not _TOOL_NAME_RE.match(str(t["name"])):
            return _bad(f"tools.{i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'")
    if (e := _validate_thinking(body, count_tokens)) is not None:
        return e
    return (_validate_messages(msgs, alternation) or _check_thinking_history(body, msgs)
            or _check_signatures(msgs, signatures))


def _check_thinking_history(body: dict[str, Any], msgs: list[Any]) -> Error | None:
    """With thinking on, the assistant message before a trailing tool_result turn must start with
    a thinking block (the real API's rule for tool loops)."""
    th = body.get("thinking")
    if not (isinstance(th, dict) and th.get("type") in ("enabled", "adaptive")) or len(msgs) < 2:
        return None
    last, prev = msgs[-1], msgs[-2]
    if last["role"] != "user" or prev["role"] != "assistant":
        return None
    if not any(isinstance(b, dict) and b.get("type") == "tool_result" for b in _blocks(last)):
        return None
    blocks = _blocks(prev) or [{"type": "text"}]
    first = blocks[0].get("type") if isinstance(blocks[0], dict) else None
    if first in ("thinking", "redacted_thinking"):
        return None
    return _bad(f"messages.{len(msgs) - 2}.content.0.type: Expected `thinking` or `redacted_thinking`, but "
                f"found `{first}`. When `thinking` is enabled, a final `assistant` message must start with a "
                "thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). We "
                "recommend you include thinking blocks from previous turns. To avoid this requirement, "
                "disable `thinking`. Please consult our documentation at "
                "https://docs.claude.com/en/docs/build-with-claude/extended-thinking")


def _check_signatures(msgs: list[Any], issued: set[str] | None) -> Error | None:
    """Thinking signatures must be ones this upstream issued (foreign/made-up ones are rejected)."""
    if issued is None:
        return None
    for i, m in enumerate(msgs):
        if m["role"] != "assistant":
            continue
        for j, b in enumerate(_blocks(m)):
            if isinstance(b, dict) and b.get("type") == "thinking" and b.get("signature") not in issued:
                return _bad(f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block")
    return None


def _validate_thinking(body: dict[str, Any], count_tokens: bool) -> Error | None:
    th = body.get("thinking")
    if th is None:
        return None
    if not isinstance(th, dict) or th.get("type") not in ("enabled", "disabled", "adaptive"):
        tag = th.get("type") if isinstance(th, dict) else None
        return _bad(f"thinking: Input tag '{tag}' found using 'type' does not match any of the "
                    "expected tags: 'adaptive', 'disabled', 'enabled'")
    if th["type"] != "enabled":
        return None
    budget = th.get("budget_tokens")
    if budget is None:
        return _bad("thinking.enabled.budget_tokens: Field required")
    if not isinstance(budget, int) or budget < 1024:
        return _bad("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
    if not count_tokens and budget >= body.get("max_tokens", 0):
        return _bad("`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our "
                    "documentation at https://docs.claude.com/en/docs/build-with-claude/"
                    "extended-thinking#max-tokens-and-context-window-size")
    temp = body.get("temperature")
    if temp is not None and temp != 1:
        return _bad("`temperature` may only be set to 1 when thinking is enabled or in interleaved "
                    "thinking mode. Please consult our documentation at https://docs.claude.com/en/"
                    "docs/build-with-claude/extended-thinking#feature-compatibility")
    tc = body.get("tool_choice")
    if isinstance(tc, dict) and tc.get("type") in ("any", "tool"):
        return _bad("Thinking may not be enabled when tool_choice forces tool use.")
    return None


def _blocks(m: dict[str, Any]) -> list[Any]:
    c = m.get("content")
    return c if isinstance(c, list) else []


def _validate_messages(msgs: list[Any], alternation: bool) -> Error | None:
    prev_role = None
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            return _bad(f"messages.{i}: Input should be a valid dictionary")
        role = m.get("role")
        if role not in ("user", "assistant"):
            return _bad(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if "content" not in m:
            return _bad(f"messages.{i}.content: Field required")
        content = m["content"]
        last_assistant = i == len(msgs) - 1 and role == "assistant"
        if (content == "" or content == []) and not last_assistant:
            return _bad(f"messages.{i}: all messages must have non-empty content except for the "
                        "optional final assistant message")
        for j, b in enumerate(_blocks(m)):
            if not isinstance(b, dict):
                continue
            bt = b.get("type")
            if bt == "text":
                text = b.get("text")
                if not text:
                    return _bad("messages: text content blocks must be non-empty")
                if isinstance(text, str) and not text.strip():
                    return _bad("messages: text content blocks must contain non-whitespace text")
            elif bt in ("tool_use", "server_tool_use") and not _ID_RE.match(str(b.get("id", ""))):
                return _bad(f"messages.{i}.content.{j}.{bt}.id: String should match pattern "
                            "'^[a-zA-Z0-9_-]+$'")
            elif bt == "tool_result" and not _ID_RE.match(str(b.get("tool_use_id", ""))):
                return _bad(f"messages.{i}.content.{j}.tool_result.tool_use_id: String should match "
                            "pattern '^[a-zA-Z0-9_-]+$'")
        if alternation:
            if i == 0 and role != "user":
                return _bad('messages: first message must use the "user" role')
            if role == prev_role:
                return _bad('messages: roles must alternate between "user" and "assistant", but found '
                            f'multiple "{role}" roles in a row')
        prev_role = role
    return _check_results(msgs) or _check_uses(msgs)


def _check_results(msgs: list[Any]) -> Error | None:
    """Every tool_result must answer a tool_use of the previous (assistant) message."""
    for i, m in enumerate(msgs):
        if m["role"] != "user":
            continue
        prev = msgs[i - 1] if i > 0 else None
        uses = {b.get("id") for b in _blocks(prev) if isinstance(b, dict) and b.get("type") == "tool_use"} \
            if prev is not None and prev["role"] == "assistant" else set()
        for j, b in enumerate(_blocks(m)):
            if isinstance(b, dict) and b.get("type") == "tool_result" and b.get("tool_use_id") not in uses:
                return _bad(f"messages.{i}.content.{j}: unexpected `tool_use_id` found in "
                            f"`tool_result` blocks: {b.get('tool_use_id')}. Each `tool_result` block "
                            "must have a corresponding `tool_use` block in the previous message.")
    return None


def _check_uses(msgs: list[Any]) -> Error | None:
    """Every tool_use (except in a final assistant message) needs a tool_result in the next message."""
    for i, m in enumerate(msgs):
        if m["role"] != "assistant" or i + 1 >= len(msgs):
            continue
        uses = [b.get("id") for b in _blocks(m) if isinstance(b, dict) and b.get("type") == "tool_use"]
        nxt = msgs[i + 1]
        results = {b.get("tool_use_id") for b in _blocks(nxt)
                   if isinstance(b, dict) and b.get("type") == "tool_result"} if nxt["role"] == "user" else set()
        missing = [u for u in uses if u not in results]
        if missing:
            return _bad(f"messages.{i}: `tool_use` ids were found without `tool_result` blocks "
                        f"immediately after: {', '.join(missing)}. Each `tool_use` block must have a "
                        "corresponding `tool_result` block in the next message.")
    return None


# --------------------------------------------------------------------------- rendering


def _tool_id(p: ToolCall) -> str:
    return p.id or "toolu_01" + rand62(22)


def _usage(reply: Reply, ctx: Ctx) -> dict[str, Any]:
    u = resolve_usage(reply, ctx.input_estimate)
    return {
        "input_tokens": max(0, u.input_total - u.cached - u.cache_creation),
        "cache_creation_input_tokens": u.cache_creation,
        "cache_read_input_tokens": u.cached,
        "output_tokens": u.output,
    }


def _message_id(reply: Reply) -> str:
    return reply.id or "msg_01" + rand62(22)


def render_body(reply: Reply, ctx: Ctx) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for p in reply.parts:
        if isinstance(p, Text):
            content.append({"type": "text", "text": p.full})
        elif isinstance(p, Thinking):
            content.append({"type": "thinking", "thinking": p.full, "signature": p.sig})
        elif isinstance(p, RedactedThinking):
            content.append({"type": "redacted_thinking", "data": p.data})
        elif isinstance(p, ToolCall):
            content.append({"type": "tool_use", "id": _tool_id(p), "name": p.name, "input": p.args_dict})
    usage = _usage(reply, ctx)
    usage["service_tier"] = "standard"
    return {
        "id": _message_id(reply),
        "type": "message",
        "role": "assistant",
        "model": reply.model or ctx.model,
        "content": content,
        "stop_reason": STOP.get(reply.stop(), reply.stop()),
        "stop_sequence": None,
        "usage": usage,
    }


def render_events(reply: Reply, ctx: Ctx) -> list[bytes]:
    out: list[bytes] = []

    def ev(data: dict[str, Any]) -> None:
        out.append(sse(data, data["type"]))

    usage = _usage(reply, ctx)
    start_usage = dict(usage, output_tokens=1, service_tier="standard")
    ev({"type": "message_start", "message": {
        "id": _message_id(reply), "type": "message", "role": "assistant",
        "model": reply.model or ctx.model, "content": [], "stop_reason": None,
        "stop_sequence": None, "usage": start_usage}})
    pinged = not reply.ping
    for idx, p in enumerate(reply.parts):
        if isinstance(p, Text):
            ev({"type": "content_block_start", "index": idx, "content_block": {"type": "text", "text": ""}})
            deltas = [{"type": "text_delta", "text": s} for s in p.pieces()]
        elif isinstance(p, Thinking):
            ev({"type": "content_block_start", "index": idx,
                "content_block": {"type": "thinking", "thinking": "", "signature": ""}})
            deltas = [{"type": "thinking_delta", "thinking": s} for s in p.pieces()]
            deltas.append({"type": "signature_delta", "signature": p.sig})
        elif isinstance(p, RedactedThinking):
            ev({"type": "content_block_start", "index": idx,
                "content_block": {"type": "redacted_thinking", "data": p.data}})
            deltas = []
        else:
            ev({"type": "content_block_start", "index": idx, "content_block": {
                "type": "tool_use", "id": _tool_id(p), "name": p.name, "input": {}}})
            deltas = [{"type": "input_json_delta", "partial_json": s} for s in p.pieces()]
        if not pinged:
            ev({"type": "ping"})
            pinged = True
        for d in deltas:
            ev({"type": "content_block_delta", "index": idx, "delta": d})
        ev({"type": "content_block_stop", "index": idx})
    if not pinged:
        ev({"type": "ping"})
    ev({"type": "message_delta",
        "delta": {"stop_reason": STOP.get(reply.stop(), reply.stop()), "stop_sequence": None},
        "usage": usage})
    ev({"type": "message_stop"})
    return out


def mid_stream_error(f: MidStreamError, ctx: Ctx, seq: int) -> list[bytes]:
    type_ = f.type or "overloaded_error"
    body = {"type": "error", "error": {"type": type_, "message": f.message or _MESSAGES.get(type_, "Error")}}
    return [sse(dumps(body), "error")]


def count_tokens_body(n: int) -> dict[str, Any]:
    return {"input_tokens": n}
