"""OpenAI Responses API wire format (pure; may import only msgspec and the stdlib).

Two families of msgspec Structs:

* **Read side** (permissive, never ``forbid_unknown_fields``): what the gateway reads from a
  Responses client (request body, input items, content parts, tools) and from a Responses
  upstream (stream events, the response object, error bodies). Input items, content parts and
  output items are typed loosely (``dict``) at the outer level and converted per ``type`` by
  :mod:`antiapi.translate.openai_responses`, because providers add new item and event types
  often and a tagged union would reject them. :class:`StreamEvent` is one flat Struct holding
  every field any event type uses, so an unknown event decodes fine and is ignored.
* **Write side**: tagged Structs (``tag_field="type"``) for every object and stream event the
  gateway emits to a Responses client. The tag encodes first, then fields in declaration order,
  which mirrors the real API (``type``, ``sequence_number``, ...).
"""

from __future__ import annotations

from typing import Any

import msgspec

# =========================================================================== read side: request


class ReasoningParam(msgspec.Struct):
    effort: str | None = None
    summary: str | None = None


class TextParam(msgspec.Struct):
    format: dict | None = None
    verbosity: str | None = None


class ResponsesRequest(msgspec.Struct):
    """The top-level fields of ``POST /v1/responses`` that the IR models (others -> extras)."""

    model: str | None = None
    input: str | list[Any] | None = None
    instructions: str | None = None
    tools: list[Any] | None = None
    tool_choice: str | dict | None = None
    parallel_tool_calls: bool | None = None
    reasoning: ReasoningParam | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    text: TextParam | None = None
    stream: bool | None = None
    user: str | None = None
    metadata: dict | None = None


#: Top-level request keys the IR models; every other key goes to ``Request.extras``.
MODELED_REQUEST_KEYS = frozenset(ResponsesRequest.__struct_fields__)

# ---- input items (converted one by one after reading ``type``)


class MessageItemParam(msgspec.Struct):
    role: str
    content: str | list[Any]


class FunctionCallParam(msgspec.Struct):
    call_id: str
    name: str
    arguments: str = ""


class FunctionCallOutputParam(msgspec.Struct):
    call_id: str
    output: str | list[Any] | dict | None = None


class CustomToolCallParam(msgspec.Struct):
    call_id: str
    name: str
    input: str = ""


class SummaryTextParam(msgspec.Struct):
    text: str = ""


class ReasoningItemParam(msgspec.Struct):
    summary: list[SummaryTextParam] = []
    encrypted_content: str | None = None
    id: str | None = None


# ---- content parts


class InputTextParam(msgspec.Struct):
    text: str


class RefusalParam(msgspec.Struct):
    refusal: str


class InputImageParam(msgspec.Struct):
    image_url: str | None = None
    file_id: str | None = None
    detail: str | None = None


class InputFileParam(msgspec.Struct):
    file_data: str | None = None
    file_url: str | None = None
    file_id: str | None = None
    filename: str | None = None


# ---- tools


class FunctionToolParam(msgspec.Struct):
    name: str
    description: str | None = None
    parameters: dict | None = None
    strict: bool | None = None


class CustomToolParam(msgspec.Struct):
    name: str
    description: str | None = None
    format: dict | None = None


# =========================================================================== read side: upstream


class InputTokensDetails(msgspec.Struct):
    cached_tokens: int | float | None = None


class OutputTokensDetails(msgspec.Struct):
    reasoning_tokens: int | float | None = None


class UsageBody(msgspec.Struct):
    input_tokens: int | float | None = None
    output_tokens: int | float | None = None
    total_tokens: int | float | None = None
    input_tokens_details: InputTokensDetails | None = None
    output_tokens_details: OutputTokensDetails | None = None


class ResponseBody(msgspec.Struct):
    """A response object as an upstream sends it (non-stream body, or inside stream events)."""

    id: str | None = None
    model: str | None = None
    status: str | None = None
    output: list[Any] | None = None
    usage: UsageBody | None = None
    error: dict | None = None
    incomplete_details: dict | None = None


class StreamEvent(msgspec.Struct):
    """Any Responses stream event (flat: one Struct for all ``type`` values)."""

    type: str = ""
    sequence_number: int | None = None
    response: ResponseBody | None = None
    output_index: int | None = None
    item_id: str | None = None
    item: dict | None = None
    content_index: int | None = None
    summary_index: int | None = None
    part: dict | None = None
    delta: Any = None
    text: str | None = None
    refusal: str | None = None
    arguments: str | None = None
    input: str | None = None
    # the ``error`` event: flat {code, message, param} or nested {"error": {...}}
    error: Any = None
    code: Any = None
    message: Any = None
    param: Any = None


class ErrorDetail(msgspec.Struct):
    message: Any = None
    type: Any = None
    code: Any = None
    param: Any = None
    # Codex backend usage limits
    plan_type: Any = None
    resets_at: Any = None
    resets_in_seconds: Any = None


class ErrorBody(msgspec.Struct):
    """OpenAI ``{"error": {...}}`` or the Codex backend's ``{"detail": "..."}``."""

    error: ErrorDetail | str | None = None
    detail: Any = None


class UsageScanResponse(msgspec.Struct):
    usage: UsageBody | None = None


class UsageScan(msgspec.Struct):
    """Just enough of a terminal event to read its usage."""

    type: str = ""
    response: UsageScanResponse | None = None


# =========================================================================== write side


class OutputText(msgspec.Struct, tag_field="type", tag="output_text"):
    text: str
    annotations: list = []
    logprobs: list = []


class OutputRefusal(msgspec.Struct, tag_field="type", tag="refusal"):
    refusal: str


class SummaryText(msgspec.Struct, tag_field="type", tag="summary_text"):
    text: str


class MessageItem(msgspec.Struct, tag_field="type", tag="message"):
    id: str
    status: str
    content: list[OutputText | OutputRefusal]
    role: str = "assistant"


class FunctionCallItem(msgspec.Struct, tag_field="type", tag="function_call"):
    id: str
    status: str
    arguments: str
    call_id: str
    name: str


class CustomToolCallItem(msgspec.Struct, tag_field="type", tag="custom_tool_call"):
    id: str
    status: str
    call_id: str
    input: str
    name: str


class ReasoningItem(msgspec.Struct, tag_field="type", tag="reasoning", omit_defaults=True):
    id: str
    #: required (no default) so that an empty summary is still encoded as ``[]``
    summary: list[SummaryText]
    encrypted_content: str | None = None


OutputItem = MessageItem | FunctionCallItem | CustomToolCallItem | ReasoningItem


class InputTokensDetailsOut(msgspec.Struct):
    cached_tokens: int = 0
    #: newer API versions report cache writes too (the openai SDK requires the field)
    cache_write_tokens: int = 0


class OutputTokensDetailsOut(msgspec.Struct):
    reasoning_tokens: int = 0


class Usage(msgspec.Struct):
    input_tokens: int
    input_tokens_details: InputTokensDetailsOut
    output_tokens: int
    output_tokens_details: OutputTokensDetailsOut
    total_tokens: int


class ResponseError(msgspec.Struct):
    code: str
    message: str


class IncompleteDetails(msgspec.Struct):
    reason: str


class ResponseObject(msgspec.Struct):
    """The response object the gateway sends to Responses clients (nulls kept, like the API)."""

    id: str
    created_at: int
    status: str
    model: str
    output: list[OutputItem]
    parallel_tool_calls: bool
    tool_choice: Any
    tools: list[Any]
    object: str = "response"
    error: ResponseError | None = None
    incomplete_details: IncompleteDetails | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    previous_response_id: str | None = None
    reasoning: dict | None = None
    temperature: float | None = None
    text: dict | None = None
    top_p: float | None = None
    truncation: str = "disabled"
    usage: Usage | None = None
    user: str | None = None
    metadata: dict = {}


# ---- stream events (field order = the real API's)


class ResponseCreatedEvent(msgspec.Struct, tag_field="type", tag="response.created"):
    sequence_number: int
    response: ResponseObject


class ResponseInProgressEvent(msgspec.Struct, tag_field="type", tag="response.in_progress"):
    sequence_number: int
    response: ResponseObject


class ResponseCompletedEvent(msgspec.Struct, tag_field="type", tag="response.completed"):
    sequence_number: int
    response: ResponseObject


class ResponseIncompleteEvent(msgspec.Struct, tag_field="type", tag="response.incomplete"):
    sequence_number: int
    response: ResponseObject


class ResponseFailedEvent(msgspec.Struct, tag_field="type", tag="response.failed"):
    sequence_number: int
    response: ResponseObject


class OutputItemAddedEvent(msgspec.Struct, tag_field="type", tag="response.output_item.added"):
    sequence_number: int
    output_index: int
    item: OutputItem


class OutputItemDoneEvent(msgspec.Struct, tag_field="type", tag="response.output_item.done"):
    sequence_number: int
    output_index: int
    item: OutputItem


class ContentPartAddedEvent(msgspec.Struct, tag_field="type", tag="response.content_part.added"):
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    part: OutputText | OutputRefusal


class ContentPartDoneEvent(msgspec.Struct, tag_field="type", tag="response.content_part.done"):
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    part: OutputText | OutputRefusal


class OutputTextDeltaEvent(msgspec.Struct, tag_field="type", tag="response.output_text.delta"):
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    delta: str
    logprobs: list = []


class OutputTextDoneEvent(msgspec.Struct, tag_field="type", tag="response.output_text.done"):
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    text: str
    logprobs: list = []


class RefusalDeltaEvent(msgspec.Struct, tag_field="type", tag="response.refusal.delta"):
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    delta: str


class RefusalDoneEvent(msgspec.Struct, tag_field="type", tag="response.refusal.done"):
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    refusal: str


class FunctionCallArgumentsDeltaEvent(
    msgspec.Struct, tag_field="type", tag="response.function_call_arguments.delta"
):
    sequence_number: int
    item_id: str
    output_index: int
    delta: str


class FunctionCallArgumentsDoneEvent(
    msgspec.Struct, tag_field="type", tag="response.function_call_arguments.done"
):
    sequence_number: int
    item_id: str
    output_index: int
    arguments: str


class CustomToolCallInputDeltaEvent(
    msgspec.Struct, tag_field="type", tag="response.custom_tool_call_input.delta"
):
    sequence_number: int
    item_id: str
    output_index: int
    delta: str


class CustomToolCallInputDoneEvent(
    msgspec.Struct, tag_field="type", tag="response.custom_tool_call_input.done"
):
    sequence_number: int
    item_id: str
    output_index: int
    input: str


class ReasoningSummaryPartAddedEvent(
    msgspec.Struct, tag_field="type", tag="response.reasoning_summary_part.added"
):
    sequence_number: int
    item_id: str
    output_index: int
    summary_index: int
    part: SummaryText


class ReasoningSummaryPartDoneEvent(
    msgspec.Struct, tag_field="type", tag="response.reasoning_summary_part.done"
):
    sequence_number: int
    item_id: str
    output_index: int
    summary_index: int
    part: SummaryText


class ReasoningSummaryTextDeltaEvent(
    msgspec.Struct, tag_field="type", tag="response.reasoning_summary_text.delta"
):
    sequence_number: int
    item_id: str
    output_index: int
    summary_index: int
    delta: str


class ReasoningSummaryTextDoneEvent(
    msgspec.Struct, tag_field="type", tag="response.reasoning_summary_text.done"
):
    sequence_number: int
    item_id: str
    output_index: int
    summary_index: int
    text: str


class ReasoningTextDeltaEvent(msgspec.Struct, tag_field="type", tag="response.reasoning_text.delta"):
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    delta: str


class ReasoningTextDoneEvent(msgspec.Struct, tag_field="type", tag="response.reasoning_text.done"):
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    text: str


class ErrorEvent(msgspec.Struct, tag_field="type", tag="error"):
    sequence_number: int
    code: str | None
    message: str
    param: str | None = None


# ---- HTTP error body (OpenAI envelope)


class ErrorObject(msgspec.Struct):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorEnvelope(msgspec.Struct):
    error: ErrorObject
