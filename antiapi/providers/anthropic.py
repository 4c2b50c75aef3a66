"""Anthropic Messages API with an API key."""

from __future__ import annotations

from urllib.parse import quote

import msgspec

from antiapi.providers._keyed import KeyedHttpProvider
from antiapi.providers.base import UpstreamCall, UpstreamResponse
from antiapi.translate import ir

ANTHROPIC_VERSION = "2023-06-01"
#: client headers forwarded when the client itself speaks Anthropic
_FORWARD = ("anthropic-beta", "anthropic-version")
_MAX_MODEL_PAGES = 20  # model-list pages read at most (1000 models each)


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
        out: list[str] = []
        after = ""
        for _ in range(_MAX_MODEL_PAGES):  # pages of up to 1000 (the default page is 20)
            query = f"?limit=1000&after_id={quote(after)}" if after else "?limit=1000"
            data = await self._get_json(self._url("models") + query, h, "anthropic")
            page = data.get("data", []) if isinstance(data, dict) else []
            out += [m["id"] for m in page if isinstance(m, dict) and isinstance(m.get("id"), str)]
            after = data.get("last_id") if isinstance(data, dict) else None  # type: ignore[assignment]
            if not (isinstance(data, dict) and data.get("has_more") and after and page):
                break
        return list(dict.fromkeys(out))
