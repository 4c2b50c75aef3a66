"""One signed-in Codex account's live state: tokens, single-flight refresh, quota, cooldown.

There is exactly one :class:`AccountState` per credentials file in a process (``account_state``),
so several provider entries using the same account share one refresh token and never race each
other into ``refresh_token_reused``.

Refresh policy (upstreams.md §1.3): proactively when the access token's JWT ``exp`` is less than
``lead`` seconds away (default 5 minutes), or, without ``exp``, when the last refresh is older
than 8 days; reactively once on a 401. The refresh itself runs shielded: a cancelled request
never leaves a rotated refresh token unsaved.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from pathlib import Path

from antiapi.providers.http import httpx

from antiapi.accounts import CredentialStore
from antiapi.errors import NeedsSignIn, UpstreamUnavailable
from antiapi.providers.base import QuotaState
from antiapi.providers.codex import oauth
from antiapi.providers.codex.oauth import Endpoints, SignInError, TokenSet

log = logging.getLogger("antiapi.providers.codex")

PROVIDER = "codex"
DEFAULT_LEAD = 300.0
NO_EXP_MAX_AGE = 8 * 24 * 3600.0

_REASONS = {
    "refresh_token_expired": "its refresh token expired",
    "refresh_token_reused": "its refresh token was already used (another program signed in with the same tokens)",
    "refresh_token_invalidated": "its refresh token was revoked",
}


class AccountState:
    """Tokens and status of one account (shared by every provider instance using it)."""

    def __init__(self, store: CredentialStore, label: str) -> None:
        self.store = store
        self.label = label
        self.path: Path = store.path(PROVIDER, label)
        self.tokens: TokenSet | None = None
        #: why the account cannot be used until it signs in again (None: fine)
        self.needs_sign_in: str | None = None
        self.quota: QuotaState | None = None
        self.limited_until: float | None = None
        self.limit_detail: str | None = None
        self.refreshes = 0
        self._mtime: float | None = None
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self._inflight: asyncio.Task | None = None
        self.load()

    def __repr__(self) -> str:
        return f"AccountState(label={self.label!r}, needs_sign_in={self.needs_sign_in!r})"

    # ------------------------------------------------------------------ disk

    def _stat(self) -> float | None:
        try:
            return self.path.stat().st_mtime_ns
        except OSError:
            return None

    def load(self) -> None:
        self._mtime = self._stat()
        rec = self.store.load(PROVIDER, self.label)
        if rec is None:
            self.tokens = None
            self.needs_sign_in = "no credentials are stored for it"
            return
        try:
            self.tokens = TokenSet.from_record(rec)
        except ValueError as e:
            self.tokens = None
            self.needs_sign_in = f"its credentials file is unusable ({e})"
            return
        flag = rec.get("needs_sign_in")
        self.needs_sign_in = flag if isinstance(flag, str) and flag else None

    def maybe_reload(self) -> bool:
        """Pick up a credentials file rewritten by someone else (``antiapi login codex``, another
        antiapi process). True when it changed."""
        m = self._stat()
        if m == self._mtime:
            return False
        old = self.tokens.refresh_token if self.tokens else None
        self.load()
        if self.tokens is not None and self.tokens.refresh_token != old and self.needs_sign_in is None:
            log.info("codex account %s: credentials changed on disk; using them", self.label)
        return True

    def _save(self, extra: dict | None = None) -> None:
        if self.tokens is None:
            return
        rec = self.tokens.to_record()
        if extra:
            rec.update(extra)
        self.store.save(PROVIDER, self.label, rec)
        self._mtime = self._stat()

    def mark_needs_sign_in(self, reason: str) -> None:
        if self.needs_sign_in == reason:
            return
        self.needs_sign_in = reason
        log.warning("codex account %s needs to sign in again: %s. Run `antiapi login codex`.", self.label, reason)
        try:
            self._save({"needs_sign_in": reason})
        except OSError as e:  # the state is also kept in memory
            log.warning("codex account %s: could not record the sign-in state (%s)", self.label, e)

    def sign_in_error(self) -> NeedsSignIn:
        reason = self.needs_sign_in or "it is not signed in"
        return NeedsSignIn(
            f"The Codex (ChatGPT) account {self.label} needs to sign in again: {reason}. "
            "Run `antiapi login codex` to sign in; antiapi picks up the new sign-in without a restart.",
            account=self.label,
            provider=f"codex:{self.label}",
            code="needs_sign_in",
        )

    # ------------------------------------------------------------------ tokens

    def current(self) -> TokenSet:
        """The tokens to use now; raises NeedsSignIn when the account cannot be used."""
        if self.needs_sign_in is not None:
            self.maybe_reload()
        if self.needs_sign_in is not None or self.tokens is None:
            raise self.sign_in_error()
        return self.tokens

    @staticmethod
    def is_stale(ts: TokenSet, lead: float, now: float) -> bool:
        if ts.expires_at is not None:
            return ts.expires_at - now < lead
        return now - (ts.last_refresh or 0.0) > NO_EXP_MAX_AGE

    def _get_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock = asyncio.Lock()
            self._lock_loop = loop
            self._inflight = None
        return self._lock

    async def fresh(self, client: httpx.AsyncClient, endpoints: Endpoints, *, lead: float = DEFAULT_LEAD) -> TokenSet:
        """Tokens valid for at least ``lead`` seconds (refreshing first when needed)."""
        ts = self.current()
        now = time.time()
        if not self.is_stale(ts, lead, now):
            return ts
        try:
            return await self.refresh(client, endpoints, stale=ts.access_token, lead=lead)
        except UpstreamUnavailable:
            # the token server is unreachable: an access token that has not expired yet still works
            cur = self.tokens
            if cur is not None and self.needs_sign_in is None and cur.expires_at is not None and cur.expires_at > now + 5:
                log.warning("codex account %s: proactive token refresh failed; using the current token", self.label)
                return cur
            raise

    async def refresh(
        self, client: httpx.AsyncClient, endpoints: Endpoints, *, stale: str | None, lead: float = DEFAULT_LEAD
    ) -> TokenSet:
        """Refresh unless someone already replaced the ``stale`` access token. Concurrent callers
        share one refresh. Raises NeedsSignIn (permanent failure) or UpstreamUnavailable."""
        async with self._get_lock():
            running = self._inflight
            if running is not None and not running.done():
                # its caller was cancelled while refreshing: wait for that refresh, never start a second
                return await asyncio.shield(running)
            self.maybe_reload()
            ts = self.current()
            if ts.access_token != stale and not self.is_stale(ts, min(lead, 30.0), time.time()):
                return ts
            task = asyncio.ensure_future(self._do_refresh(client, endpoints, ts))
            task.add_done_callback(_retrieve)
            self._inflight = task
            # shielded: if this caller is cancelled the refresh still completes and is saved
            return await asyncio.shield(task)

    async def _do_refresh(self, client: httpx.AsyncClient, endpoints: Endpoints, ts: TokenSet) -> TokenSet:
        self.refreshes += 1
        try:
            new = await oauth.refresh(client, endpoints, ts)
        except SignInError as e:
            if e.permanent:
                self.mark_needs_sign_in(_REASONS.get(e.code or "", f"the token refresh was refused ({e.message})"))
                raise self.sign_in_error() from None
            raise UpstreamUnavailable(f"codex: {e.message}", provider=f"codex:{self.label}") from None
        self.tokens = new
        self.needs_sign_in = None
        try:
            self._save()
        except OSError as e:
            log.error("codex account %s: could not save refreshed tokens (%s)", self.label, e)
        log.info("codex account %s: access token refreshed", self.label)
        return new


def _retrieve(task: asyncio.Task) -> None:
    if not task.cancelled():
        task.exception()  # mark retrieved: the caller may have gone away


_states: "weakref.WeakValueDictionary[str, AccountState]" = weakref.WeakValueDictionary()
_states_lock = threading.Lock()


def account_state(store: CredentialStore, label: str) -> AccountState:
    """The one AccountState of ``label`` in ``store`` for this process."""
    key = str(store.path(PROVIDER, label).resolve())
    with _states_lock:
        st = _states.get(key)
        if st is None:
            st = AccountState(store, label)
            _states[key] = st
        return st
