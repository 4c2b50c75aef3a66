"""The contract every dialect module implements (pure).

A dialect module is ``antiapi.translate.<name>`` for ``name`` in :data:`DIALECTS`; it exposes
module-level functions and classes with exactly these names and signatures (Gemini is an
upstream-only dialect: it implements the upstream half only).

Client half (the gateway speaks this dialect to a client)::

    parse_request(body: bytes) -> ir.Request
        Decode and validate a client request body. Raises ``errors.InvalidRequest`` whose
        message names the field (JSON path) and what is wrong, e.g.
        "messages[2].content: expected a string or a list of content blocks".
        Unknown fields are tolerated; unknown content-block types become ``ir.RawPart``.
    class StreamEncoder(req: ir.Request, model: str)
        feed(ev: ir.Event) -> bytes     # SSE bytes for the client ("" when nothing to send)
        An ``ir.Error`` event produces the dialect's in-stream error (after closing what is
        open; never a normal terminal event after it). ``ir.End`` produces the normal terminal
        events (Anthropic message_delta+message_stop, Chat finish/usage chunks + [DONE],
        Responses response.completed). ``model`` is the name echoed to the client.
    render_response(resp: ir.Response, req: ir.Request, model: str) -> bytes
        The non-stream JSON body for the client.
    render_error(err: errors.GatewayError) -> bytes
        The HTTP error body in this dialect (the status is ``err.status``).
    count_tokens_response(n: int) -> bytes     (anthropic only)

Upstream half (the gateway speaks this dialect to an upstream)::

    render_request(req: ir.Request, target: ir.Target) -> ir.Outgoing
        The upstream body (a dict) with every field the dialect requires (e.g. Anthropic
        max_tokens, Chat stream_options.include_usage when streaming), tool names / call ids
        normalised with reverse maps in the Outgoing.
    class StreamDecoder(out: ir.Outgoing)
        feed(ev: sse.SSEEvent) -> list[ir.Event]
        finish() -> list[ir.Event]   # at upstream EOF: End if the stream completed, otherwise
                                     # an ir.Error("api_error", "...ended before completion")
        Tool names and call ids are restored through ``out.tool_names`` / ``out.call_ids``.
    decode_response(body: bytes, out: ir.Outgoing) -> list[ir.Event]
        A non-stream upstream body as the same event sequence a stream would give.
    parse_error(status: int, headers: Mapping[str, str], body: bytes) -> errors.UpstreamHTTPError
        An upstream error answer as the typed error (kind, status, message with the upstream's
        own text, code, retry_after from headers/body).

Fast path (same dialect in and out; see ``antiapi.server.pipeline``) uses
``antiapi.translate.fastpath`` and needs nothing from the dialect but ``scan_usage``::

    scan_usage(ev: sse.SSEEvent) -> ir.Usage | None   # cheap; only events that carry usage
"""

from __future__ import annotations

import importlib
from types import ModuleType

DIALECTS = ("anthropic", "openai_chat", "openai_responses", "gemini")
CLIENT_DIALECTS = ("anthropic", "openai_chat", "openai_responses")

#: The provider whose signatures a dialect's clients carry natively.
NATIVE_PROVIDER = {
    "anthropic": "anthropic",
    "openai_chat": "openai",
    "openai_responses": "openai",
    "gemini": "gemini",
}


def load(name: str) -> ModuleType:
    if name not in DIALECTS:
        raise KeyError(name)
    return importlib.import_module(f"antiapi.translate.{name}")


def dialect_for_path(path: str) -> str:
    """The client dialect of an endpoint path: Anthropic for ``/v1/messages*``, Responses for
    ``/v1/responses``, OpenAI Chat otherwise (errors on unknown paths use the OpenAI shape)."""
    p = path.rstrip("/")
    if p.endswith("/messages") or "/messages/" in p or p == "/messages":
        return "anthropic"
    if p.endswith("/responses"):
        return "openai_responses"
    return "openai_chat"
