"""Gemini API (generativelanguage) with an API key."""

from __future__ import annotations

from urllib.parse import quote

import msgspec

from antiapi.providers._keyed import KeyedHttpProvider
from antiapi.providers.base import UpstreamCall, UpstreamResponse
from antiapi.translate import ir

_MAX_MODEL_PAGES = 20  # model-list pages read at most (1000 models each)


class GeminiProvider(KeyedHttpProvider):
    type = "gemini"
    dialects = ("gemini",)
    default_base_url = "https://generativelanguage.googleapis.com"

    def _root(self) -> str:
        base = self.base_url
        for suffix in ("/v1beta", "/v1"):
            if base.endswith(suffix):
                base = base[: -len(suffix)]
        return base + "/v1beta"

    def _headers(self) -> dict[str, str]:
        h = {"content-type": "application/json", **self.extra_headers}
        if self.api_key:
            h["x-goog-api-key"] = self.api_key
        return h

    async def send(self, call: UpstreamCall) -> UpstreamResponse:
        model = quote(call.model, safe="")
        if call.operation == "count_tokens":
            url = f"{self._root()}/models/{model}:countTokens"
        elif call.stream:
            url = f"{self._root()}/models/{model}:streamGenerateContent?alt=sse"
        else:
            url = f"{self._root()}/models/{model}:generateContent"
        return await self._post(url, self._headers(), call.body, "gemini")

    async def count_tokens(self, req: ir.Request, model: str) -> int | None:
        from antiapi.translate import gemini as gg

        body = gg.render_count_request(req, self.target(model))
        call = UpstreamCall(dialect="gemini", model=model, body=msgspec.json.encode(body), stream=False, operation="count_tokens")
        resp = await self.send(call)
        try:
            return gg.parse_count_response(await resp.aread())
        finally:
            await resp.aclose()

    async def list_models(self) -> list[str]:
        out: list[str] = []
        token = ""
        for _ in range(_MAX_MODEL_PAGES):  # pages of up to 1000 (the default page is 50)
            query = f"?pageSize=1000&pageToken={quote(token)}" if token else "?pageSize=1000"
            data = await self._get_json(f"{self._root()}/models{query}", self._headers(), "gemini")
            if not isinstance(data, dict):
                break
            for m in data.get("models", []):
                name = m.get("name", "") if isinstance(m, dict) else ""
                if name:
                    out.append(name.removeprefix("models/"))
            token = data.get("nextPageToken") or ""
            if not token:
                break
        return list(dict.fromkeys(out))
