"""OpenAI Responses API emulation (POST /v1/responses): bodies, the full SSE event order, errors."""

from __future__ import annotations

from typing import Any

from ._common import Ctx, randhex, resolve_usage, sse
from .openai_chat import (  # noqa: F401  (shared OpenAI auth, errors, headers, models list)
    DEFAULT_MODELS, _bad, auth_error, base_headers, check_tool_name, models_body, new_request_id,
    render_error,
)
from .scripts import Error, MidStreamError, Reply, Text, Thinking, ToolCall

NAME = "openai_responses"
KNOWN_PARAMS = frozenset(
    {
        "background", "conversation", "include", "input", "instructions", "max_output_tokens",
        "max_tool_calls", "metadata", "model", "parallel_tool_calls", "previous_response_id", "prompt",
        "prompt_cache_key", "prompt_cache_retention", "reasoning", "safety_identifier", "service_tier",
        "store", "stream", "stream_options", "temperature", "text", "tool_choice", "tools",
        "top_logprobs", "top_p", "truncation", "user", "context_management", "client_metadata",
    }
)


def last_user_text(body: dict[str, Any]) -> str:
    inp = body.get("input")
    if isinstance(inp, str):
        return inp
    for item in reversed(inp or []):
        if isinstance(item, dict) and item.get("role") == "user":
            c = item.get("content")
            if isinstance(c, str):
                return c
            if isinstance(c, list):
                texts = [p.get("text", "") for p in c if isinstance(p, dict) and "text" in p]
                if texts:
                    return texts[-1]
    return ""


def validate(body: Any, *, strict_params: bool = True, signatures: set[str] | None = None) -> Error | None:
    if not isinstance(body, dict):
        return _bad("Invalid type for request body: expected an object.")
    if strict_params:
        for k in body:
            if k not in KNOWN_PARAMS:
                return _bad(f"Unknown parameter: '{k}'.", k, "unknown_parameter")
    if not body.get("model"):
        return _bad("Missing required parameter: 'model'.", "model", "missing_required_parameter")
    for i, t in enumerate(body.get("tools") or []):
        if isinstance(t, dict) and t.get("type") == "function":
            if e := check_tool_name(t.get("name"), f"tools[{i}].name"):
                return e
    inp = body.get("input")
    if isinstance(inp, list):
        seen: set[str] = set()
        for i, item in enumerate(inp):
            if not isinstance(item, dict):
                return _bad(f"Invalid type for 'input[{i}]': expected an object.", f"input[{i}]", "invalid_type")
            t = item.get("type")
            if t in ("function_call", "custom_tool_call"):
                seen.add(str(item.get("call_id")))
            elif t == "reasoning" and signatures is not None and item.get("encrypted_content") is not None \
                    and item["encrypted_content"] not in signatures:
                return _bad(f"The encrypted content for item {item.get('id', 'rs_unknown')} could not be "
                            "verified. Reason: Encrypted content could not be decrypted or parsed.",
                            None, "invalid_encrypted_content")
            elif t in ("function_call_output", "custom_tool_call_output"):
                if str(item.get("call_id")) not in seen:
                    return _bad(f"No tool call found for function call output with call_id "
                                f"{item.get('call_id')}.", "input")
            elif item.get("role") is not None and item.get("role") not in (
                    "user", "assistant", "system", "developer"):
                return _bad(f"Invalid value: '{item.get('role')}'. Supported values are: 'assistant', "
                            "'system', 'developer', and 'user'.", f"input[{i}].role", "invalid_value")
    elif inp is not None and not isinstance(inp, str):
        return _bad("Invalid type for 'input': expected one of a string or array of input items.",
                    "input", "invalid_type")
    return None


def _usage(reply: Reply, ctx: Ctx) -> dict[str, Any]:
    u = resolve_usage(reply, ctx.input_estimate)
    return {"input_tokens": u.input_total, "input_tokens_details": {"cached_tokens": u.cached},
            "output_tokens": u.output, "output_tokens_details": {"reasoning_tokens": u.reasoning},
            "total_tokens": u.input_total + u.output}


def _want_encrypted(ctx: Ctx) -> bool:
    return "reasoning.encrypted_content" in (ctx.body.get("include") or [])


class _Items:
    """Ids and final shapes of the output items of one reply."""

    def __init__(self, reply: Reply, ctx: Ctx) -> None:
        self.entries: list[tuple[Any, dict[str, Any]]] = []
        for p in reply.parts:
            if isinstance(p, Text):
                item = {"id": "msg_" + randhex(48), "type": "message", "status": "completed",
                        "content": [{"type": "output_text", "annotations": [], "logprobs": [],
                                     "text": p.full}], "role": "assistant"}
            elif isinstance(p, Thinking):
                item = {"id": "rs_" + randhex(48), "type": "reasoning", "summary": [
                    {"type": "summary_text", "text": p.full}] if p.full else []}
                if _want_encrypted(ctx):
                    item["encrypted_content"] = p.sig
            elif isinstance(p, ToolCall):
                item = {"id": "fc_" + randhex(48), "type": "function_call", "status": "completed",
                        "arguments": p.arguments, "call_id": p.id or "call_" + randhex(24), "name": p.name}
            else:
                continue
            self.entries.append((p, item))

    @property
    def output(self) -> list[dict[str, Any]]:
        return [item for _, item in self.entries]


def _response(reply: Reply, ctx: Ctx, rid: str, status: str, output: list[Any],
              usage: Any, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    body = ctx.body
    reasoning = body.get("reasoning") if isinstance(body.get("reasoning"), dict) else {}
    resp: dict[str, Any] = {
        "id": rid, "object": "response", "created_at": ctx.created, "status": status,
        "background": False, "error": None, "incomplete_details": None,
        "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": None, "model": reply.model or ctx.model, "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "safety_identifier": None, "service_tier": "default", "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0), "text": body.get("text") or {
            "format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools") or [],
        "top_logprobs": 0, "top_p": body.get("top_p", 1.0), "truncation": "disabled",
        "usage": usage, "user": None, "metadata": body.get("metadata") or {},
    }
    if extra:
        resp.update(extra)
    return resp


def _terminal(reply: Reply) -> tuple[str, dict[str, Any] | None]:
    stop = reply.stop()
    if stop == "max_tokens":
        return "incomplete", {"reason": "max_output_tokens"}
    if stop in ("content_filter", "refusal"):
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def render_body(reply: Reply, ctx: Ctx) -> dict[str, Any]:
    status, details = _terminal(reply)
    rid = reply.id or "resp_" + randhex(50)
    return _response(reply, ctx, rid, status, _Items(reply, ctx).output, _usage(reply, ctx),
                     {"incomplete_details": details})


def render_events(reply: Reply, ctx: Ctx) -> list[bytes]:
    rid = reply.id or "resp_" + randhex(50)
    ctx.options["responses_id"] = rid
    out: list[bytes] = []

    def ev(data: dict[str, Any]) -> None:
        data = {"type": data["type"], "sequence_number": len(out), **data}
        out.append(sse(data, data["type"]))

    ev({"type": "response.created", "response": _response(reply, ctx, rid, "in_progress", [], None)})
    ev({"type": "response.in_progress", "response": _response(reply, ctx, rid, "in_progress", [], None)})
    items = _Items(reply, ctx)
    for oi, (p, item) in enumerate(items.entries):
        iid = item["id"]
        if isinstance(p, Text):
            ev({"type": "response.output_item.added", "output_index": oi, "item": dict(
                item, status="in_progress", content=[])})
            part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
            ev({"type": "response.content_part.added", "item_id": iid, "output_index": oi,
                "content_index": 0, "part": part})
            for s in p.pieces():
                ev({"type": "response.output_text.delta", "item_id": iid, "output_index": oi,
                    "content_index": 0, "delta": s, "logprobs": []})
            ev({"type": "response.output_text.done", "item_id": iid, "output_index": oi,
                "content_index": 0, "text": p.full, "logprobs": []})
            ev({"type": "response.content_part.done", "item_id": iid, "output_index": oi,
                "content_index": 0, "part": dict(part, text=p.full)})
        elif isinstance(p, Thinking):
            added = dict(item, summary=[])
            ev({"type": "response.output_item.added", "output_index": oi, "item": added})
            if p.full:
                ev({"type": "response.reasoning_summary_part.added", "item_id": iid, "output_index": oi,
                    "summary_index": 0, "part": {"type": "summary_text", "text": ""}})
                for s in p.pieces():
                    ev({"type": "response.reasoning_summary_text.delta", "item_id": iid,
                        "output_index": oi, "summary_index": 0, "delta": s})
                ev({"type": "response.reasoning_summary_text.done", "item_id": iid, "output_index": oi,
                    "summary_index": 0, "text": p.full})
                ev({"type": "response.reasoning_summary_part.done", "item_id": iid, "output_index": oi,
                    "summary_index": 0, "part": {"type": "summary_text", "text": p.full}})
        else:
            ev({"type": "response.output_item.added", "output_index": oi,
                "item": dict(item, status="in_progress", arguments="")})
            for s in p.pieces():
                ev({"type": "response.function_call_arguments.delta", "item_id": iid,
                    "output_index": oi, "delta": s})
            ev({"type": "response.function_call_arguments.done", "item_id": iid, "output_index": oi,
                "arguments": p.arguments})
        ev({"type": "response.output_item.done", "output_index": oi, "item": item})
    status, details = _terminal(reply)
    final = _response(reply, ctx, rid, status, items.output, _usage(reply, ctx),
                      {"incomplete_details": details})
    ev({"type": f"response.{status}", "response": final})
    return out


def mid_stream_error(f: MidStreamError, ctx: Ctx, seq: int) -> list[bytes]:
    code = f.code or "server_error"
    message = f.message or ("The server had an error processing your request. Sorry about that! You can "
                            "retry your request, or contact us through our help center at "
                            "help.openai.com if you keep seeing this error.")
    out: list[bytes] = []
    if f.error_event:
        out.append(sse({"type": "error", "sequence_number": seq, "error": {
            "type": f.type or code, "code": code, "message": message, "param": None}}, "error"))
        seq += 1
    rid = ctx.options.get("responses_id") or "resp_" + randhex(50)
    resp = _response(Reply(), ctx, rid, "failed", [], None,
                     {"error": {"code": code, "message": message}})
    out.append(sse({"type": "response.failed", "sequence_number": seq, "response": resp}, "response.failed"))
    return out
