"""The Codex provider: one signed-in ChatGPT account, served through the Codex Responses backend.

Requests arrive rendered by ``antiapi.translate.openai_responses`` for ``provider="codex"``; ``send``
re-checks the body against the backend's rules (upstreams.md §1.6: ``store`` false, ``stream``
true, ``instructions`` present, ``include`` reasoning.encrypted_content, no sampling / token-limit
parameters, ``reasoning.effort`` set), resolves model aliases (``gpt-5.5-high`` -> ``gpt-5.5`` +
effort high) and adds the headers of §1.5. Usage limits come from the ``x-codex-*`` headers and the
``usage_limit_reached`` 429 (§1.9, §1.10).

Options (``providers.<name>.options``): ``reasoning_effort`` (low|medium|high, default from
``ANTI_API_CODEX_REASONING_EFFORT``, else medium), ``originator`` (default "antiapi"),
``client_version`` (for ``/models``), ``refresh_lead_seconds`` (300), ``effort_aliases`` (true),
``models_timeout`` (3 s), ``poll_usage`` (true: read ``/wham/usage`` once at start).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import time
import uuid
from collections.abc import Mapping
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
    UpstreamHTTPError,
)
from antiapi.providers import http as _http
from antiapi.providers.base import Capabilities, Provider, QuotaState, UpstreamCall, UpstreamResponse
from antiapi.providers.codex import models as _models
from antiapi.providers.codex import quota as _quota
from antiapi.providers.codex.oauth import Endpoints, TokenSet
from antiapi.providers.codex.tokens import DEFAULT_LEAD, AccountState, account_state
from antiapi.translate import ir
from antiapi.translate import openai_responses as _responses

log = logging.getLogger("antiapi.providers.codex")

ENV_EFFORT = "ANTI_API_CODEX_REASONING_EFFORT"
ENV_INSECURE = "ANTI_API_CODEX_INSECURE_TLS"

#: request fields the backend rejects ("Unsupported parameter: <name>", upstreams.md §1.6)
UNSUPPORTED_FIELDS = (
    "max_output_tokens", "max_completion_tokens", "temperature", "top_p", "presence_penalty",
    "frequency_penalty", "seed", "metadata", "top_logprobs", "truncation", "user",
    "prompt_cache_retention", "prompt_cache_options", "safety_identifier", "previous_response_id",
    "stream_options", "generate", "background", "max_tool_calls", "conversation",
)
ENCRYPTED = "reasoning.encrypted_content"

_decode = msgspec.json.Decoder()
_encode = msgspec.json.Encoder()


def truthy(v: Any) -> bool:
    return str(v).strip().lower() in ("1", "true", "yes", "on")


def effort_setting(options: Mapping[str, Any], env: Mapping[str, str]) -> str:
    """The default reasoning effort: options.reasoning_effort, then the env var, then medium."""
    for where, v in (("options.reasoning_effort", options.get("reasoning_effort")), (ENV_EFFORT, env.get(ENV_EFFORT))):
        if v is None or v == "":
            continue
        val = str(v).strip().lower()
        if val in _models.EFFORTS:
            return val
        log.warning("codex: %s=%r is not a reasoning effort (low, medium, high); using medium", where, v)
    return "medium"


class CodexProvider(Provider):
    type = "codex"
    dialects = ("openai_responses",)
    passthrough = False
    dynamic_models = True

    def __init__(
        self,
        cfg,
        *,
        timeouts: _http.Timeouts | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        data_dir=None,
        env: Mapping[str, str] | None = None,
        **_: object,
    ) -> None:
        self.name = cfg.name
        self.cfg = cfg
        self.account = cfg.account
        self.env = dict(env or {})
        opts = dict(cfg.options or {})
        self.options = opts
        self.endpoints = Endpoints.resolve(cfg.endpoints, cfg.base_url)
        self.insecure_env = truthy(self.env.get(ENV_INSECURE, ""))
        self.verify_tls = bool(cfg.verify_tls) and not self.insecure_env
        self.timeouts = timeouts or _http.Timeouts()
        self.client = _http.build_client(timeouts=self.timeouts, verify=self.verify_tls, transport=transport)
        self.capabilities = Capabilities(streaming=True, tools=True, images=True, thinking=True, count_tokens=False)
        self.extra_headers = dict(cfg.headers or {})
        self.default_effort = effort_setting(opts, self.env)
        self.originator = str(opts.get("originator") or "antiapi")
        self.client_version = str(opts.get("client_version") or _models.CLIENT_VERSION)
        self.lead = float(opts.get("refresh_lead_seconds", DEFAULT_LEAD))
        self.models_timeout = float(opts.get("models_timeout", 3.0))
        self.poll_usage = truthy(opts.get("poll_usage", True))
        self.catalogue = _models.Catalogue(effort_aliases=truthy(opts.get("effort_aliases", True)))
        self.state: AccountState | None = None
        if self.account and data_dir is not None:
            self.state = account_state(CredentialStore(data_dir), self.account)
        self._tasks: set[asyncio.Task] = set()

    def __repr__(self) -> str:
        return f"CodexProvider(name={self.name!r}, account={self.account!r})"

    def _warn_insecure(self) -> None:
        why = f"{ENV_INSECURE}=1" if self.insecure_env else "verify_tls: false"
        log.warning(
            "codex provider %s: TLS CERTIFICATE VERIFICATION IS OFF (%s). Anyone on the network path can read "
            "and change this traffic and steal the ChatGPT tokens. Use it only to debug a TLS-intercepting proxy.",
            self.name, why,
        )

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if not self.verify_tls:
            self._warn_insecure()
        st = self.state
        if st is None:
            log.warning("codex provider %s has no signed-in account; run `antiapi login codex`", self.name)
            return
        if st.needs_sign_in:
            log.warning("codex account %s needs to sign in again (%s): run `antiapi login codex`", st.label, st.needs_sign_in)
            return
        if self.poll_usage:
            self._spawn(self._quiet_usage())

    def _spawn(self, coro) -> None:
        t = asyncio.ensure_future(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _quiet_usage(self) -> None:
        try:
            await asyncio.wait_for(self.refresh_quota(), 10)
        except Exception as e:  # informational only
            log.info("codex %s: usage snapshot not available (%s)", self.name, getattr(e, "message", e))

    async def aclose(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await self.client.aclose()

    # ------------------------------------------------------------------ routing helpers

    def target(self, model: str) -> ir.Target:
        return ir.Target(model=model, provider="codex", reasoning_model=True)

    def _state(self) -> AccountState:
        if self.state is None:
            raise NeedsSignIn(
                f"The Codex provider {self.name} has no signed-in account. Run `antiapi login codex` to sign in.",
                provider=self.name,
                code="needs_sign_in",
            )
        return self.state

    def _check_limit(self, st: AccountState) -> None:
        until = st.limited_until
        if until is None:
            return
        now = time.time()
        if now >= until:
            st.limited_until = None
            st.limit_detail = None
            return
        raise LimitReached(
            f"codex: the ChatGPT account {st.label} is at its usage limit until "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(until))} (in {_quota.describe_wait(until - now)}).",
            resets_at=until,
            retry_after=until - now,
            provider=self.name,
            code="usage_limit_reached",
        )

    # ------------------------------------------------------------------ request body

    def prepare_body(self, raw: bytes, session: str | None = None) -> tuple[bytes, str]:
        """The rendered body -> what the backend accepts; also the conversation key
        (``prompt_cache_key``, else the gateway's ``session`` key, else a hash of the opening turn)."""
        try:
            body = _decode.decode(raw)
        except msgspec.DecodeError as e:
            raise InvalidRequest(f"codex: the request body is not JSON ({e})") from None
        if not isinstance(body, dict):
            raise InvalidRequest("codex: the request body is not a JSON object")
        name = body.get("model")
        if not isinstance(name, str) or not name:
            raise InvalidRequest("model: required", param="model")
        slug, implied = self.catalogue.resolve(name)
        body["model"] = slug
        reasoning = body.get("reasoning")
        reasoning = dict(reasoning) if isinstance(reasoning, dict) else {}
        asked = reasoning.get("effort")
        effort = implied or (asked if isinstance(asked, str) and asked in _models.EFFORTS else None) or self.default_effort
        reasoning["effort"] = self.catalogue.clamp_effort(slug, effort)
        body["reasoning"] = reasoning
        for k in UNSUPPORTED_FIELDS:
            body.pop(k, None)
        if not isinstance(body.get("instructions"), str):
            body["instructions"] = ""
        body["store"] = False
        body["stream"] = True
        include = body.get("include")
        include = [x for x in include if isinstance(x, str)] if isinstance(include, list) else []
        if ENCRYPTED not in include:
            include.append(ENCRYPTED)
        body["include"] = include
        items = body.get("input")
        if isinstance(items, str):
            body["input"] = items = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": items}]}]
        if isinstance(items, list):
            for it in items:
                if not isinstance(it, dict):
                    continue
                if it.get("role") == "system":
                    it["role"] = "developer"
                # nothing is stored server-side (store: false): item ids would point at nothing
                if "id" in it and it.get("type") in (None, "message", "reasoning", "function_call", "custom_tool_call"):
                    it.pop("id")
                it.pop("prompt_cache_breakpoint", None)
        if not body.get("tools"):
            body.pop("parallel_tool_calls", None)
        key = body.get("prompt_cache_key")
        if not isinstance(key, str) or not key:
            key = session or conversation_key(items if isinstance(items, list) else [])
            body["prompt_cache_key"] = key
        return _encode.encode(body), key

    # ------------------------------------------------------------------ HTTP

    def _headers(self, ts: TokenSet, *, stream: bool, session: str | None = None) -> dict[str, str]:
        h = {
            "authorization": f"Bearer {ts.access_token}",
            "originator": self.originator,
        }
        if ts.account_id:
            h["chatgpt-account-id"] = ts.account_id
        if stream:
            h["content-type"] = "application/json"
            h["accept"] = "text/event-stream"
        else:
            h["accept"] = "application/json"
        if session:
            h["session_id"] = session
        h.update(self.extra_headers)
        return h

    def parse_error(self, status: int, headers: Mapping[str, str], raw: bytes) -> ProviderError:
        """The backend's error answer -> a typed error (usage limits become LimitReached)."""
        now = time.time()
        self._observe_headers(headers, now)
        base = _responses.parse_error(status, headers, raw)
        msg = base.message[len("openai: "):] if base.message.startswith("openai: ") else base.message
        label = self.state.label if self.state is not None else self.name
        info = _quota.limit_info(raw) if status in (429, 403, 402) else None
        kind = info.type if info is not None else None
        if kind == "usage_limit_reached" or base.code == "usage_limit_reached":
            resets_at = info.resets_at if info else None
            resets_in = info.resets_in if info else None
            if resets_at is None and resets_in is not None:
                resets_at = now + resets_in
            if resets_at is None:
                # the windows' reset times from the headers of this very answer
                q = _quota.from_headers(headers, now)
                full = [w.resets_at for w in (q.windows if q else []) if (w.used_percent or 0) >= 100 and w.resets_at]
                resets_at = max(full) if full else None
            if resets_in is None and resets_at is not None:
                resets_in = max(0.0, resets_at - now)
            plan = info.plan if info else None
            when = ""
            if resets_at is not None:
                when = (f"; it resets at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(resets_at))}"
                        f" (in {_quota.describe_wait(resets_at - now)})")
            err: ProviderError = LimitReached(
                f"codex: the ChatGPT account {label} reached its usage limit"
                f"{f' ({plan} plan)' if plan else ''}{when}. antiapi uses another account for this model when one is signed in.",
                resets_at=resets_at,
                retry_after=resets_in,
                code="usage_limit_reached",
            )
            if self.state is not None and resets_at is not None:
                self.state.limited_until = resets_at
                self.state.limit_detail = "usage_limit_reached"
            return err
        if kind == "usage_not_included" or base.code == "usage_not_included":
            err = UpstreamHTTPError(
                f"codex: the ChatGPT plan of {label} does not include Codex ({msg}).",
                kind=ErrorKind.BILLING, status=403, code="usage_not_included",
            )
            err.retryable = True  # another account may include it
            return err
        if status == 401:
            return UpstreamHTTPError(
                f"codex: the backend refused the access token of {label} ({msg}).",
                kind=ErrorKind.AUTHENTICATION, status=401, code=base.code,
            )
        base.message = f"codex: {msg}"
        return base

    def _observe_headers(self, headers: Mapping[str, str], now: float | None = None) -> None:
        st = self.state
        if st is None or not _quota.has_quota_headers(headers):
            return
        q = _quota.from_headers(headers, time.time() if now is None else now)
        if q is not None:
            st.quota = q

    async def _send_once(self, method: str, url: str, ts: TokenSet, body: bytes | None, *, stream: bool,
                         session: str | None = None) -> _http.HttpUpstreamResponse:
        return await _http.send(
            self.client,
            provider=self.name,
            method=method,
            url=url,
            headers=self._headers(ts, stream=stream, session=session),
            body=body,
            first_byte_timeout=self.timeouts.first_byte,
            parse_error=self.parse_error,
        )

    async def _authed(self, method: str, url: str, body: bytes | None, *, stream: bool,
                      session: str | None = None) -> _http.HttpUpstreamResponse:
        """Send with fresh tokens; on a 401 refresh once (shared with concurrent requests) and
        retry once; a second 401 means the account must sign in again."""
        st = self._state()
        ts = await st.fresh(self.client, self.endpoints, lead=self.lead)
        try:
            return await self._send_once(method, url, ts, body, stream=stream, session=session)
        except UpstreamHTTPError as e:
            if e.status != 401:
                raise
            log.info("codex account %s: 401 from the backend; refreshing the access token", st.label)
        ts = await st.refresh(self.client, self.endpoints, stale=ts.access_token, lead=self.lead)
        try:
            return await self._send_once(method, url, ts, body, stream=stream, session=session)
        except UpstreamHTTPError as e:
            if e.status != 401:
                raise
            st.mark_needs_sign_in("the backend refused freshly refreshed tokens (401)")
            raise st.sign_in_error() from None

    async def send(self, call: UpstreamCall) -> UpstreamResponse:
        if call.operation != "generate":
            raise InvalidRequest(f"codex: the operation '{call.operation}' is not supported by the Codex backend")
        st = self._state()
        st.current()  # needs sign-in: fail before any work
        self._check_limit(st)
        # the conversation key the gateway found (session headers), when its UpstreamCall carries one
        body, session = self.prepare_body(call.body, getattr(call, "session", None))
        resp = await self._authed("POST", self.endpoints.base_url + "/responses", body, stream=True, session=session)
        self._observe_headers(resp.headers)
        return resp

    # ------------------------------------------------------------------ models

    async def list_models(self) -> list[str]:
        """Names to route: the account's catalogue (``GET /models``) or the static fallback,
        plus effort aliases and older seed names. Never raises; bounded by ``models_timeout``."""
        if self.state is not None and self.state.needs_sign_in is None:
            try:
                await asyncio.wait_for(self.sync_models(), self.models_timeout)
            except asyncio.TimeoutError:
                log.warning("codex %s: /models did not answer within %.0f s; using the built-in model list",
                            self.name, self.models_timeout)
            except Exception as e:
                log.warning("codex %s: /models failed (%s); using the built-in model list",
                            self.name, getattr(e, "message", None) or type(e).__name__)
        return self.catalogue.names()

    async def sync_models(self) -> list[_models.ModelInfo]:
        url = f"{self.endpoints.base_url}/models?client_version={self.client_version}"
        resp = await self._authed("GET", url, None, stream=False)
        try:
            data = _decode.decode(await resp.aread())
        finally:
            await resp.aclose()
        found = _models.parse_models(data)
        if not found:
            raise ValueError("the /models answer lists no model")
        self.catalogue = _models.Catalogue(found, source="upstream", effort_aliases=self.catalogue.effort_aliases)
        return found

    # ------------------------------------------------------------------ quota

    def quota(self) -> QuotaState | None:
        st = self.state
        if st is not None and st.needs_sign_in is not None:
            st.maybe_reload()  # a new sign-in written meanwhile (one stat call while signed out)
        if st is None or st.needs_sign_in is not None or st.tokens is None:
            reason = st.needs_sign_in if st is not None else "no account is signed in"
            return QuotaState(status="needs_sign_in", detail=f"{reason}; run `antiapi login codex`", source="auth")
        q = st.quota
        out = QuotaState(
            windows=[dataclasses.replace(w) for w in (q.windows if q else [])],
            source=q.source if q else "",
            updated_at=q.updated_at if q else None,
            plan=(q.plan if q and q.plan else None) or st.tokens.plan,
            status="ok",
            detail=q.detail if q else None,
        )
        now = time.time()
        if st.limited_until is not None and st.limited_until > now:
            out.status = "limited"
            out.limited_until = st.limited_until
            out.detail = st.limit_detail or out.detail
        return out

    async def refresh_quota(self) -> QuotaState | None:
        """Read ``GET /backend-api/wham/usage`` into the account's quota state."""
        st = self._state()
        resp = await self._authed("GET", self.endpoints.usage_url, None, stream=False)
        try:
            data = _decode.decode(await resp.aread())
        finally:
            await resp.aclose()
        now = time.time()
        q = _quota.from_usage(data, now)
        st.quota = q
        if q.status == "limited" and q.limited_until and q.limited_until > now:
            st.limited_until = q.limited_until
            st.limit_detail = q.detail
        return self.quota()


def conversation_key(items: list) -> str:
    """A stable id for a conversation without a prompt_cache_key: a hash of its first
    developer/user messages (the same conversation keeps the same key turn after turn)."""
    head = []
    for it in items:
        if isinstance(it, dict) and it.get("type", "message") == "message" and it.get("role") in ("developer", "user"):
            head.append(it)
            if it.get("role") == "user":
                break
    if not head:
        return str(uuid.uuid4())
    digest = hashlib.blake2b(_encode.encode(head), digest_size=16).digest()
    return str(uuid.UUID(bytes=digest, version=4))
