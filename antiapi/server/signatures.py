"""Gemini thoughtSignatures on function calls, kept across turns for clients that cannot carry them.

Gemini attaches a ``thoughtSignature`` to each functionCall part and wants it replayed on that
part in the next request. Anthropic ``tool_use`` blocks and OpenAI tool calls have no field for
it, so the gateway remembers ``call id -> signature`` (bounded, in memory) when it streams a
Gemini answer and puts the signature back when the client returns the call in its history.
"""

from __future__ import annotations

from collections import OrderedDict

from antiapi.translate import ir


class ToolSignatureCache:
    def __init__(self, size: int = 8192) -> None:
        self._d: OrderedDict[str, str] = OrderedDict()
        self._size = size

    def put(self, call_id: str, signature: str) -> None:
        self._d[call_id] = signature
        self._d.move_to_end(call_id)
        while len(self._d) > self._size:
            self._d.popitem(last=False)

    def get(self, call_id: str) -> str | None:
        return self._d.get(call_id)

    def tap(self) -> "SignatureTap":
        return SignatureTap(self)

    def fill(self, req: ir.Request) -> int:
        """Give tool calls in ``req`` their remembered signatures. Returns how many were filled."""
        n = 0
        for msg in req.messages:
            for part in msg.content:
                if isinstance(part, ir.ToolCallPart) and part.signature is None:
                    sig = self._d.get(part.id)
                    if sig is not None:
                        part.signature = sig
                        n += 1
        return n


class SignatureTap:
    """Watches one response's events and records tool-call signatures."""

    __slots__ = ("_cache", "_ids")

    def __init__(self, cache: ToolSignatureCache) -> None:
        self._cache = cache
        self._ids: dict[int, str] = {}

    def feed(self, ev: ir.Event) -> None:
        t = type(ev)
        if t is ir.BlockStart and ev.kind == "tool_call" and ev.id:  # type: ignore[union-attr]
            self._ids[ev.index] = ev.id  # type: ignore[union-attr]
        elif t is ir.SignatureDelta:
            call_id = self._ids.get(ev.index)  # type: ignore[union-attr]
            if call_id is not None:
                self._cache.put(call_id, ev.signature)  # type: ignore[union-attr]
