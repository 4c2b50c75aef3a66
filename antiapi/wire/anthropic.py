"""Anthropic Messages wire format (pure): request, response, stream events, errors, models list.

May import: msgspec, the standard library. Nothing here does I/O.

These Structs are deliberately permissive (unknown fields ignored, never
``forbid_unknown_fields``). Content blocks and stream events are *flat* Structs that hold the
fields of every known type, selected by their ``type`` string, rather than msgspec tagged
unions: Anthropic adds block and event types often, and a tagged union would reject an unknown
tag. Request content blocks stay plain dicts so that unknown block types can be forwarded as is.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

# --------------------------------------------------------------------------- request


class MessageParam(msgspec.Struct):
    """One entry of ``messages``; ``content`` blocks are validated by the translator."""

    role: Literal["user", "assistant", "system"]
    content: str | list[dict]


class CountTokensRequest(msgspec.Struct):
    """``POST /v1/messages/count_tokens`` body (also the base of :class:`MessagesRequest`).

    ``model`` and ``messages`` are optional here only so the translator can report their
    absence with a clearer message than msgspec's.
    """

    model: str | None = None
    messages: list[MessageParam] | None = None
    system: str | list[dict] | None = None
    tools: list[dict] | None = None
    tool_choice: dict | None = None
    thinking: dict | None = None
    output_config: dict | None = None
    metadata: dict | None = None


class MessagesRequest(CountTokensRequest):
    """``POST /v1/messages`` body (``max_tokens`` is required; checked by the translator)."""

    max_tokens: int | None = None
    stop_sequences: list[str] | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stream: bool | None = None


#: Top-level request fields the IR models; every other field goes to ``Request.extras``.
#: (``metadata`` and ``output_config`` are also kept in extras: the IR only takes
#: ``user_id`` / ``effort`` from them.)
MODELED_REQUEST_FIELDS = frozenset(
    {
        "model",
        "messages",
        "system",
        "tools",
        "tool_choice",
        "thinking",
        "max_tokens",
        "stop_sequences",
        "temperature",
        "top_p",
        "top_k",
        "stream",
    }
)

# --------------------------------------------------------------------------- response


class Usage(msgspec.Struct, omit_defaults=True):
    """Token counts. Compatible servers sometimes send ``null``: every field is optional."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class ContentBlock(msgspec.Struct):
    """Any content block of a response (flat: fields of every known type, by ``type``)."""

    type: str = ""
    text: str | None = None
    thinking: str | None = None
    signature: str | None = None
    data: str | None = None
    id: str | None = None
    name: str | None = None
    #: tool_use input, kept undecoded (usually ``{}`` in ``content_block_start``); empty
    #: when absent. (``Raw`` cannot sit in a union with ``None``.)
    input: msgspec.Raw = msgspec.Raw(b"")


class ErrorDetail(msgspec.Struct):
    type: str = "api_error"
    message: str = ""


class Message(msgspec.Struct):
    """A non-stream response body (also the ``message`` of ``message_start``).

    ``type`` is "message", or "error" when the body is an error object (then ``error`` is set).
    """

    type: str = "message"
    id: str | None = None
    model: str | None = None
    role: str = "assistant"
    content: list[ContentBlock] = msgspec.field(default_factory=list)
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: Usage | None = None
    error: ErrorDetail | None = None


# --------------------------------------------------------------------------- stream events


class Delta(msgspec.Struct):
    """``content_block_delta.delta`` or ``message_delta.delta`` (flat)."""

    type: str | None = None
    text: str | None = None
    thinking: str | None = None
    signature: str | None = None
    partial_json: str | None = None
    stop_reason: str | None = None
    stop_sequence: str | None = None


class StreamEvent(msgspec.Struct):
    """Any SSE ``data`` payload of a Messages stream (flat: selected by ``type``)."""

    type: str = ""
    index: int | None = None
    message: Message | None = None
    content_block: ContentBlock | None = None
    delta: Delta | None = None
    usage: Usage | None = None
    error: ErrorDetail | None = None


# --------------------------------------------------------------------------- output (encoding)


class OutUsage(msgspec.Struct):
    """Usage as the gateway sends it to Anthropic clients (every field present)."""

    input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    output_tokens: int = 0


class OutMessage(msgspec.Struct, kw_only=True):
    """A Messages response object as the gateway sends it (non-stream body / message_start)."""

    id: str
    type: str = "message"
    role: str = "assistant"
    model: str
    content: list[Any]
    stop_reason: str | None
    stop_sequence: str | None
    usage: OutUsage


class MessageStartEvent(msgspec.Struct, tag="message_start", tag_field="type"):
    message: OutMessage


class MessageDeltaBody(msgspec.Struct):
    stop_reason: str
    stop_sequence: str | None = None


class MessageDeltaEvent(msgspec.Struct, tag="message_delta", tag_field="type"):
    delta: MessageDeltaBody
    usage: OutUsage


class ErrorBody(msgspec.Struct, tag="error", tag_field="type", omit_defaults=True):
    """``{"type":"error","error":{"type","message"},"request_id"?}`` (HTTP body and SSE event)."""

    error: ErrorDetail
    request_id: str | None = None


class CountTokensResponse(msgspec.Struct):
    input_tokens: int


# --------------------------------------------------------------------------- models list


class ModelInfo(msgspec.Struct, kw_only=True):
    type: str = "model"
    id: str
    display_name: str
    created_at: str


class ModelList(msgspec.Struct):
    data: list[ModelInfo]
    has_more: bool
    first_id: str | None
    last_id: str | None


# --------------------------------------------------------------------------- codecs (immutable)

stream_event_decoder = msgspec.json.Decoder(StreamEvent)
message_decoder = msgspec.json.Decoder(Message)
encoder = msgspec.json.Encoder()
