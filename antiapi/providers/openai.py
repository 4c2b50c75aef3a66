"""OpenAI and any OpenAI-compatible server (Ollama, vLLM, OpenRouter, Groq, ...)."""

from __future__ import annotations

from antiapi.providers.http import httpx

from antiapi.providers._keyed import KeyedHttpProvider
from antiapi.providers.base import UpstreamCall, UpstreamResponse

_OFFICIAL_HOSTS = ("api.openai.com",)
_REASONING_DEFAULT = ("o1*", "o3*", "o4*", "gpt-5*")


class OpenAIProvider(KeyedHttpProvider):
    type = "openai"
    default_base_url = "https://api.openai.com/v1"

    def __init__(self, cfg, **kw) -> None:
        super().__init__(cfg, **kw)
        host = httpx.URL(self.base_url).host
        self.official = host in _OFFICIAL_HOSTS
        # The official API serves Responses natively; compatible servers reliably speak Chat
        # only, unless the config says otherwise (``api: responses`` / ``both``).
        api = getattr(cfg, "api", None) or ("both" if self.official else "chat")
        self.dialects = {
            "chat": ("openai_chat",),
            "responses": ("openai_responses",),
            "both": ("openai_chat", "openai_responses"),
        }[api]
        if self.official and not self.reasoning_patterns:
            self.reasoning_patterns = _REASONING_DEFAULT

    def _headers(self, call: UpstreamCall) -> dict[str, str]:
        h = {"content-type": "application/json", **self.extra_headers}
        if call.stream:
            h["accept"] = "text/event-stream"
        if self.api_key:
            h["authorization"] = f"Bearer {self.api_key}"
        return h

    async def send(self, call: UpstreamCall) -> UpstreamResponse:
        path = "/responses" if call.dialect == "openai_responses" else "/chat/completions"
        return await self._post(self.base_url + path, self._headers(call), call.body, call.dialect)

    async def list_models(self) -> list[str]:
        h = {**self.extra_headers}
        if self.api_key:
            h["authorization"] = f"Bearer {self.api_key}"
        data = await self._get_json(self.base_url + "/models", h, "openai_chat")
        return [m["id"] for m in data.get("data", []) if isinstance(m, dict) and "id" in m]  # type: ignore[union-attr]
