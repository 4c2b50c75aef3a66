"""The neutral intermediate representation every dialect translates to and from (pure).

May import: msgspec, the standard library, ``antiapi.errors``. Nothing here does I/O.

A client request is parsed into :class:`Request`; the upstream body is rendered from it. An
upstream response (streamed or not) is decoded into a sequence of :data:`Event`; a client stream
is encoded from those events, and a non-stream client body is rendered from the
:class:`Response` that :class:`antiapi.translate.aggregate.Aggregator` builds from them.

Event grammar produced by every upstream decoder::

    Start (BlockStart (Delta)* BlockStop | UsageEvent)* [Finish] [UsageEvent]* End
    | ... Error              (an error ends the sequence: no Finish/End after it)

Blocks are identified by ``index`` (unique per response, assigned by the decoder, starting at
0, increasing in the order blocks start). Several blocks MAY be open at once (parallel tool
calls interleave in OpenAI streams); encoders for dialects that cannot interleave (Anthropic)
buffer. ``Finish`` may come before the final ``UsageEvent`` (OpenAI sends usage after the
finish chunk); encoders must wait for ``End`` before emitting their closing events.
"""

from __future__ import annotations

from typing import Literal, Union

import msgspec

# --------------------------------------------------------------------------- content parts

Provider = Literal["anthropic", "openai", "gemini"]


class TextPart(msgspec.Struct, tag="text", omit_defaults=True):
    text: str
    #: Anthropic cache_control object, kept for Anthropic upstreams only.
    cache: dict | None = None


class ImagePart(msgspec.Struct, tag="image", omit_defaults=True):
    """Either ``url`` (http(s) URL) or ``data`` (base64, no ``data:`` prefix) + ``media_type``."""

    url: str | None = None
    data: str | None = None
    media_type: str | None = None
    detail: str | None = None


class DocumentPart(msgspec.Struct, tag="document", omit_defaults=True):
    """A file (PDF, text). ``data`` is base64."""

    data: str | None = None
    url: str | None = None
    media_type: str | None = None
    filename: str | None = None


class ToolCallPart(msgspec.Struct, tag="tool_call", omit_defaults=True):
    id: str
    name: str
    #: JSON text of the arguments object ("{}" when empty), exactly as produced.
    arguments: str = "{}"
    #: Gemini thoughtSignature attached to the functionCall part (gemini only).
    signature: str | None = None


class ToolResultPart(msgspec.Struct, tag="tool_result", omit_defaults=True):
    call_id: str
    content: list[TextPart | ImagePart] = msgspec.field(default_factory=list)
    is_error: bool = False
    #: Function name when known (Gemini needs it; filled from the matching ToolCallPart).
    name: str | None = None


class ReasoningPart(msgspec.Struct, tag="reasoning", omit_defaults=True):
    text: str = ""
    #: Opaque proof from the provider that minted it (Anthropic signature, OpenAI
    #: encrypted_content, Gemini thoughtSignature). Valid only for ``provider``.
    signature: str | None = None
    #: Anthropic redacted_thinking ``data`` (only ever sent back to Anthropic).
    redacted: str | None = None
    provider: Provider | None = None


class RawPart(msgspec.Struct, tag="raw"):
    """A content block of a type the gateway does not model; forwarded only to ``dialect``."""

    dialect: str
    data: dict


Part = Union[TextPart, ImagePart, DocumentPart, ToolCallPart, ToolResultPart, ReasoningPart, RawPart]


class Message(msgspec.Struct, omit_defaults=True):
    """One turn. Tool results live in ``user`` messages as :class:`ToolResultPart` (Anthropic
    style); renderers for OpenAI split them into ``tool`` messages. ``system`` messages here are
    mid-conversation system/developer messages (leading ones go to ``Request.system``)."""

    role: Literal["user", "assistant", "system"]
    content: list[Part] = msgspec.field(default_factory=list)


# --------------------------------------------------------------------------- tools


class Tool(msgspec.Struct, omit_defaults=True):
    name: str
    description: str | None = None
    #: JSON schema of the arguments (always an object schema for functions).
    parameters: dict = msgspec.field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None
    #: "function" (ordinary), "custom" (freeform text input, OpenAI Responses), or "builtin"
    #: (a provider-native tool such as web search; ``raw`` holds the dialect's own object).
    kind: Literal["function", "custom", "builtin"] = "function"
    raw: dict | None = None
    #: For builtins: the dialect ``raw`` came from.
    dialect: str | None = None
    cache: dict | None = None


class ToolChoice(msgspec.Struct, omit_defaults=True):
    mode: Literal["auto", "none", "required", "tool"] = "auto"
    name: str | None = None


class Reasoning(msgspec.Struct, omit_defaults=True):
    """What the client asked for. ``enabled=False`` means explicitly off."""

    enabled: bool | None = None
    #: "none" | "minimal" | "low" | "medium" | "high" | "xhigh" (OpenAI names)
    effort: str | None = None
    budget_tokens: int | None = None
    #: OpenAI Responses summary setting ("auto", "concise", "detailed") when asked.
    summary: str | None = None
    #: Anthropic adaptive thinking.
    adaptive: bool = False


class ResponseFormat(msgspec.Struct, omit_defaults=True):
    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    schema: dict | None = None
    strict: bool | None = None


class Request(msgspec.Struct, omit_defaults=True):
    model: str
    messages: list[Message] = msgspec.field(default_factory=list)
    system: list[TextPart] = msgspec.field(default_factory=list)
    tools: list[Tool] = msgspec.field(default_factory=list)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] = msgspec.field(default_factory=list)
    reasoning: Reasoning | None = None
    response_format: ResponseFormat | None = None
    stream: bool = False
    #: The client wants usage in its stream (OpenAI ``stream_options.include_usage``).
    include_usage: bool = False
    #: The client wants reasoning text surfaced (Chat ``reasoning_content``, Responses summary).
    want_reasoning: bool = True
    user: str | None = None
    metadata: dict | None = None
    n: int | None = None
    seed: int | None = None
    #: The dialect the request was parsed from ("anthropic", "openai_chat", "openai_responses").
    source: str | None = None
    #: Fields of the source dialect that the IR does not model; rendered only back to the same
    #: dialect (never to another one).
    extras: dict = msgspec.field(default_factory=dict)


# --------------------------------------------------------------------------- usage / stop

StopReason = Literal[
    "end_turn", "max_tokens", "stop_sequence", "tool_use", "refusal", "pause_turn", "context_exceeded", "error"
]


class Usage(msgspec.Struct, omit_defaults=True):
    """Token counts, Anthropic semantics: ``input_tokens`` EXCLUDES cache reads and writes."""

    input_tokens: int = 0
    output_tokens: int = 0  # includes reasoning tokens
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def prompt_tokens(self) -> int:
        """OpenAI ``prompt_tokens``: all input, cached included."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens


# --------------------------------------------------------------------------- stream events


class Start(msgspec.Struct, tag="start", omit_defaults=True):
    id: str | None = None
    model: str | None = None
    usage: Usage | None = None


BlockKind = Literal["text", "reasoning", "redacted_reasoning", "tool_call"]


class BlockStart(msgspec.Struct, tag="block_start", omit_defaults=True):
    index: int
    kind: BlockKind
    #: tool_call: call id and function name (both known when the block starts).
    id: str | None = None
    name: str | None = None
    #: redacted_reasoning: the opaque data (complete at start).
    data: str | None = None
    #: reasoning: who minted the signature that will follow.
    provider: Provider | None = None


class TextDelta(msgspec.Struct, tag="text_delta"):
    index: int
    text: str


class ReasoningDelta(msgspec.Struct, tag="reasoning_delta"):
    index: int
    text: str


class SignatureDelta(msgspec.Struct, tag="signature_delta"):
    index: int
    signature: str


class ArgsDelta(msgspec.Struct, tag="args_delta"):
    """A fragment of a tool call's arguments JSON text."""

    index: int
    json: str


class BlockStop(msgspec.Struct, tag="block_stop"):
    index: int


class Finish(msgspec.Struct, tag="finish", omit_defaults=True):
    reason: StopReason
    stop_sequence: str | None = None


class UsageEvent(msgspec.Struct, tag="usage"):
    """Latest cumulative usage (replaces earlier values field by field when non-zero)."""

    usage: Usage


class Error(msgspec.Struct, tag="error", omit_defaults=True):
    """The upstream failed mid-response. Ends the event sequence."""

    kind: str  # an antiapi.errors.ErrorKind value
    message: str
    status: int = 502
    code: str | None = None


class End(msgspec.Struct, tag="end"):
    """The upstream completed normally. Always last (unless an Error ended the sequence)."""


Event = Union[
    Start, BlockStart, TextDelta, ReasoningDelta, SignatureDelta, ArgsDelta, BlockStop, Finish, UsageEvent, Error, End
]


# --------------------------------------------------------------------------- aggregated response


class Response(msgspec.Struct, omit_defaults=True):
    """A whole non-stream answer (built by Aggregator from events)."""

    id: str
    model: str
    content: list[Part] = msgspec.field(default_factory=list)
    stop_reason: StopReason = "end_turn"
    stop_sequence: str | None = None
    usage: Usage = msgspec.field(default_factory=Usage)


# --------------------------------------------------------------------------- upstream target


class Target(msgspec.Struct, omit_defaults=True):
    """What a renderer needs to know about the upstream it renders for."""

    model: str
    #: Provider flavour: "openai" (api.openai.com or compatible), "anthropic", "gemini",
    #: "codex" (ChatGPT backend), "copilot".
    provider: str = "openai"
    #: Upstream reasoning model (OpenAI o-series/gpt-5: max_completion_tokens, reasoning_effort).
    reasoning_model: bool = False
    #: The upstream accepts images inside tool results.
    images_in_tool_results: bool = False
    #: Default max output tokens when the client gave none and the upstream requires one.
    default_max_tokens: int = 8192


class Outgoing(msgspec.Struct, omit_defaults=True):
    """A rendered upstream request body plus what the response decoder needs to undo."""

    body: dict
    stream: bool
    #: shortened/sanitised tool name -> original name (restore on output)
    tool_names: dict[str, str] = msgspec.field(default_factory=dict)
    #: sanitised/shortened tool-call id -> original id (restore on output)
    call_ids: dict[str, str] = msgspec.field(default_factory=dict)


# --------------------------------------------------------------------------- signatures

_SIG_PREFIX = "antiapi."


def wrap_signature(provider: str, signature: str, native: str) -> str:
    """Mark a signature minted by ``provider`` when handing it to a client of dialect ``native``.

    A signature of the client's own provider stays byte-exact; a foreign one is prefixed so
    the request parser can tell where it came from when the client sends it back.
    """
    if provider == native:
        return signature
    return f"{_SIG_PREFIX}{provider}.{signature}"


def unwrap_signature(signature: str, native: str) -> tuple[str, str]:
    """Inverse of :func:`wrap_signature`: ``(provider, original signature)``."""
    if signature.startswith(_SIG_PREFIX):
        rest = signature[len(_SIG_PREFIX) :]
        provider, _, sig = rest.partition(".")
        if provider in ("anthropic", "openai", "gemini") and sig:
            return provider, sig
    return native, signature
