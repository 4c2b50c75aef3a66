"""Gemini API wire format: generateContent / streamGenerateContent / countTokens (pure).

May import: msgspec, the standard library. Field names follow the REST JSON (camelCase) through
``rename="camel"``. Unknown fields are always tolerated (Google adds fields often); there are no
tagged unions here: a :class:`Part` is one struct whose optional members say what it holds
(``text``, ``functionCall``, ``inlineData``...), so an unknown part kind decodes as an empty
``Part`` instead of failing.

The same structs describe request and response bodies (a request ``Content`` and a response
``candidates[].content`` share the shape). The request side is rendered as plain dicts by
``antiapi.translate.gemini`` (faster, and RawParts carry arbitrary JSON); these structs
document and validate that shape (tests convert rendered bodies with them).
"""

from __future__ import annotations

from typing import Any

import msgspec

# --------------------------------------------------------------------------- parts / content


class Blob(msgspec.Struct, rename="camel", omit_defaults=True):
    """``inlineData``: base64 bytes and their media type."""

    mime_type: str | None = None
    data: str = ""


class FileData(msgspec.Struct, rename="camel", omit_defaults=True):
    """``fileData``: a file by URI (Files API URI, gs:// on Vertex, some public URLs)."""

    file_uri: str = ""
    mime_type: str | None = None


class PartialArg(msgspec.Struct, rename="camel", omit_defaults=True):
    """One fragment of streamed function-call arguments (Vertex / Gemini 3
    ``streamFunctionCallArguments``). ``json_path`` such as ``$.a.b[0]``; exactly one value
    member is set. A string value with ``will_continue`` is continued by the next fragment of
    the same path. ``null_value`` is UNSET when absent and None when the key is present."""

    json_path: str | None = None
    string_value: str | None = None
    number_value: int | float | None = None
    bool_value: bool | None = None
    null_value: Any = msgspec.UNSET
    will_continue: bool | None = None


class FunctionCall(msgspec.Struct, rename="camel", omit_defaults=True):
    name: str | None = None
    args: dict | None = None
    id: str | None = None
    #: Streamed arguments: the first part has ``name`` + ``will_continue``; the next ones only
    #: ``partial_args``; a part without ``will_continue`` (often ``functionCall: {}``) ends it.
    partial_args: list[PartialArg] | None = None
    will_continue: bool | None = None


class FunctionResponse(msgspec.Struct, rename="camel", omit_defaults=True):
    name: str = ""
    response: dict = msgspec.field(default_factory=dict)
    id: str | None = None


class Part(msgspec.Struct, rename="camel", omit_defaults=True):
    text: str | None = None
    #: True for thought (reasoning summary) text.
    thought: bool | None = None
    #: Opaque signature; may sit on a thought, text or functionCall part, or on an empty part.
    thought_signature: str | None = None
    inline_data: Blob | None = None
    file_data: FileData | None = None
    function_call: FunctionCall | None = None
    function_response: FunctionResponse | None = None


class Content(msgspec.Struct, rename="camel", omit_defaults=True):
    role: str | None = None
    parts: list[Part] = msgspec.field(default_factory=list)


# --------------------------------------------------------------------------- request


class FunctionDeclaration(msgspec.Struct, rename="camel", omit_defaults=True):
    name: str
    description: str | None = None
    parameters: dict | None = None


class Tool(msgspec.Struct, rename="camel", omit_defaults=True):
    function_declarations: list[FunctionDeclaration] | None = None


class FunctionCallingConfig(msgspec.Struct, rename="camel", omit_defaults=True):
    mode: str | None = None  # AUTO | ANY | NONE | VALIDATED
    allowed_function_names: list[str] | None = None


class ToolConfig(msgspec.Struct, rename="camel", omit_defaults=True):
    function_calling_config: FunctionCallingConfig | None = None


class ThinkingConfig(msgspec.Struct, rename="camel", omit_defaults=True):
    thinking_budget: int | None = None
    include_thoughts: bool | None = None
    thinking_level: str | None = None


class GenerationConfig(msgspec.Struct, rename="camel", omit_defaults=True):
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop_sequences: list[str] | None = None
    candidate_count: int | None = None
    seed: int | None = None
    response_mime_type: str | None = None
    response_schema: dict | None = None
    thinking_config: ThinkingConfig | None = None


class GenerateContentRequest(msgspec.Struct, rename="camel", omit_defaults=True):
    contents: list[Content] = msgspec.field(default_factory=list)
    system_instruction: Content | None = None
    tools: list[Tool] | None = None
    tool_config: ToolConfig | None = None
    generation_config: GenerationConfig | None = None
    #: Only inside a countTokens ``generateContentRequest`` ("models/<name>").
    model: str | None = None


# --------------------------------------------------------------------------- response


class UsageMetadata(msgspec.Struct, rename="camel", omit_defaults=True):
    """Cumulative token counts (every stream chunk repeats the totals so far)."""

    prompt_token_count: int = 0
    cached_content_token_count: int = 0
    candidates_token_count: int = 0
    thoughts_token_count: int = 0
    tool_use_prompt_token_count: int = 0
    total_token_count: int = 0


class Candidate(msgspec.Struct, rename="camel", omit_defaults=True):
    content: Content | None = None
    finish_reason: str | None = None
    finish_message: str | None = None
    index: int | None = None


class PromptFeedback(msgspec.Struct, rename="camel", omit_defaults=True):
    block_reason: str | None = None


class RpcStatus(msgspec.Struct, rename="camel", omit_defaults=True):
    """Google RPC error: ``{"code": 429, "message": ..., "status": "RESOURCE_EXHAUSTED",
    "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3s"}]}``."""

    code: int | None = None
    message: str = ""
    status: str | None = None
    details: list[Any] = msgspec.field(default_factory=list)


class GenerateContentResponse(msgspec.Struct, rename="camel", omit_defaults=True):
    """A non-stream body, or one ``alt=sse`` chunk (same shape). ``error`` appears when the
    service fails mid-stream."""

    candidates: list[Candidate] = msgspec.field(default_factory=list)
    usage_metadata: UsageMetadata | None = None
    model_version: str | None = None
    response_id: str | None = None
    prompt_feedback: PromptFeedback | None = None
    error: RpcStatus | None = None


class ErrorBody(msgspec.Struct):
    error: RpcStatus | None = None


class CountTokensResponse(msgspec.Struct, rename="camel", omit_defaults=True):
    total_tokens: int = 0
    cached_content_token_count: int = 0


class UsageOnly(msgspec.Struct, rename="camel"):
    """Decodes only ``usageMetadata`` of a chunk (fast path usage scan)."""

    usage_metadata: UsageMetadata | None = None


# --------------------------------------------------------------------------- codecs (immutable)

response_decoder = msgspec.json.Decoder(GenerateContentResponse)
responses_decoder = msgspec.json.Decoder(list[GenerateContentResponse])
usage_only_decoder = msgspec.json.Decoder(UsageOnly)
error_decoder = msgspec.json.Decoder(ErrorBody)
errors_decoder = msgspec.json.Decoder(list[ErrorBody])
count_tokens_decoder = msgspec.json.Decoder(CountTokensResponse)
