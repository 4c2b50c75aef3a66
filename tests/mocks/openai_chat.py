"""OpenAI Chat Completions emulation (also shared OpenAI auth, errors and headers)."""

from __future__ import annotations

import re
from typing import Any

from ._common import Ctx, rand62, randhex, resolve_usage, sse
from .scripts import Error, MidStreamError, Reply, Text, Thinking, ToolCall

NAME = "openai_chat"
_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]+$")

STOP = {
    "end": "stop", "max_tokens": "length", "tool_use": "tool_calls", "stop_sequence": "stop",
    "content_filter": "content_filter", "refusal": "content_filter",
}
KNOWN_PARAMS = frozenset(
    {
        "messages", "model", "audio", "frequency_penalty", "function_call", "functions",
        "logit_bias", "logprobs", "max_completion_tokens", "max_tokens", "metadata", "modalities",
        "n", "parallel_tool_calls", "prediction", "presence_penalty", "prompt_cache_key",
        "prompt_cache_retention", "reasoning_effort", "response_format", "safety_identifier", "seed",
        "service_tier", "stop", "store", "stream", "stream_options", "temperature", "tool_choice",
        "tools", "top_logprobs", "top_p", "user", "verbosity", "web_search_options",
    }
)
DEFAULT_MODELS = ["gpt-4.1", "gpt-4o-mini", "gpt-5", "o3"]
DEFAULT_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")

_DEFAULTS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key",
          "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys."),
    403: ("invalid_request_error", "unsupported_country_region_territory",
          "Country, region, or territory not supported"),
    404: ("invalid_request_error", "model_not_found",
          "The model does not exist or you do not have access to it."),
    429: ("tokens", "rate_limit_exceeded", ""),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}
_QUOTA_MESSAGE = ("You exceeded your current quota, please check your plan and billing details. For more "
                  "information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.")


def new_request_id() -> str:
    return "req_" + randhex(32)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def error_fields(err: Error) -> dict[str, Any]:
    """The ``{"message","type","param","code"}`` object for an Error (OpenAI conventions)."""
    dtype, dcode, dmsg = _DEFAULTS.get(err.status, ("server_error" if err.status >= 500
                                                    else "invalid_request_error", None, "Error"))
    code = err.code if err.code is not None else dcode
    type_ = err.type or ("insufficient_quota" if code == "insufficient_quota" else dtype)
    message = err.message
    if message is None:
        if code == "insufficient_quota":
            message = _QUOTA_MESSAGE
        elif err.status == 429:
            wait = f"{_num(err.retry_after)}s" if err.retry_after is not None else "20s"
            message = ("Rate limit reached for gpt-4.1 in organization org-mock on tokens per min (TPM): "
                       f"Limit 30000, Used 30000, Requested 1000. Please try again in {wait}. Visit "
                       "https://platform.openai.com/account/rate-limits to learn more.")
        else:
            message = dmsg
    return {"message": message, "type": type_, "param": err.param, "code": code}


def render_error(err: Error, request_id: str) -> tuple[int, dict[str, str], Any]:
    headers = dict(err.headers)
    if err.retry_after is not None:
        headers.setdefault("retry-after", _num(err.retry_after))
    if err.body is not None:
        return err.status, headers, err.body
    return err.status, headers, {"error": error_fields(err)}


def base_headers(request_id: str) -> dict[str, str]:
    return {
        "x-request-id": request_id,
        "openai-organization": "org-mock",
        "openai-processing-ms": "42",
        "openai-version": "2020-10-01",
        "x-ratelimit-limit-requests": "10000",
        "x-ratelimit-remaining-requests": "9999",
        "x-ratelimit-reset-requests": "6ms",
        "x-ratelimit-limit-tokens": "30000000",
        "x-ratelimit-remaining-tokens": "29999000",
        "x-ratelimit-reset-tokens": "2ms",
    }


def auth_error(headers: dict[str, str], key: str) -> Error | None:
    auth = headers.get("authorization")
    if not auth or not auth.lower().startswith("bearer ") or not auth[7:].strip():
        return Error(401, type="invalid_request_error", code=None, message=(
            "You didn't provide an API key. You need to provide your API key in an Authorization header "
            "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank "
            "username) if you're accessing the API from your browser and are prompted for a username and "
            "password. You can obtain an API key from https://platform.openai.com/account/api-keys."))
    given = auth[7:].strip()
    if given != key:
        masked = given[:3] + "*" * max(0, len(given) - 7) + given[-4:] if len(given) > 7 else "*" * len(given)
        return Error(401, type="invalid_request_error", code="invalid_api_key", message=(
            f"Incorrect API key provided: {masked}. You can find your API key at "
            "https://platform.openai.com/account/api-keys."))
    return None


def models_body(ids: list[str]) -> dict[str, Any]:
    return {"object": "list", "data": [
        {"id": m, "object": "model", "created": 1700000000, "owned_by": "system"} for m in ids]}


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text", "") for p in content if isinstance(p, dict) and "text" in p]
        return texts[-1] if texts else ""
    return ""


def last_user_text(body: dict[str, Any]) -> str:
    for m in reversed(body.get("messages") or []):
        if isinstance(m, dict) and m.get("role") == "user":
            return _text_of(m.get("content"))
    return ""


# --------------------------------------------------------------------------- validation


def _bad(message: str, param: str | None = None, code: str | None = None) -> Error:
    return Error(400, type="invalid_request_error", message=message, param=param, code=code)


def check_tool_name(name: Any, path: str) -> Error | None:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        return _bad(f"Invalid '{path}': string does not match pattern. Expected a string that matches "
                    "the pattern '^[a-zA-Z0-9_-]+$'.", path, "invalid_value")
    if len(name) > 64:
        return _bad(f"Invalid '{path}': string too long. Expected a string with maximum length 64, but "
                    f"got a string with length {len(name)} instead.", path, "string_above_max_length")
    return None


def validate(body: Any, *, strict_params: bool = True,
             reasoning_prefixes: tuple[str, ...] = DEFAULT_REASONING_PREFIXES,
             max_output_tokens: int | None = None) -> Error | None:
    if not isinstance(body, dict):
        return _bad("Invalid type for request body: expected an object.")
    if strict_params:
        for k in body:
            if k not in KNOWN_PARAMS:
                return _bad(f"Unrecognized request argument supplied: {k}")
    model = body.get("model")
    if not model:
        return _bad("you must provide a model parameter")
    msgs = body.get("messages")
    if msgs is None:
        return _bad("Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
    if not isinstance(msgs, list):
        return _bad(f"Invalid type for 'messages': expected an array of objects, but got "
                    f"{type(msgs).__name__} instead.", "messages", "invalid_type")
    if not msgs:
        return _bad("Invalid 'messages': empty array. Expected an array with minimum length 1, but got an "
                    "empty array instead.", "messages", "empty_array")
    if "max_tokens" in body and str(model).startswith(tuple(reasoning_prefixes)):
        return _bad("Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                    "'max_completion_tokens' instead.", "max_tokens", "unsupported_parameter")
    for key in ("max_completion_tokens", "max_tokens"):
        n = body.get(key)
        if max_output_tokens is not None and isinstance(n, int) and n > max_output_tokens:
            # the API's wording (also for max_completion_tokens), param and code
            return _bad(f"max_tokens is too large: {n}. This model supports at most {max_output_tokens} completion "
                        f"tokens, whereas you provided {n}.", key, "invalid_value")
    if body.get("stream_options") is not None and not body.get("stream"):
        return _bad("The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                    "stream_options")
    for i, t in enumerate(body.get("tools") or []):
        fn = t.get("function") if isinstance(t, dict) else None
        if isinstance(fn, dict) and (e := check_tool_name(fn.get("name"), f"tools[{i}].function.name")):
            return e
    return _validate_messages(msgs)


_ROLES = ("system", "assistant", "user", "function", "tool", "developer")


def _validate_messages(msgs: list[Any]) -> Error | None:
    pending: set[str] | None = None  # tool_call ids still awaiting a tool message
    owner = -1
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            return _bad(f"Invalid type for 'messages[{i}]': expected an object, but got "
                        f"{type(m).__name__} instead.", f"messages[{i}]", "invalid_type")
        role = m.get("role")
        if role not in _ROLES:
            return _bad(f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', "
                        "'function', 'tool', and 'developer'.", f"messages[{i}].role", "invalid_value")
        if role == "tool":
            if pending is None or m.get("tool_call_id") not in pending:
                return _bad("Invalid parameter: messages with role 'tool' must be a response to a "
                            "preceeding message with 'tool_calls'.", f"messages.[{i}].role")
            pending.discard(m["tool_call_id"])
            continue
        if pending:
            return _missing(owner, pending)
        pending = None
        if role == "assistant" and m.get("tool_calls"):
            pending = set()
            for j, tc in enumerate(m["tool_calls"]):
                if not isinstance(tc, dict) or not tc.get("id"):
                    return _bad(f"Missing required parameter: 'messages[{i}].tool_calls[{j}].id'.",
                                f"messages[{i}].tool_calls[{j}].id", "missing_required_parameter")
                pending.add(tc["id"])
            owner = i
    if pending:
        return _missing(owner, pending)
    return None


def _missing(owner: int, pending: set[str]) -> Error:
    return _bad("An assistant message with 'tool_calls' must be followed by tool messages responding to "
                "each 'tool_call_id'. The following tool_call_ids did not have response messages: "
                + ", ".join(sorted(pending)), f"messages.[{owner}].role")


# --------------------------------------------------------------------------- rendering


def _usage(reply: Reply, ctx: Ctx) -> dict[str, Any]:
    u = resolve_usage(reply, ctx.input_estimate)
    return {
        "prompt_tokens": u.input_total,
        "completion_tokens": u.output,
        "total_tokens": u.input_total + u.output,
        "prompt_tokens_details": {"cached_tokens": u.cached, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    }


def _call_ids(reply: Reply) -> list[str]:
    return [p.id or "call_" + rand62(24) for p in reply.parts if isinstance(p, ToolCall)]


def render_body(reply: Reply, ctx: Ctx) -> dict[str, Any]:
    texts = [p.full for p in reply.parts if isinstance(p, Text)]
    thinking = [p.full for p in reply.parts if isinstance(p, Thinking)]
    calls = [p for p in reply.parts if isinstance(p, ToolCall)]
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None,
                               "refusal": None, "annotations": []}
    if thinking:
        message["reasoning_content"] = "".join(thinking)
    if calls:
        message["tool_calls"] = [
            {"id": cid, "type": "function", "function": {"name": p.name, "arguments": p.arguments}}
            for cid, p in zip(_call_ids(reply), calls)
        ]
    return {
        "id": reply.id or "chatcmpl-" + rand62(29),
        "object": "chat.completion",
        "created": ctx.created,
        "model": reply.model or ctx.model,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": STOP.get(reply.stop(), reply.stop())}],
        "usage": _usage(reply, ctx),
        "service_tier": "default",
        "system_fingerprint": "fp_mock0001",
    }


def render_events(reply: Reply, ctx: Ctx) -> list[bytes]:
    opts = ctx.body.get("stream_options")
    include_usage = isinstance(opts, dict) and bool(opts.get("include_usage"))
    cid = reply.id or "chatcmpl-" + rand62(29)
    model = reply.model or ctx.model

    def chunk(delta: dict[str, Any] | None, finish: str | None = None) -> bytes:
        c: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": ctx.created,
                             "model": model, "service_tier": "default", "system_fingerprint": "fp_mock0001",
                             "choices": [] if delta is None else [
                                 {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        if include_usage:
            c["usage"] = _usage(reply, ctx) if delta is None else None
        return sse(c)

    out = [chunk({"role": "assistant", "content": "", "refusal": None})]
    ids = iter(_call_ids(reply))
    calls: list[tuple[int, str, ToolCall]] = []
    for p in reply.parts:
        if isinstance(p, Text):
            out += [chunk({"content": s}) for s in p.pieces()]
        elif isinstance(p, Thinking):
            out += [chunk({"reasoning_content": s}) for s in p.pieces()]
        elif isinstance(p, ToolCall):
            calls.append((len(calls), next(ids), p))
            if not reply.parallel_interleaved:
                out += _call_deltas([calls[-1]], chunk)
    if reply.parallel_interleaved and calls:
        out += _call_deltas(calls, chunk)
    out.append(chunk({}, STOP.get(reply.stop(), reply.stop())))
    if include_usage:
        out.append(chunk(None))
    out.append(b"data: [DONE]\n\n")
    return out


def _call_deltas(calls: list[tuple[int, str, ToolCall]], chunk: Any) -> list[bytes]:
    """Headers (id + name) for every call first, then argument pieces round-robin by index."""
    out = [chunk({"tool_calls": [{"index": i, "id": cid, "type": "function",
                                  "function": {"name": p.name, "arguments": ""}}]}) for i, cid, p in calls]
    pieces = [(i, p.pieces()) for i, _, p in calls]
    for r in range(max(len(ps) for _, ps in pieces)):
        for i, ps in pieces:
            if r < len(ps):
                out.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": ps[r]}}]}))
    return out


def mid_stream_error(f: MidStreamError, ctx: Ctx, seq: int) -> list[bytes]:
    err = Error(f.status or 500, type=f.type, code=f.code, message=f.message)
    return [sse({"error": error_fields(err)})]
