"""Anthropic Messages API with an API key."""

from __future__ import annotations

import msgspec

from antiapi.providers._keyed import KeyedHttpProvider
from antiapi.providers.base import UpstreamCall, UpstreamResponse
from antiapi.translate import ir

ANTHROPIC_VERSION = "2023-06-01"
#: client headers forwarded when the client itself speaks Anthropic
_FORWARD = ("anthropic-beta", "anthropic-version")


class AnthropicProvider(KeyedHttpProvider):
    type = "anthropic"
    dialects = ("anthropic",)
    default_base_url = "https://api.anthropic.com"

    def _headers(self, call: UpstreamCall) -> dict[str, str]:
        h = {"content-type": "application/json", "anthropic-version": ANTHROPIC_VERSION, **self.extra_headers}
        for name in _FORWARD:
            if name in call.forward_headers:
                h[name] = call.forward_headers[name]
        if call.stream:
            h["accept"] = "text/event-stream"
        if self.api_key:
            h["x-api-key"] = self.api_key
        return h

    def _url(self, suffix: str) -> str:
        base = self.base_url
        if base.endswith("/v1"):
            base = base[:-3]
        return f"{base}/v1/{suffix}"

    async def send(self, call: UpstreamCall) -> UpstreamResponse:
        suffix = "messages/count_tokens" if call.operation == "count_tokens" else "messages"
        return await self._post(self._url(suffix), self._headers(call), call.body, "anthropic")

    async def count_tokens(self, req: ir.Request, model: str) -> int | None:
        from antiapi.translate import anthropic as am

        out = am.render_request(req, self.target(model))
        body = dict(out.body)
        for k in ("max_tokens", "stream", "temperature", "top_p", "top_k", "stop_sequences", "metadata"):
            body.pop(k, None)
        body["model"] = model
        call = UpstreamCall(dialect="anthropic", model=model, body=msgspec.json.encode(body), stream=False, operation="count_tokens")
        resp = await self.send(call)
        try:
            data = msgspec.json.decode(await resp.aread())
        finally:
            await resp.aclose()
        n = data.get("input_tokens") if isinstance(data, dict) else None
        return int(n) if isinstance(n, int) else None

    async def list_models(self) -> list[str]:
        h = {"anthropic-version": ANTHROPIC_VERSION, **self.extra_headers}
        if self.api_key:
            h["x-api-key"] = self.api_key
        data = await self._get_json(self._url("models"), h, "anthropic")
        return [m["id"] for m in data.get("data", []) if isinstance(m, dict) and "id" in m]  # type: ignore[union-attr]
