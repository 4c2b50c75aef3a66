"""Rebuild the wire bytes of recorded provider streams (per /work/shared/fixtures/recorded/README.md)."""

from __future__ import annotations

import json

from .scripts import Recorded

_EVENT_NAMED = {"anthropic", "openai-responses"}
_KINDS = {"anthropic", "openai-chat", "openai-responses", "gemini"}


def recorded_events(rec: Recorded) -> list[bytes]:
    """One framed SSE event per non-empty line of a ``*.chunks.txt`` (plus Chat's ``[DONE]``)."""
    kind = rec.kind
    if kind not in _KINDS:
        raise ValueError(f"unknown recorded provider {kind!r} (expected one of {sorted(_KINDS)})")
    raw = rec.file.read_bytes()
    out: list[bytes] = []
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        if kind in _EVENT_NAMED:
            type_ = json.loads(line)["type"]
            out.append(b"event: " + type_.encode() + b"\ndata: " + line + b"\n\n")
        else:
            out.append(b"data: " + line + b"\n\n")
    if kind == "openai-chat":
        out.append(b"data: [DONE]\n\n")
    return out


def recorded_body(rec: Recorded) -> bytes:
    """The exact bytes of a recorded non-stream ``*.json`` body."""
    return rec.file.read_bytes()


def is_stream_file(rec: Recorded) -> bool:
    return rec.file.name.endswith(".chunks.txt")
