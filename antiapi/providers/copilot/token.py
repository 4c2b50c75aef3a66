"""GitHub REST calls and the Copilot token exchange (single-flight refresh).

The long-lived GitHub token (``ghu_…``) is exchanged at ``GET copilot_internal/v2/token`` for a
short-lived Copilot token (``tid=…;exp=…:mac``) used as ``Authorization: Bearer`` on the Copilot
API. The Copilot token is refreshed shortly before the time the exchange gives (``refresh_in`` /
``expires_at``) and once when the Copilot API answers 401; however many requests need a new token
at once, one exchange runs and they all share its result. Neither token ever appears in logs,
messages or ``repr``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from antiapi.providers.http import httpx
import msgspec

from antiapi.errors import (
    ErrorKind,
    NeedsSignIn,
    ProviderError,
    UpstreamHTTPError,
    kind_for_status,
)
from antiapi.providers import http as _http
from antiapi.providers.copilot.quota import parse_retry_after
from antiapi.providers.copilot.settings import CopilotSettings

log = logging.getLogger("antiapi.providers.copilot")

LOGIN_HINT = "run `antiapi login copilot` to sign in again"


def _decode(body: bytes) -> Any:
    try:
        return msgspec.json.decode(body) if body else None
    except msgspec.DecodeError:
        return None


def github_error_parser(name: str, label: str | None, *, what: str) -> _http.ErrorParser:
    """Errors of GitHub REST endpoints (``/user``, the token exchange, ``copilot_internal/user``)."""

    def parse(status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        obj = _decode(body)
        text = body.decode("utf-8", errors="replace").strip()[:300]
        msg = obj.get("message") if isinstance(obj, dict) and isinstance(obj.get("message"), str) else (text or f"HTTP {status}")
        details = obj.get("error_details") if isinstance(obj, dict) and isinstance(obj.get("error_details"), dict) else None
        who = f"{name}: " if name else ""
        acct = f" ({label})" if label else ""
        if status == 401:
            return NeedsSignIn(
                f"{who}GitHub rejected the stored sign-in{acct} ({msg}): it was revoked or has expired; {LOGIN_HINT}.",
                account=label,
            )
        if details is not None:
            nid = details.get("notification_id") if isinstance(details.get("notification_id"), str) else None
            dmsg = details.get("message") if isinstance(details.get("message"), str) else msg
            url = details.get("url") if isinstance(details.get("url"), str) else None
            err = UpstreamHTTPError(
                f"{who}this GitHub account{acct} cannot use Copilot: {dmsg}" + (f" ({url})" if url else ""),
                kind=ErrorKind.PERMISSION, status=403, code=nid or "no_copilot_access",
            )
            err.retryable = True  # another account may serve the request
            return err
        low = msg.lower()
        if status in (403, 429) and "rate limit" in low:
            ra = parse_retry_after(headers.get("retry-after"), time.time())
            if ra is None:
                reset = headers.get("x-ratelimit-reset")
                try:
                    ra = max(0.0, float(reset) - time.time()) if reset else None
                except ValueError:
                    ra = None
            return UpstreamHTTPError(f"{who}GitHub API rate limit while {what}: {msg}", kind=ErrorKind.RATE_LIMIT,
                                     status=429, retry_after=ra)
        if status == 404:
            err = UpstreamHTTPError(f"{who}GitHub answered 404 while {what}{acct}: Copilot is not available at this "
                                    "address for this account (check the copilot endpoints in the config)",
                                    kind=ErrorKind.PERMISSION, status=403, code="not_found")
            err.retryable = True
            return err
        kind = kind_for_status(status)
        err = UpstreamHTTPError(f"{who}GitHub answered HTTP {status} while {what}: {msg}", kind=kind, status=status if status >= 500 else 502)
        if status >= 500:
            err.retryable = True
        return err

    return parse


async def get_json(
    client: httpx.AsyncClient, url: str, headers: Mapping[str, str], *, provider: str, timeout: float,
    parse_error: _http.ErrorParser,
) -> Any:
    resp = await _http.send(client, provider=provider, method="GET", url=url, headers=headers, body=None,
                            first_byte_timeout=timeout, parse_error=parse_error)
    try:
        raw = await resp.aread()
    finally:
        await resp.aclose()
    data = _decode(raw)
    if data is None:
        raise UpstreamHTTPError(f"{provider}: {url.split('?')[0]} answered with something that is not JSON",
                                kind=ErrorKind.API_ERROR, status=502)
    return data


class CopilotToken:
    """One Copilot API token and what the exchange said about it."""

    __slots__ = ("value", "expires_at", "refresh_at", "api", "sku", "chat_enabled", "fetched_at", "envelope")

    def __init__(self, value: str, *, expires_at: float | None, refresh_at: float, api: str | None,
                 sku: str | None, chat_enabled: bool | None, fetched_at: float, envelope: dict) -> None:
        self.value = value
        self.expires_at = expires_at
        self.refresh_at = refresh_at
        self.api = api
        self.sku = sku
        self.chat_enabled = chat_enabled
        self.fetched_at = fetched_at
        self.envelope = envelope

    def __repr__(self) -> str:
        return f"CopilotToken(expires_at={self.expires_at}, refresh_at={self.refresh_at}, api={self.api!r}, sku={self.sku!r})"


def refresh_time(fetched: float, expires_at: float | None, refresh_in: float | None) -> float:
    """When to fetch the next token: shortly before ``refresh_in`` (or the expiry) runs out."""
    life = refresh_in if refresh_in and refresh_in > 0 else None
    if expires_at and expires_at > fetched:
        ttl = expires_at - fetched
        life = min(life, ttl) if life else ttl
    if not life:
        life = 600.0
    return fetched + life - min(60.0, life * 0.1)


def parse_envelope(data: Any, fetched: float) -> CopilotToken:
    if not isinstance(data, dict) or not isinstance(data.get("token"), str) or not data["token"]:
        raise UpstreamHTTPError("the Copilot token exchange answered without a token", kind=ErrorKind.API_ERROR, status=502)
    exp = data.get("expires_at")
    expires_at = float(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) and exp > 0 else None
    rin = data.get("refresh_in")
    refresh_in = float(rin) if isinstance(rin, (int, float)) and not isinstance(rin, bool) else None
    eps = data.get("endpoints") if isinstance(data.get("endpoints"), dict) else {}
    api = eps.get("api") if isinstance(eps.get("api"), str) and eps.get("api") else None
    env = {k: v for k, v in data.items() if k != "token"}
    return CopilotToken(
        data["token"], expires_at=expires_at, refresh_at=refresh_time(fetched, expires_at, refresh_in),
        api=api.rstrip("/") if api else None, sku=data.get("sku") if isinstance(data.get("sku"), str) else None,
        chat_enabled=data.get("chat_enabled") if isinstance(data.get("chat_enabled"), bool) else None,
        fetched_at=fetched, envelope=env,
    )


class TokenManager:
    """The Copilot token of one account: cached, refreshed before expiry, single-flight."""

    def __init__(
        self,
        settings: CopilotSettings,
        client: httpx.AsyncClient,
        *,
        label: str | None,
        load_github_token: Callable[[], str | None],
        timeout: float,
        clock: Callable[[], float] = time.time,
        stamp: Callable[[], object] = lambda: None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.label = label
        self._load = load_github_token
        self._stamp = stamp
        self._seen_stamp: object = None
        self._github_token: str | None = None
        self._failed_github_token: str | None = None
        self.timeout = timeout
        self.clock = clock
        self._token: CopilotToken | None = None
        self._inflight: asyncio.Future[CopilotToken] | None = None
        #: how many exchanges were started (tests, admin API)
        self.exchanges = 0
        #: set while the GitHub token is known to be revoked / missing (message for the user)
        self.needs_sign_in: str | None = None
        self._reload()

    def __repr__(self) -> str:
        return f"TokenManager({self.settings.name!r}, exchanges={self.exchanges})"

    # ------------------------------------------------------------------ GitHub token

    def recheck(self) -> None:
        """While signed out: reload the stored sign-in if its file changed (a new login)."""
        if not self.needs_sign_in:
            return
        try:
            st = self._stamp()
        except OSError:
            st = None
        if st is not None and st != self._seen_stamp:
            self._reload()

    def _reload(self) -> None:
        try:
            self._seen_stamp = self._stamp()
        except OSError:
            self._seen_stamp = None
        try:
            tok = self._load()
        except Exception as e:  # an unreadable file must not crash the server
            log.warning("%s: cannot read the stored GitHub sign-in: %s", self.settings.name, type(e).__name__)
            tok = None
        self._github_token = tok
        if not tok:
            self.needs_sign_in = f"{self.settings.name}: no stored GitHub sign-in for {self.label or 'this account'}; run `antiapi login copilot`."
        elif tok != self._failed_github_token:
            self.needs_sign_in = None

    @property
    def github_token(self) -> str | None:
        return self._github_token

    def _sign_in_error(self) -> NeedsSignIn:
        return NeedsSignIn(self.needs_sign_in or f"{self.settings.name}: {LOGIN_HINT}", account=self.label,
                           provider=self.settings.name)

    def github_token_or_raise(self) -> str:
        self.recheck()  # a new `antiapi login copilot` may have replaced the token
        if self.needs_sign_in or not self._github_token:
            raise self._sign_in_error()
        return self._github_token

    def mark_revoked(self, message: str) -> None:
        self._failed_github_token = self._github_token
        self.needs_sign_in = message
        self._token = None

    # ------------------------------------------------------------------ Copilot token

    @property
    def current(self) -> CopilotToken | None:
        return self._token

    async def get(self) -> CopilotToken:
        t = self._token
        if t is not None and self.clock() < t.refresh_at and not self.needs_sign_in:
            return t
        return await self._refresh(t)

    async def refresh(self, stale: CopilotToken | None) -> CopilotToken:
        """A new token because ``stale`` was refused (401). Callers holding the same stale token
        share one exchange; a caller whose stale token was already replaced gets the new one."""
        return await self._refresh(stale)

    async def _refresh(self, stale: CopilotToken | None) -> CopilotToken:
        cur = self._token
        if cur is not None and cur is not stale and self.clock() < cur.refresh_at and not self.needs_sign_in:
            return cur
        fut = self._inflight
        if fut is None:
            fut = self._inflight = asyncio.ensure_future(self._exchange())
            fut.add_done_callback(self._done)
        return await asyncio.shield(fut)

    def _done(self, fut: asyncio.Future) -> None:
        if self._inflight is fut:
            self._inflight = None
        if not fut.cancelled():
            fut.exception()  # mark retrieved: waiters re-raise it themselves

    async def _exchange(self) -> CopilotToken:
        gh = self.github_token_or_raise()
        self.exchanges += 1
        s = self.settings
        parse = github_error_parser(s.name, self.label, what="exchanging the GitHub token for a Copilot token")
        try:
            data = await get_json(self.client, s.endpoints.token, s.github_headers(gh), provider=s.name,
                                  timeout=self.timeout, parse_error=parse)
        except NeedsSignIn as e:
            self.mark_revoked(e.message)
            log.warning("%s", e.message)
            raise
        tok = parse_envelope(data, self.clock())
        self._token = tok
        return tok
