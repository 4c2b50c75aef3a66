"""Incremental Server-Sent Events decoder and encoder (pure; stdlib only).

``SSEDecoder.feed(bytes) -> list[SSEEvent]`` and ``flush()`` follow the httpx decoder shape:
bytes in, whole events out, however the bytes were split. Handles ``\\n``, ``\\r\\n`` and ``\\r``
line ends, multi-line ``data:``, comment lines and events without an ``event:`` line.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class SSEEvent:
    event: str | None
    data: str
    #: The exact bytes of this event as received (including the blank line), for passthrough.
    raw: bytes = b""


class SSEDecoder:
    """Feed raw bytes; get complete events."""

    __slots__ = ("_buf", "_max")

    def __init__(self, max_event_bytes: int = 64 * 1024 * 1024) -> None:
        self._buf = bytearray()
        self._max = max_event_bytes

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        self._buf += chunk
        out: list[SSEEvent] = []
        while True:
            end, sep_len = _find_boundary(self._buf)
            if end < 0:
                if len(self._buf) > self._max:
                    raise ValueError("SSE event larger than the allowed maximum")
                return out
            raw = bytes(self._buf[: end + sep_len])
            del self._buf[: end + sep_len]
            ev = _parse_event(raw[:end], raw)
            if ev is not None:
                out.append(ev)

    def flush(self) -> list[SSEEvent]:
        """Parse what is left at EOF (a last event without its blank line)."""
        if not self._buf.strip():
            self._buf.clear()
            return []
        raw = bytes(self._buf)
        self._buf.clear()
        ev = _parse_event(raw, raw)
        return [ev] if ev is not None else []


def _find_boundary(buf: bytearray) -> tuple[int, int]:
    """Index of the first blank-line boundary and its length, or (-1, 0)."""
    best = -1
    best_len = 0
    for sep in (b"\n\n", b"\r\n\r\n", b"\r\r"):
        i = buf.find(sep)
        if i >= 0 and (best < 0 or i < best):
            best, best_len = i, len(sep)
    # a mixed boundary such as "\r\n\n"
    i = buf.find(b"\r\n\n")
    if i >= 0 and (best < 0 or i < best):
        best, best_len = i, 3
    return best, best_len


def _parse_event(block: bytes, raw: bytes) -> SSEEvent | None:
    event: str | None = None
    data_lines: list[str] = []
    text = block.decode("utf-8", errors="replace")
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line or line.startswith(":"):
            continue
        field, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if field == "data":
            data_lines.append(value)
        elif field == "event":
            event = value
    if not data_lines and event is None:
        return None
    return SSEEvent(event=event, data="\n".join(data_lines), raw=raw)


def encode_event(data: bytes | str, event: str | None = None) -> bytes:
    """One SSE frame. ``data`` must be a single line (JSON always is)."""
    if isinstance(data, str):
        data = data.encode()
    if event:
        return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"
    return b"data: " + data + b"\n\n"


KEEPALIVE_COMMENT = b": keep-alive\n\n"
