"""Dialect-independent reply scripts for the mock upstreams.

A script item describes *what* the fake model answers (text, tool calls, thinking, usage, stop
reason) or *how* the transport misbehaves (HTTP errors, delays, stalls, dropped connections,
mid-stream errors). ``tests.mocks.server`` renders each item in the wire format of the dialect that
received the request. Must not import antiapi: the mocks follow the providers' protocols, not our code.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

RECORDED_DIR = Path("/work/shared/fixtures/recorded")


def split_text(text: str, n: int) -> list[str]:
    """Split ``text`` into ``n`` nearly equal, non-empty pieces (fewer when text is short)."""
    if n <= 1 or len(text) <= 1:
        return [text]
    n = min(n, len(text))
    size, extra = divmod(len(text), n)
    out, pos = [], 0
    for i in range(n):
        step = size + (1 if i < extra else 0)
        out.append(text[pos : pos + step])
        pos += step
    return out


def _pieces(value: str | list[str], chunks: int | None, default: int) -> list[str]:
    if isinstance(value, list):
        return list(value) or [""]
    return split_text(value, chunks if chunks is not None else default)


# --------------------------------------------------------------------------- content parts


@dataclass
class Text:
    """Assistant text. ``text`` may be a list of exact stream pieces; else split into ``chunks``."""

    text: str | list[str]
    chunks: int | None = None

    @property
    def full(self) -> str:
        return "".join(self.text) if isinstance(self.text, list) else self.text

    def pieces(self) -> list[str]:
        return _pieces(self.text, self.chunks, 3)


@dataclass
class ToolCall:
    """A function/tool call. ``args`` is a dict (encoded compactly) or a raw JSON string."""

    name: str
    args: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None
    chunks: int | None = None

    @property
    def arguments(self) -> str:
        if isinstance(self.args, str):
            return self.args
        return json.dumps(self.args, ensure_ascii=False, separators=(",", ":"))

    @property
    def args_dict(self) -> dict[str, Any]:
        if isinstance(self.args, dict):
            return self.args
        try:
            value = json.loads(self.args) if self.args else {}
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def pieces(self) -> list[str]:
        return _pieces(self.arguments, self.chunks, 2)


@dataclass
class Thinking:
    """Reasoning text plus its opaque signature (Anthropic signature, Responses encrypted_content,
    Gemini thoughtSignature). Chat Completions shows it as ``reasoning_content`` (DeepSeek style)."""

    text: str | list[str]
    signature: str | None = None
    chunks: int | None = None

    @property
    def full(self) -> str:
        return "".join(self.text) if isinstance(self.text, list) else self.text

    @property
    def sig(self) -> str:
        if self.signature is not None:
            return self.signature
        digest = hashlib.sha256(self.full.encode()).digest()
        return "EqQBCkYIBxgCKkB" + base64.b64encode(digest * 2).decode()

    def pieces(self) -> list[str]:
        return _pieces(self.text, self.chunks, 2)


@dataclass
class RedactedThinking:
    """Anthropic ``redacted_thinking`` block (other dialects: ignored)."""

    data: str = "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpPkNRj2YfWXGmKDxH4mPnZ5sQ7vB5URj"


Part = Union[Text, ToolCall, Thinking, RedactedThinking]


@dataclass
class Usage:
    """Token counts. ``input_tokens`` is the TOTAL prompt size including cached tokens (OpenAI and
    Gemini meaning); the Anthropic renderer reports ``input_tokens - cached - cache_creation``.
    ``output_tokens`` includes reasoning tokens. ``None`` means "estimate from the content"."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int | None = None


# neutral stop reasons: end, max_tokens, tool_use, stop_sequence, content_filter, refusal
_STOP_ALIASES = {
    "end": "end", "end_turn": "end", "stop": "end", "STOP": "end", "completed": "end",
    "max_tokens": "max_tokens", "length": "max_tokens", "MAX_TOKENS": "max_tokens",
    "max_output_tokens": "max_tokens",
    "tool_use": "tool_use", "tool_calls": "tool_use",
    "stop_sequence": "stop_sequence",
    "content_filter": "content_filter", "SAFETY": "content_filter",
    "refusal": "refusal",
}


def neutral_stop(value: str) -> str:
    """Map a neutral or dialect-native stop reason to the neutral name (unknown: unchanged)."""
    return _STOP_ALIASES.get(value, value)


@dataclass
class Reply:
    """A full model answer: ordered parts, usage, stop reason and transport faults."""

    parts: list[Part] = field(default_factory=list)
    usage: Usage | None = None
    stop_reason: str | None = None
    parallel_interleaved: bool = False
    model: str | None = None
    id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    ping: bool = True

    def stop(self) -> str:
        if self.stop_reason is not None:
            return neutral_stop(self.stop_reason)
        return "tool_use" if any(isinstance(p, ToolCall) for p in self.parts) else "end"


# --------------------------------------------------------------------------- other replies


@dataclass
class Error:
    """An HTTP error in the receiving dialect's own envelope.

    ``type``/``code``/``message``/``param`` default per dialect and status. ``retry_after`` becomes
    the ``retry-after`` header (Anthropic, OpenAI) or ``RetryInfo.retryDelay`` (Gemini). ``body``
    replaces the whole body (dict -> JSON, str/bytes sent as is).
    """

    status: int = 500
    message: str | None = None
    type: str | None = None
    code: str | None = None
    param: str | None = None
    retry_after: float | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | str | bytes | None = None

    @classmethod
    def rate_limit(cls, retry_after: float | None = None, **kw: Any) -> Error:
        return cls(429, code=kw.pop("code", "rate_limit_exceeded"), retry_after=retry_after, **kw)

    @classmethod
    def insufficient_quota(cls, **kw: Any) -> Error:
        return cls(429, code="insufficient_quota", type=kw.pop("type", "insufficient_quota"), **kw)

    @classmethod
    def overloaded(cls, **kw: Any) -> Error:
        return cls(kw.pop("status", 529), **kw)


@dataclass
class Recorded:
    """Replay a recorded file byte-faithfully (see /work/shared/fixtures/recorded/README.md).

    ``path`` is absolute or relative to ``RECORDED_DIR`` (e.g. ``"anthropic/anthropic-text.chunks.txt"``).
    ``provider`` (anthropic, openai-chat, openai-responses, gemini) defaults to the parent folder.
    """

    path: str | Path
    provider: str | None = None

    @property
    def file(self) -> Path:
        p = Path(self.path)
        return p if p.is_absolute() else RECORDED_DIR / p

    @property
    def kind(self) -> str:
        return self.provider or self.file.parent.name


@dataclass
class Raw:
    """Any HTTP response: status, body (dict -> JSON) and headers, or pre-framed ``events``."""

    status: int = 200
    body: dict[str, Any] | list[Any] | str | bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    events: list[bytes | str] | None = None


# --------------------------------------------------------------------------- faults


@dataclass
class Delay:
    """Wait ``first_byte_seconds`` before sending the status line."""

    first_byte_seconds: float
    reply: Any = None


@dataclass
class Stall:
    """After ``after_events`` events (or, for a JSON body, after the headers) send nothing for
    ``seconds``, then continue."""

    seconds: float
    after_events: int = 0
    reply: Any = None


@dataclass
class DropAfter:
    """Send ``n_events`` events (never the terminal one) and close. ``abrupt`` closes the TCP
    connection without ending the chunked body (clients see a protocol error); otherwise the body
    ends cleanly, just without the terminal event. For a JSON body: send half of it, then close."""

    n_events: int
    reply: Any = None
    abrupt: bool = True


@dataclass
class MidStreamError:
    """After ``after_events`` events send the dialect's in-stream error and end the stream.

    Anthropic ``event: error`` (overloaded_error), Chat ``data: {"error":…}``, Responses
    ``response.failed`` (``error_event=True`` adds a ``type: error`` event first), Gemini a
    ``data: {"error":…}`` RPC body. ``type``/``code``/``message``/``status`` override defaults."""

    after_events: int = 0
    reply: Any = None
    type: str | None = None
    code: str | None = None
    message: str | None = None
    status: int | None = None
    error_event: bool = False


Fault = Union[Delay, Stall, DropAfter, MidStreamError]
FAULT_TYPES = (Delay, Stall, DropAfter, MidStreamError)


@dataclass
class Plan:
    """A normalised script item: exactly one of reply/error/recorded/raw, plus faults."""

    reply: Reply | None = None
    error: Error | None = None
    recorded: Recorded | None = None
    raw: Raw | None = None
    faults: list[Fault] = field(default_factory=list)


def to_plan(item: Any) -> Plan:
    """Normalise anything a test may enqueue into a :class:`Plan`.

    Accepts a Reply, Error, Recorded, Raw, a single part, a list of parts, a plain string (text),
    or a fault wrapping any of those (``reply=None`` means the default reply, filled in later).
    """
    if isinstance(item, Plan):
        return item
    if isinstance(item, FAULT_TYPES):
        inner = to_plan(item.reply) if item.reply is not None else Plan()
        inner.faults = [*inner.faults, item]
        return inner
    if isinstance(item, Reply):
        return Plan(reply=item, faults=list(item.faults))
    if isinstance(item, Error):
        return Plan(error=item)
    if isinstance(item, Recorded):
        return Plan(recorded=item)
    if isinstance(item, Raw):
        return Plan(raw=item)
    if isinstance(item, str):
        return Plan(reply=Reply(parts=[Text(item)]))
    if isinstance(item, (Text, ToolCall, Thinking, RedactedThinking)):
        return Plan(reply=Reply(parts=[item]))
    if isinstance(item, (list, tuple)):
        return Plan(reply=Reply(parts=list(item)))
    raise TypeError(f"cannot use {item!r} as a mock reply")
