"""Responses-only Copilot models (``supported_endpoints: ["/responses"]``, e.g. ``gpt-5.x-codex``)
behind a Chat Completions provider.

The pipeline always hands this provider a Chat Completions body. For a model Copilot serves only at
``/responses`` the body is re-rendered as a Responses request (through the IR, with the translate
modules), sent streamed, and the Responses stream is re-encoded as Chat Completions chunks (or,
for a non-stream call, one ``chat.completion`` body) so the pipeline reads it like any chat answer.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import msgspec

from antiapi.providers.base import UpstreamResponse
from antiapi.translate import ir
from antiapi.translate import openai_chat as chat
from antiapi.translate import openai_responses as responses
from antiapi.translate.aggregate import Aggregator
from antiapi.wire.sse import SSEDecoder

_json = msgspec.json.Encoder()


def render(chat_body: bytes, copilot_model: str) -> tuple[ir.Request, ir.Outgoing, bytes]:
    """Chat body -> (IR request, Responses Outgoing, encoded Responses body, always streamed)."""
    req = chat.parse_request(chat_body)
    req.want_reasoning = True
    stream = req.stream
    req.stream = True
    out = responses.render_request(req, ir.Target(model=copilot_model, provider="copilot"))
    req.stream = stream
    out.body["model"] = copilot_model
    out.body["stream"] = True
    return req, out, _json.encode(out.body)


class BridgedResponse(UpstreamResponse):
    """A streamed ``/responses`` answer, read as Chat Completions (SSE when ``stream``, else JSON)."""

    def __init__(self, upstream: UpstreamResponse, req: ir.Request, out: ir.Outgoing, model: str, stream: bool) -> None:
        self._up = upstream
        self._req = req
        self._out = out
        self._model = model
        self._stream = stream
        self.status = 200
        self.headers = upstream.headers

    async def _events(self) -> AsyncIterator[ir.Event]:
        sse = SSEDecoder()
        dec = responses.StreamDecoder(self._out)
        async for chunk in self._up.aiter_bytes():
            for sev in sse.feed(chunk):
                for ev in dec.feed(sev):
                    yield ev
        for sev in sse.flush():
            for ev in dec.feed(sev):
                yield ev
        for ev in dec.finish():
            yield ev

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        if not self._stream:
            yield await self.aread()
            return
        enc = chat.StreamEncoder(self._req, self._model, created=int(time.time()))
        async for ev in self._events():
            data = enc.feed(ev)
            if data:
                yield data

    async def aread(self) -> bytes:
        if self._stream:
            return b"".join([c async for c in self.aiter_bytes()])
        agg = Aggregator()
        async for ev in self._events():
            agg.feed(ev)
        return chat.render_response(agg.response(), self._req, self._model, created=int(time.time()))

    async def aclose(self) -> None:
        await self._up.aclose()
