"""OpenAI Chat Completions wire format (pure; may import only msgspec and the stdlib).

Permissive msgspec Structs for what the gateway reads from Chat upstreams (stream chunks,
non-stream completions, error bodies) and for the small bodies it writes itself (error body,
models list). Unknown fields are ignored everywhere (never ``forbid_unknown_fields``): vendors
add fields all the time (``x_groq``, ``prompt_filter_results``, ``obfuscation``, ...).

Content that vendors disagree on is typed loosely on purpose: ``content`` may be a string or a
list of parts (Mistral), tool-call ``arguments`` may be a string or (non-standard) an object,
token counts may be floats. Client requests are validated by hand in
:mod:`antiapi.translate.openai_chat` (better error messages with JSON paths);
:class:`ChatRequest` documents their shape and checks rendered upstream bodies in tests.
"""

from __future__ import annotations

from typing import Any

import msgspec

Number = int | float

# --------------------------------------------------------------------------- usage


class PromptTokensDetails(msgspec.Struct):
    cached_tokens: Number | None = None


class CompletionTokensDetails(msgspec.Struct):
    reasoning_tokens: Number | None = None


class ChatUsage(msgspec.Struct):
    prompt_tokens: Number | None = None
    completion_tokens: Number | None = None
    total_tokens: Number | None = None
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None
    #: DeepSeek's own name for cached prompt tokens (also sends prompt_tokens_details).
    prompt_cache_hit_tokens: Number | None = None


# --------------------------------------------------------------------------- stream chunks


class FunctionDelta(msgspec.Struct):
    name: str | None = None
    #: A JSON text fragment; a few servers send a whole object instead.
    arguments: str | dict | None = None


class ToolCallDelta(msgspec.Struct):
    #: Missing on some servers (Gemini's OpenAI surface) that send each call whole.
    index: int | None = None
    id: str | None = None
    type: str | None = None
    function: FunctionDelta | None = None


class Delta(msgspec.Struct):
    role: str | None = None
    content: str | list | None = None
    #: DeepSeek / vLLM reasoning text.
    reasoning_content: str | None = None
    #: OpenRouter reasoning text.
    reasoning: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCallDelta] | None = None
    #: Legacy ``functions`` streaming.
    function_call: FunctionDelta | None = None


class ChunkChoice(msgspec.Struct):
    index: int = 0
    delta: Delta | None = None
    finish_reason: str | None = None


class ChatChunk(msgspec.Struct):
    """One ``chat.completion.chunk`` (or an in-stream ``{"error": ...}`` object)."""

    id: str | None = None
    model: str | None = None
    choices: list[ChunkChoice] | None = None
    usage: ChatUsage | None = None
    error: Any = None


class UsageOnly(msgspec.Struct):
    """The cheap view :func:`scan_usage` decodes."""

    usage: ChatUsage | None = None


# --------------------------------------------------------------------------- non-stream response


class FunctionCall(msgspec.Struct):
    name: str | None = None
    arguments: str | dict | None = None


class ToolCall(msgspec.Struct):
    id: str | None = None
    type: str | None = "function"
    function: FunctionCall | None = None


class ResponseMessage(msgspec.Struct):
    role: str | None = "assistant"
    content: str | list | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCall] | None = None
    function_call: FunctionCall | None = None


class Choice(msgspec.Struct):
    index: int = 0
    message: ResponseMessage | None = None
    finish_reason: str | None = None


class ChatCompletion(msgspec.Struct):
    """A non-stream ``chat.completion`` body."""

    id: str | None = None
    model: str | None = None
    created: Number | None = None
    choices: list[Choice] | None = None
    usage: ChatUsage | None = None
    error: Any = None


# --------------------------------------------------------------------------- request (schema)


class RequestToolFunction(msgspec.Struct, omit_defaults=True):
    name: str
    description: str | None = None
    parameters: dict | None = None
    strict: bool | None = None


class RequestTool(msgspec.Struct, omit_defaults=True):
    type: str
    function: RequestToolFunction | None = None


class RequestMessage(msgspec.Struct, omit_defaults=True):
    role: str
    content: str | list[dict] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None


class StreamOptions(msgspec.Struct, omit_defaults=True):
    include_usage: bool | None = None


class ChatRequest(msgspec.Struct, omit_defaults=True):
    """Shape of a ``POST /v1/chat/completions`` body (the fields the gateway models)."""

    model: str
    messages: list[RequestMessage]
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: str | list[str] | None = None
    n: int | None = None
    seed: int | None = None
    user: str | None = None
    metadata: dict | None = None
    reasoning_effort: str | None = None
    response_format: dict | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    tools: list[RequestTool] | None = None
    tool_choice: str | dict | None = None
    parallel_tool_calls: bool | None = None


# --------------------------------------------------------------------------- error body


class ErrorDetail(msgspec.Struct):
    message: str = ""
    type: str | None = None
    param: str | None = None
    #: Usually a string; some OpenAI-compatible servers put the HTTP status (an int) here.
    code: str | int | None = None


class ErrorBody(msgspec.Struct):
    """``{"error": {"message", "type", "param", "code"}}``."""

    error: ErrorDetail


# --------------------------------------------------------------------------- models list


class ModelInfo(msgspec.Struct):
    id: str
    object: str = "model"
    created: int = 0
    owned_by: str = "antiapi"


class ModelsList(msgspec.Struct, kw_only=True):
    object: str = "list"
    data: list[ModelInfo]


# --------------------------------------------------------------------------- prebuilt codecs

chunk_decoder = msgspec.json.Decoder(ChatChunk)
usage_decoder = msgspec.json.Decoder(UsageOnly)
completion_decoder = msgspec.json.Decoder(ChatCompletion)
encoder = msgspec.json.Encoder()
