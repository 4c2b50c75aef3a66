"""The GitHub Copilot provider: one signed-in GitHub account, served over the Copilot chat API.

Requests arrive as Chat Completions bodies (``dialects = ("openai_chat",)``, never passthrough).
``send`` maps the model name to Copilot's id, checks the model's capabilities, adds the headers
Copilot requires (editor headers, ``X-Initiator``, ``Copilot-Vision-Request``, a request id),
authenticates with the short-lived Copilot token (refreshed before expiry and once on 401) and
posts to ``{api}/chat/completions`` — or, for models Copilot serves only at ``/responses``,
through :mod:`antiapi.providers.copilot.bridge`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from antiapi.providers.http import httpx
import msgspec

from antiapi.accounts import CredentialStore
from antiapi.errors import (
    ErrorKind,
    InvalidRequest,
    LimitReached,
    NeedsSignIn,
    ProviderError,
    Unsupported,
    UpstreamHTTPError,
)
from antiapi.providers import http as _http
from antiapi.providers.base import Capabilities, Provider, QuotaState, UpstreamCall, UpstreamResponse
from antiapi.providers.copilot import bridge
from antiapi.providers.copilot.api import copilot_error_parser, has_images, initiator
from antiapi.providers.copilot.models import (
    STATIC_IDS,
    ModelInfo,
    all_client_names,
    parse_catalog,
    to_copilot,
)
from antiapi.providers.copilot.quota import QuotaTracker
from antiapi.providers.copilot.settings import CopilotSettings, from_config
from antiapi.providers.copilot.token import CopilotToken, TokenManager, get_json, github_error_parser
from antiapi.translate import ir

log = logging.getLogger("antiapi.providers.copilot")

_json = msgspec.json.Encoder()
_decode = msgspec.json.Decoder()

#: shortest gap between two quota polls triggered by 429/402 answers (seconds)
_MIN_POLL_GAP = 5.0


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


class CopilotProvider(Provider):
    type = "copilot"
    dialects = ("openai_chat",)
    passthrough = False
    dynamic_models = True

    def __init__(
        self,
        cfg: Any,
        *,
        timeouts: _http.Timeouts = _http.Timeouts(),
        transport: httpx.AsyncBaseTransport | None = None,
        data_dir: Path | None = None,
        env: dict[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        **_: object,
    ) -> None:
        self.name = cfg.name
        self.account = cfg.account
        self.settings: CopilotSettings = from_config(cfg, env or {})
        self.capabilities = Capabilities(streaming=True, tools=True, images=True, thinking=True, count_tokens=False)
        self.timeouts = timeouts
        self.clock = clock
        self.client = _http.build_client(timeouts=timeouts, verify=self.settings.verify_tls, transport=transport)
        self.store = CredentialStore(data_dir) if data_dir is not None else None
        self._aux_timeout = min(30.0, timeouts.first_byte)
        self.tokens = TokenManager(
            self.settings, self.client, label=self.account, load_github_token=self._load_github_token,
            timeout=self._aux_timeout, clock=clock, stamp=self._credential_stamp,
        )
        self.tracker = QuotaTracker()
        self._catalog: dict[str, ModelInfo] = {}
        self._catalog_at: float | None = None
        self._sync_task: asyncio.Task | None = None
        self._bg: asyncio.Task | None = None
        self._wake: asyncio.Event | None = None
        self._last_poll = 0.0
        #: 429 retry-after: no requests to this account until then
        self._rate_limited_until: float | None = None
        #: Copilot ids that answered 402 (blocked while the account is limited)
        self._exhausted: set[str] = set()
        #: Copilot ids found to be served at /responses only (from a 400 unsupported_api_for_model)
        self._responses_only: set[str] = set()
        self._parse_error = copilot_error_parser(self.name, reset_hint=self.tracker.premium_reset, clock=clock)

    def __repr__(self) -> str:
        return f"CopilotProvider({self.name!r}, account={self.account!r})"

    # ------------------------------------------------------------------ credentials

    def _load_github_token(self) -> str | None:
        if self.store is None or not self.account:
            return None
        data = self.store.load("copilot", self.account)
        tok = data.get("github_token") if isinstance(data, dict) else None
        return tok if isinstance(tok, str) and tok else None

    def _credential_stamp(self) -> object:
        if self.store is None or not self.account:
            return None
        try:
            st = self.store.path("copilot", self.account).stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    async def _copilot_token(self) -> CopilotToken:
        try:
            return await self.tokens.get()
        except NeedsSignIn as e:
            e.provider = self.name
            raise

    def api_base(self, tok: CopilotToken | None) -> str:
        e = self.settings.endpoints
        return e.api or (tok.api if tok is not None and tok.api else None) or e.default_api

    # ------------------------------------------------------------------ models

    def target(self, model: str) -> ir.Target:
        return ir.Target(model=to_copilot(model, frozenset(self._catalog) or None), provider="copilot")

    def model_info(self, model: str) -> ModelInfo | None:
        return self._catalog.get(to_copilot(model, frozenset(self._catalog) or None))

    def model_capabilities(self, model: str) -> Capabilities:
        """Per-model capabilities from the account's model list (provider defaults when unknown)."""
        info = self.model_info(model)
        return info.capabilities() if info is not None else self.capabilities

    async def list_models(self) -> list[str]:
        """Client names of the account's chat models (Copilot ids and Anthropic-style aliases).
        Never raises; after ``models_timeout`` seconds (or on any failure) the static list."""
        infos: list[ModelInfo] | None = None
        if not self._catalog_stale():
            return all_client_names(list(self._catalog))
        try:
            infos = await asyncio.wait_for(asyncio.shield(self._ensure_sync()), self.settings.models_timeout)
        except asyncio.TimeoutError:
            log.warning("%s: the model list took longer than %g s; serving the default models for now",
                        self.name, self.settings.models_timeout)
        except ProviderError as e:
            log.warning("%s: cannot read the model list (%s); serving the default models", self.name, e.message)
        except Exception as e:  # never let a model sync stop the gateway
            log.warning("%s: model list failed (%s); serving the default models", self.name, type(e).__name__)
        ids = [i.id for i in infos] if infos else list(STATIC_IDS)
        return all_client_names(ids)

    def _ensure_sync(self) -> asyncio.Task:
        t = self._sync_task
        if t is None or t.done():
            t = self._sync_task = asyncio.ensure_future(self._sync_models())
            t.add_done_callback(_retrieve)
        return t

    def _catalog_stale(self) -> bool:
        return self._catalog_at is None or self.clock() - self._catalog_at > self.settings.models_ttl

    async def _sync_models(self) -> list[ModelInfo]:
        data = await self._copilot_get("/models", extra={"openai-intent": "model-access"})
        infos = parse_catalog(data)
        if infos:
            self._catalog = {i.id: i for i in infos}
            self._catalog_at = self.clock()
        return infos

    async def _copilot_get(self, path: str, extra: dict[str, str] | None = None) -> Any:
        tok = await self._copilot_token()
        for attempt in (0, 1):
            headers = {**self.settings.copilot_headers(tok.value), **(extra or {})}
            try:
                return await get_json(self.client, self.api_base(tok) + path, headers, provider=self.name,
                                      timeout=self._aux_timeout, parse_error=self._parse_error)
            except UpstreamHTTPError as e:
                if e.status == 401 and attempt == 0:
                    tok = await self.tokens.refresh(tok)
                    continue
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ quota

    def quota(self) -> QuotaState:
        self.tokens.recheck()  # a new `antiapi login copilot` ends "needs sign-in" at once
        self.tracker.sign_in_detail = self.tokens.needs_sign_in
        return self.tracker.state(self.clock())

    async def refresh_quota(self) -> QuotaState:
        """Read ``copilot_internal/user`` now (plan and quota snapshots)."""
        self._last_poll = self.clock()
        gh = self.tokens.github_token_or_raise()
        parse = github_error_parser(self.name, self.account, what="reading the Copilot quota")
        try:
            data = await get_json(self.client, self.settings.endpoints.quota, self.settings.github_headers(gh),
                                  provider=self.name, timeout=self._aux_timeout, parse_error=parse)
        except NeedsSignIn as e:
            self.tokens.mark_revoked(e.message)
            raise
        if isinstance(data, dict):
            self.tracker.update_from_user(data, self.clock())
        return self.quota()

    def _poke_quota(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _background(self) -> None:
        assert self._wake is not None
        while True:
            try:
                await self.refresh_quota()
            except ProviderError as e:
                log.info("%s: quota refresh failed: %s", self.name, e.message)
            except Exception as e:  # keep the loop alive whatever happens
                log.warning("%s: quota refresh failed (%s)", self.name, type(e).__name__)
            if self._catalog_stale() and not self.tokens.needs_sign_in:
                with contextlib.suppress(Exception):
                    await self._ensure_sync()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.quota_interval)
            self._wake.clear()
            gap = self._last_poll + min(_MIN_POLL_GAP, self.settings.quota_interval / 10) - self.clock()
            if gap > 0:
                await asyncio.sleep(gap)

    async def start(self) -> None:
        if self._bg is None and self.settings.quota_interval > 0:
            self._wake = asyncio.Event()
            self._bg = asyncio.ensure_future(self._background())

    async def aclose(self) -> None:
        for t in (self._bg, self._sync_task):
            if t is not None and not t.done():
                t.cancel()
                with contextlib.suppress(BaseException):
                    await t
        self._bg = self._sync_task = None
        await self.client.aclose()

    # ------------------------------------------------------------------ limits

    def _check_limits(self, cid: str, info: ModelInfo | None) -> None:
        now = self.clock()
        if self.tokens.needs_sign_in:
            self.tokens.github_token_or_raise()  # reloads once; raises NeedsSignIn when still signed out
        if self._rate_limited_until is not None:
            if now < self._rate_limited_until:
                wait = self._rate_limited_until - now
                raise UpstreamHTTPError(
                    f"{self.name}: Copilot rate-limited this account; not sending for another {wait:.0f} s",
                    kind=ErrorKind.RATE_LIMIT, status=429, retry_after=wait, provider=self.name,
                )
            self._rate_limited_until = None
        if self.tracker.limited(now):
            if info is None or info.premium is not False or cid in self._exhausted:
                until = self.tracker.limited_until
                raise LimitReached(
                    f"{self.name}: the Copilot premium-request quota of {self.account} is used up until "
                    f"{_iso(until) if until else 'its reset'}; not sending",
                    resets_at=until, provider=self.name, code="quota_exceeded",
                )
        else:
            self._exhausted.clear()

    def _after_error(self, e: ProviderError, cid: str) -> None:
        now = self.clock()
        if isinstance(e, LimitReached):
            until = e.resets_at or self.tracker.premium_reset()
            if until is None or until <= now:
                until = now + self.settings.quota_cooldown
            e.resets_at = until
            self._exhausted.add(cid)
            self.tracker.mark_limited(until, e.message)
            log.warning("%s: Copilot quota used up; this account is skipped until %s", self.name, _iso(until))
            self._poke_quota()
        elif e.kind is ErrorKind.RATE_LIMIT:
            if e.retry_after:
                self._rate_limited_until = now + e.retry_after
            self._poke_quota()
        elif isinstance(e, UpstreamHTTPError) and e.status == 401:
            e.retryable = True  # a fresh token was refused too: another account may serve

    # ------------------------------------------------------------------ send

    async def send(self, call: UpstreamCall) -> UpstreamResponse:
        if call.operation != "generate":
            raise Unsupported(f"{self.name}: Copilot does not count tokens", param="model")
        try:
            body = _decode.decode(call.body)
        except msgspec.DecodeError as e:
            raise InvalidRequest(f"the request body is not valid JSON ({e})") from None
        if not isinstance(body, dict):
            raise InvalidRequest("the request body must be a JSON object")
        known = frozenset(self._catalog) or None
        cid = to_copilot(call.model or str(body.get("model") or ""), known)
        info = self._catalog.get(cid)
        body["model"] = cid
        messages = body.get("messages")
        vision = has_images(messages)
        where = f"'{call.model}' (Copilot model {cid} of {self.name})"
        if vision and info is not None and info.vision is False:
            raise Unsupported(f"The model {where} does not accept images; remove the image content or choose a "
                              "vision model.", param="messages")
        if body.get("tools") and info is not None and info.tools is False:
            raise Unsupported(f"The model {where} does not support tools; remove 'tools' or choose another model.",
                              param="tools")
        if info is not None and info.streaming is False and call.stream:
            raise Unsupported(f"The model {where} does not stream; send the request with stream: false.", param="stream")
        if info is not None and info.max_output_tokens:
            for k in ("max_tokens", "max_completion_tokens"):
                v = body.get(k)
                if isinstance(v, int) and v > info.max_output_tokens:
                    body[k] = info.max_output_tokens  # Copilot refuses more than the model's limit
        self._check_limits(cid, info)
        if self._catalog_stale() and self._bg is not None:
            self._ensure_sync()  # refresh in the background; never wait for it here
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream" if call.stream else "application/json",
            "x-initiator": initiator(messages),
        }
        if vision:
            headers["copilot-vision-request"] = "true"
        payload = _json.encode(body)
        if (info is not None and info.responses_only) or cid in self._responses_only:
            return await self._send_responses(payload, headers, cid, call.stream)
        try:
            return await self._post("/chat/completions", payload, headers, cid)
        except UpstreamHTTPError as e:
            if e.code != "unsupported_api_for_model":
                raise
            # the model list was not known yet: Copilot serves this model at /responses only
            log.info("%s: %s is served at /responses only; using it", self.name, cid)
            self._responses_only.add(cid)
            return await self._send_responses(payload, headers, cid, call.stream)

    async def _send_responses(self, chat_body: bytes, headers: dict[str, str], cid: str, stream: bool) -> UpstreamResponse:
        req, out, payload = bridge.render(chat_body, cid)
        resp = await self._post("/responses", payload, {**headers, "accept": "text/event-stream"}, cid)
        return bridge.BridgedResponse(resp, req, out, cid, stream)

    async def _post(self, path: str, payload: bytes, headers: dict[str, str], cid: str) -> UpstreamResponse:
        tok = await self._copilot_token()
        for attempt in (0, 1):
            h = {**self.settings.copilot_headers(tok.value), **headers, "x-request-id": str(uuid.uuid4())}
            try:
                resp = await _http.send(
                    self.client, provider=self.name, method="POST", url=self.api_base(tok) + path, headers=h,
                    body=payload, first_byte_timeout=self.timeouts.first_byte, parse_error=self._parse_error,
                )
            except UpstreamHTTPError as e:
                if e.status == 401 and attempt == 0:
                    log.info("%s: Copilot token refused (%s); refreshing it once", self.name, e.message)
                    tok = await self.tokens.refresh(tok)
                    continue
                self._after_error(e, cid)
                raise
            if self.tracker.update_from_headers(resp.headers, self.clock()):
                w = self.tracker.windows.get("premium_interactions")
                if w is not None and w.used_percent is not None and w.used_percent < 100 and self.tracker.limited_until:
                    # the account has quota again (reset or new allowance)
                    self.tracker.limited_until = self.tracker.limited_detail = None
            return resp
        raise AssertionError("unreachable")  # pragma: no cover


def _retrieve(t: asyncio.Task) -> None:
    if not t.cancelled():
        t.exception()
