"""Mock upstream servers emulating the official provider APIs (OpenAI Chat, OpenAI Responses,
Anthropic Messages, Gemini) for tests. Must not import antiapi.

Example::

    with MockUpstream("anthropic") as up:            # or "openai_chat", "openai_responses", "gemini", "all"
        up.enqueue(
            Reply([Thinking("hmm", signature="S"), Text("Hi", chunks=2), ToolCall("f", {"a": 1})],
                  usage=Usage(input_tokens=100, output_tokens=20, cached_tokens=40)),
            Error.rate_limit(retry_after=2),           # next request: 429 in the dialect's envelope
            DropAfter(3),                              # next: 3 SSE events, then the socket closes
            MidStreamError(2),                         # next: 2 events, then the in-stream error
            Stall(1.0, after_events=1, reply=Text("slow")),
            Recorded("anthropic/anthropic-text.chunks.txt"),
        )
        up.handler = lambda req: Error(500) if req.model == "bad" else None   # per-test logic
        ...  # point the code under test at up.openai_base_url / up.anthropic_base_url / up.gemini_base_url
        assert up.requests[0].json["max_tokens"] == 1024
"""

from .recorded import recorded_body, recorded_events
from .scripts import (
    RECORDED_DIR,
    Delay,
    DropAfter,
    Error,
    MidStreamError,
    Raw,
    Recorded,
    RedactedThinking,
    Reply,
    Stall,
    Text,
    Thinking,
    ToolCall,
    Usage,
    split_text,
)
from .server import DIALECTS, MockUpstream, RecordedRequest

__all__ = [
    "DIALECTS",
    "RECORDED_DIR",
    "Delay",
    "DropAfter",
    "Error",
    "MidStreamError",
    "MockUpstream",
    "Raw",
    "RecordedRequest",
    "Recorded",
    "RedactedThinking",
    "Reply",
    "Stall",
    "Text",
    "Thinking",
    "ToolCall",
    "Usage",
    "recorded_body",
    "recorded_events",
    "split_text",
]
