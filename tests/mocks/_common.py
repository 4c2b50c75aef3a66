"""Helpers shared by the mock dialect renderers: ids, JSON, SSE framing, token estimates."""

from __future__ import annotations

import json
import math
import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Any

from .scripts import Reply, Thinking, Text, ToolCall, Usage

_B62 = string.ascii_letters + string.digits


def rand62(n: int) -> str:
    return "".join(secrets.choice(_B62) for _ in range(n))


def randhex(n: int) -> str:
    return secrets.token_hex((n + 1) // 2)[:n]


def dumps(obj: Any, indent: int | None = None) -> str:
    """Compact JSON like the providers send on the wire (UTF-8, no ASCII escaping)."""
    if indent:
        return json.dumps(obj, ensure_ascii=False, indent=indent)
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def sse(data: Any, event: str | None = None, *, crlf: bool = False) -> bytes:
    """Frame one SSE event. ``data`` is a dict (JSON-encoded) or an already encoded string."""
    text = data if isinstance(data, str) else dumps(data)
    nl = "\r\n" if crlf else "\n"
    head = f"event: {event}{nl}" if event is not None else ""
    return f"{head}data: {text}{nl}{nl}".encode()


_SKIP_KEYS = frozenset(
    {
        "model", "role", "type", "id", "tool_use_id", "call_id", "tool_call_id", "signature",
        "encrypted_content", "thoughtSignature", "thought_signature", "media_type", "mime_type",
        "mimeType", "cache_control", "status", "tool_choice", "stream_options", "include",
        "service_tier", "metadata", "reasoning_effort", "data",
    }
)


def _collect_chars(obj: Any, key: str | None = None) -> int:
    if key in _SKIP_KEYS:
        return 0
    if isinstance(obj, str):
        return len(obj)
    if isinstance(obj, dict):
        return sum(_collect_chars(v, k) for k, v in obj.items())
    if isinstance(obj, list):
        return sum(_collect_chars(v, key) for v in obj)
    return 0


def estimate_tokens(obj: Any) -> int:
    """Deterministic token estimate: text characters / 4 (at least 1)."""
    return max(1, math.ceil(_collect_chars(obj) / 4))


@dataclass
class ResolvedUsage:
    input_total: int
    output: int
    cached: int
    cache_creation: int
    reasoning: int

    @property
    def visible_output(self) -> int:
        return max(0, self.output - self.reasoning)


def resolve_usage(reply: Reply, input_estimate: int) -> ResolvedUsage:
    u = reply.usage or Usage()
    think_chars = sum(len(p.full) for p in reply.parts if isinstance(p, Thinking))
    vis_chars = sum(len(p.full) for p in reply.parts if isinstance(p, Text))
    vis_chars += sum(len(p.name) + len(p.arguments) for p in reply.parts if isinstance(p, ToolCall))
    reasoning = u.reasoning_tokens
    if reasoning is None:
        reasoning = math.ceil(think_chars / 4) if think_chars else 0
    output = u.output_tokens
    if output is None:
        output = max(1, math.ceil(vis_chars / 4)) + reasoning
    inp = u.input_tokens if u.input_tokens is not None else input_estimate
    return ResolvedUsage(inp, output, u.cached_tokens, u.cache_creation_tokens, reasoning)


@dataclass
class Ctx:
    """What a renderer needs to know about the request being answered."""

    body: dict[str, Any]
    model: str
    stream: bool
    query: dict[str, str] = field(default_factory=dict)
    created: int = field(default_factory=lambda: int(time.time()))
    input_estimate: int = 1
    request_id: str = ""
    options: dict[str, Any] = field(default_factory=dict)
