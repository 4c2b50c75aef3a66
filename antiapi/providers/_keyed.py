"""Shared base for providers authenticated by a static API key over HTTP."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping

from antiapi.providers.http import httpx

from antiapi.providers import http as _http
from antiapi.providers.base import Capabilities, Provider, UpstreamCall, UpstreamResponse
from antiapi.translate import dialect as _dialect
from antiapi.translate import ir


class KeyedHttpProvider(Provider):
    """An upstream reached with an API key. Subclasses build URL and auth headers."""

    default_base_url: str = ""

    def __init__(
        self,
        cfg,
        *,
        timeouts: _http.Timeouts,
        transport: httpx.AsyncBaseTransport | None = None,
        **_: object,
    ) -> None:
        self.name = cfg.name
        self.cfg = cfg
        self.base_url = (cfg.base_url or self.default_base_url).rstrip("/")
        self.api_key = cfg.api_key
        self.extra_headers = dict(cfg.headers or {})
        self.reasoning_patterns = tuple(getattr(cfg, "reasoning_models", ()) or ())
        self.timeouts = timeouts
        self.client = _http.build_client(timeouts=timeouts, verify=cfg.verify_tls, transport=transport)
        self.capabilities = Capabilities(count_tokens=self.type in ("anthropic", "gemini"))

    def is_reasoning_model(self, model: str) -> bool:
        return any(fnmatch.fnmatchcase(model, p) for p in self.reasoning_patterns)

    def target(self, model: str) -> ir.Target:
        return ir.Target(model=model, provider=self.type, reasoning_model=self.is_reasoning_model(model))

    async def _post(self, url: str, headers: Mapping[str, str], body: bytes, dialect: str) -> UpstreamResponse:
        return await _http.send(
            self.client,
            provider=self.name,
            method="POST",
            url=url,
            headers=headers,
            body=body,
            first_byte_timeout=self.timeouts.first_byte,
            parse_error=_dialect.load(dialect).parse_error,
        )

    async def _get_json(self, url: str, headers: Mapping[str, str], dialect: str) -> object:
        resp = await _http.send(
            self.client,
            provider=self.name,
            method="GET",
            url=url,
            headers=headers,
            body=None,
            first_byte_timeout=self.timeouts.first_byte,
            parse_error=_dialect.load(dialect).parse_error,
        )
        try:
            import msgspec

            return msgspec.json.decode(await resp.aread())
        finally:
            await resp.aclose()

    async def aclose(self) -> None:
        await self.client.aclose()

    async def send(self, call: UpstreamCall) -> UpstreamResponse:  # pragma: no cover - abstract
        raise NotImplementedError
