"""Build a whole :class:`ir.Response` from a sequence of IR events (pure).

Used for non-stream clients (whatever the upstream sent) and for usage accounting. The final
object equals what the stream showed: same ids, same tool arguments, same order of blocks.
"""

from __future__ import annotations

from antiapi.errors import ErrorKind, StreamInterrupted, UpstreamHTTPError
from antiapi.translate import ir
from antiapi.translate.common import new_id, repair_json_object


class Aggregator:
    __slots__ = ("_blocks", "_order", "id", "model", "usage", "stop_reason", "stop_sequence", "error", "ended", "started")

    def __init__(self) -> None:
        self._blocks: dict[int, dict] = {}
        self._order: list[int] = []
        self.id: str | None = None
        self.model: str | None = None
        self.usage = ir.Usage()
        self.stop_reason: ir.StopReason | None = None
        self.stop_sequence: str | None = None
        self.error: ir.Error | None = None
        self.ended = False
        self.started = False

    def feed(self, ev: ir.Event) -> None:
        t = type(ev)
        if t is ir.TextDelta or t is ir.ReasoningDelta:
            self._blocks[ev.index]["text"].append(ev.text)  # type: ignore[union-attr]
        elif t is ir.ArgsDelta:
            self._blocks[ev.index]["text"].append(ev.json)  # type: ignore[union-attr]
        elif t is ir.BlockStart:
            assert isinstance(ev, ir.BlockStart)
            self._blocks[ev.index] = {"ev": ev, "text": [], "sig": []}
            self._order.append(ev.index)
        elif t is ir.SignatureDelta:
            self._blocks[ev.index]["sig"].append(ev.signature)  # type: ignore[union-attr]
        elif t is ir.Start:
            assert isinstance(ev, ir.Start)
            self.started = True
            self.id = ev.id or self.id
            self.model = ev.model or self.model
            if ev.usage:
                merge_usage(self.usage, ev.usage)
        elif t is ir.UsageEvent:
            merge_usage(self.usage, ev.usage)  # type: ignore[union-attr]
        elif t is ir.Finish:
            assert isinstance(ev, ir.Finish)
            self.stop_reason = ev.reason
            self.stop_sequence = ev.stop_sequence
        elif t is ir.Error:
            self.error = ev  # type: ignore[assignment]
        elif t is ir.End:
            self.ended = True

    def feed_all(self, events: list[ir.Event]) -> None:
        for ev in events:
            self.feed(ev)

    @property
    def has_tool_calls(self) -> bool:
        return any(b["ev"].kind == "tool_call" for b in self._blocks.values())

    def content(self) -> list[ir.Part]:
        parts: list[ir.Part] = []
        for idx in self._order:
            b = self._blocks[idx]
            start: ir.BlockStart = b["ev"]
            text = "".join(b["text"])
            sig = "".join(b["sig"]) or None
            if start.kind == "text":
                if text:
                    parts.append(ir.TextPart(text=text))
            elif start.kind == "reasoning":
                parts.append(ir.ReasoningPart(text=text, signature=sig, provider=start.provider))
            elif start.kind == "redacted_reasoning":
                parts.append(ir.ReasoningPart(redacted=start.data or "", provider=start.provider or "anthropic"))
            elif start.kind == "tool_call":
                parts.append(
                    ir.ToolCallPart(
                        id=start.id or new_id("call_"),
                        name=start.name or f"tool_{idx}",
                        arguments=repair_json_object(text),
                        signature=sig,
                    )
                )
        return parts

    def response(self) -> ir.Response:
        """The whole answer. Raises the matching ProviderError if the upstream failed."""
        if self.error is not None:
            raise error_from_event(self.error)
        if not self.ended and self.stop_reason is None:
            raise StreamInterrupted("The upstream stream ended before the response was complete.")
        reason = self.stop_reason or "end_turn"
        if self.has_tool_calls:
            reason = "tool_use"
        elif reason == "tool_use":
            reason = "end_turn"
        return ir.Response(
            id=self.id or new_id("msg_"),
            model=self.model or "",
            content=self.content(),
            stop_reason=reason,
            stop_sequence=self.stop_sequence,
            usage=self.usage,
        )


def merge_usage(into: ir.Usage, new: ir.Usage) -> None:
    """Cumulative usage: take each non-zero field of ``new`` (last value wins)."""
    for f in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens"):
        v = getattr(new, f)
        if v:
            setattr(into, f, v)


def error_from_event(ev: ir.Error) -> UpstreamHTTPError:
    try:
        kind = ErrorKind(ev.kind)
    except ValueError:
        kind = ErrorKind.API_ERROR
    return UpstreamHTTPError(ev.message, kind=kind, status=ev.status, code=ev.code)


def response_events(resp: ir.Response) -> list[ir.Event]:
    """Inverse of aggregation: the event sequence that describes ``resp`` (for non-stream
    upstream bodies served to stream clients)."""
    out: list[ir.Event] = [ir.Start(id=resp.id, model=resp.model, usage=ir.Usage(
        input_tokens=resp.usage.input_tokens,
        cache_read_tokens=resp.usage.cache_read_tokens,
        cache_write_tokens=resp.usage.cache_write_tokens,
    ))]
    for i, part in enumerate(resp.content):
        if isinstance(part, ir.TextPart):
            out += [ir.BlockStart(index=i, kind="text"), ir.TextDelta(index=i, text=part.text), ir.BlockStop(index=i)]
        elif isinstance(part, ir.ReasoningPart):
            if part.redacted is not None:
                out += [ir.BlockStart(index=i, kind="redacted_reasoning", data=part.redacted, provider=part.provider), ir.BlockStop(index=i)]
                continue
            out.append(ir.BlockStart(index=i, kind="reasoning", provider=part.provider))
            if part.text:
                out.append(ir.ReasoningDelta(index=i, text=part.text))
            if part.signature:
                out.append(ir.SignatureDelta(index=i, signature=part.signature))
            out.append(ir.BlockStop(index=i))
        elif isinstance(part, ir.ToolCallPart):
            out.append(ir.BlockStart(index=i, kind="tool_call", id=part.id, name=part.name))
            if part.arguments and part.arguments != "{}":
                out.append(ir.ArgsDelta(index=i, json=part.arguments))
            if part.signature:
                out.append(ir.SignatureDelta(index=i, signature=part.signature))
            out.append(ir.BlockStop(index=i))
    out.append(ir.Finish(reason=resp.stop_reason, stop_sequence=resp.stop_sequence))
    out.append(ir.UsageEvent(usage=resp.usage))
    out.append(ir.End())
    return out
