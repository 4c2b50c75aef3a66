"""Client API keys: the keys remote clients present to antiapi (not provider keys).

A key is ``aa-`` followed by 43 URL-safe random characters (``secrets.token_urlsafe(32)``: 256
bits). It is shown once, when created; the database keeps only its SHA-256 hex digest and a short
display prefix (``aa-AbCd…``). A fast unsalted hash is enough here: the keys are random and
high-entropy, so a stolen hash cannot be brute-forced back into a key (unlike a password), and
SHA-256 keeps the per-request check in the microseconds.

Pieces:

* :class:`KeyStore` creates, lists, revokes keys and changes their limits in the state database
  (:class:`antiapi.store.Store`, table ``client_keys``). Blocking: call it from a thread in async code.
* :class:`KeyVerifier` is the in-memory view used on every request: ``verify(presented)`` hashes the
  presented key, looks the hash up and confirms it with :func:`hmac.compare_digest`; ``admit(key)``
  applies the key's optional limits (requests per minute, tokens per UTC day) and returns the
  :class:`~antiapi.errors.GatewayError` (429) to send when one is used up.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from antiapi.errors import ErrorKind, GatewayError

__all__ = [
    "KEY_PREFIX",
    "ClientKey",
    "KeyProblem",
    "KeyStore",
    "KeyVerifier",
    "generate_key",
    "hash_key",
    "looks_like_key",
]

log = logging.getLogger("antiapi.security")

KEY_PREFIX = "aa-"
_DISPLAY_CHARS = 8  # "aa-" + 8 characters are kept for display
LAST_USED_WRITE_EVERY = 60.0  # seconds between last_used_at writes for one key


class KeyProblem(ValueError):
    """A key operation cannot be done (unknown key, duplicate name, bad limit). Message says why;
    ``reason`` is "not_found", "conflict" or "invalid"."""

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


def generate_key() -> str:
    """A new random client key: ``aa-`` + 43 URL-safe characters (256 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The SHA-256 hex digest stored for ``key``."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def looks_like_key(value: str) -> bool:
    return value.startswith(KEY_PREFIX) and len(value) >= len(KEY_PREFIX) + 32


@dataclass
class ClientKey:
    """One client key as listed (never the key itself)."""

    id: int
    name: str
    prefix: str
    created_at: float
    last_used_at: float | None = None
    revoked_at: float | None = None
    rpm_limit: int | None = None
    tokens_per_day: int | None = None
    key_hash: str = field(default="", repr=False)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly view for the admin API / ``antiapi keys list --json`` (no hash)."""
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
            "revoked": self.revoked,
            "revoked_at": self.revoked_at,
            "limits": {"requests_per_minute": self.rpm_limit, "tokens_per_day": self.tokens_per_day},
        }


_SELECT = (
    "SELECT id, name, prefix, created_at, last_used_at, revoked_at, rpm_limit, tokens_per_day, key_hash, enabled "
    "FROM client_keys ORDER BY id"
)


def _row_key(r: dict[str, Any]) -> ClientKey:
    revoked = r["revoked_at"]
    if revoked is None and not r["enabled"]:
        revoked = r["created_at"]  # disabled before migration 2 existed
    return ClientKey(
        id=int(r["id"]),
        name=r["name"],
        prefix=r["prefix"] or "",
        created_at=r["created_at"],
        last_used_at=r["last_used_at"],
        revoked_at=revoked,
        rpm_limit=r["rpm_limit"],
        tokens_per_day=r["tokens_per_day"],
        key_hash=r["key_hash"],
    )


def _check_limit(name: str, value: int | None) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise KeyProblem(f"{name} must be a positive whole number (or omitted for no limit), not {value!r}")
    return value


class KeyStore:
    """Client keys in the state database. ``store`` must be open (:meth:`Store.open`).

    Every change is committed before the method returns, and ``verifier`` (when given) is
    reloaded so the running gateway sees it at once.
    """

    def __init__(self, store: Any, *, verifier: "KeyVerifier | None" = None, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.verifier = verifier
        self.clock = clock

    def list(self, include_revoked: bool = True) -> list[ClientKey]:
        keys = [_row_key(r) for r in self.store.query(_SELECT)]
        return keys if include_revoked else [k for k in keys if not k.revoked]

    def get(self, ident: int | str) -> ClientKey:
        """The key with id ``ident`` (int or digits), else the active key named ``ident``."""
        keys = self.list()
        if isinstance(ident, int) or (isinstance(ident, str) and ident.isdigit()):
            for k in keys:
                if k.id == int(ident):
                    return k
        for k in keys:
            if k.name == ident and not k.revoked:
                return k
        known = ", ".join(f"{k.id} ({k.name})" for k in keys if not k.revoked) or "none"
        raise KeyProblem(f"no client key with id or name {ident!r}; active keys: {known}", "not_found")

    def create(self, name: str, *, rpm_limit: int | None = None, tokens_per_day: int | None = None) -> tuple[ClientKey, str]:
        """Create a key; returns (its listing, the key). The key is not stored and cannot be shown again."""
        name = (name or "").strip()
        if not name:
            raise KeyProblem("give the key a name that says who uses it, e.g. --name laptop")
        if any(k.name == name for k in self.list(include_revoked=False)):
            raise KeyProblem(f"an active key is already named {name!r}; pick another name or revoke that one first", "conflict")
        rpm_limit = _check_limit("requests per minute", rpm_limit)
        tokens_per_day = _check_limit("tokens per day", tokens_per_day)
        key = generate_key()
        now = self.clock()
        self.store.execute(
            "INSERT INTO client_keys(name, key_hash, prefix, enabled, created_at, rpm_limit, tokens_per_day) "
            "VALUES (?, ?, ?, 1, ?, ?, ?)",
            (name, hash_key(key), key[: len(KEY_PREFIX) + _DISPLAY_CHARS], now, rpm_limit, tokens_per_day),
        )
        self._commit()
        created = next(k for k in self.list() if k.key_hash == hash_key(key))
        return created, key

    def revoke(self, ident: int | str) -> ClientKey:
        k = self.get(ident)
        if k.revoked:
            return k
        self.store.execute("UPDATE client_keys SET enabled = 0, revoked_at = ? WHERE id = ?", (self.clock(), k.id))
        self._commit()
        return self.get(k.id)

    def set_limits(self, ident: int | str, *, rpm_limit: int | None, tokens_per_day: int | None) -> ClientKey:
        k = self.get(ident)
        self.store.execute(
            "UPDATE client_keys SET rpm_limit = ?, tokens_per_day = ? WHERE id = ?",
            (_check_limit("requests per minute", rpm_limit), _check_limit("tokens per day", tokens_per_day), k.id),
        )
        self._commit()
        return self.get(k.id)

    def _commit(self) -> None:
        if not self.store.flush_sync():
            raise KeyProblem("the state database did not confirm the change in time; try again")
        if self.verifier is not None:
            self.verifier.load(self.list())


def _utc_day(t: float) -> int:
    return int(t // 86400)


class _Meter:
    __slots__ = ("recent", "day", "tokens")

    def __init__(self) -> None:
        self.recent: collections.deque[float] = collections.deque()
        self.day = -1
        self.tokens = 0


class KeyVerifier:
    """The in-memory key check used on every gateway request (thread-safe enough for one event
    loop plus the admin thread: the table is swapped whole).

    Args:
        store: the open state database to load keys from (``None``: use :meth:`load` only).
        clock: wall clock (epoch seconds); tests inject one.
        reload_every: :meth:`watch` refreshes from the database this often, so keys created or
            revoked with ``antiapi keys`` while the server runs take effect (an unknown key also
            triggers a refresh, at most once a second).
    """

    def __init__(self, store: Any = None, *, clock: Callable[[], float] = time.time, reload_every: float = 5.0) -> None:
        self.store = store
        self.clock = clock
        self.reload_every = reload_every
        self._by_hash: dict[str, ClientKey] = {}
        self._meters: dict[int, _Meter] = {}
        self._last_written: dict[int, float] = {}
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ loading

    def load(self, keys: list[ClientKey]) -> None:
        """Replace the known keys (revoked ones are dropped)."""
        table = {k.key_hash: k for k in keys if not k.revoked and k.key_hash}
        with self._lock:
            self._by_hash = table
        self._loaded_at = time.monotonic()

    def reload(self) -> None:
        """Load the keys from the database (blocking)."""
        if self.store is not None:
            self.load(KeyStore(self.store).list())
            self.load_usage_today()

    async def areload(self) -> None:
        await asyncio.to_thread(self.reload)

    def load_usage_today(self) -> None:
        """Seed tokens/day counters from today's usage rows (so a restart does not reset them)."""
        if self.store is None:
            return
        limited = {k.name: k for k in self._by_hash.values() if k.tokens_per_day}
        if not limited:
            return
        now = self.clock()
        start = _utc_day(now) * 86400.0
        try:
            rows = self.store.query(
                "SELECT client_key, sum(input_tokens + output_tokens) AS n FROM usage WHERE time >= ? AND client_key IS NOT NULL GROUP BY client_key",
                (start,),
            )
        except Exception:  # noqa: BLE001 - a missing usage table must not break auth
            log.debug("could not read today's usage for key limits", exc_info=True)
            return
        for r in rows:
            k = limited.get(r["client_key"])
            if k is not None:
                m = self._meter(k.id)
                m.day, m.tokens = _utc_day(now), max(m.tokens, int(r["n"] or 0))

    async def watch(self) -> None:
        """Refresh from the database every ``reload_every`` seconds (run as a lifespan task)."""
        while True:
            await asyncio.sleep(self.reload_every)
            try:
                await self.areload()
            except Exception:  # noqa: BLE001
                log.warning("could not reload client keys", exc_info=True)

    @property
    def count(self) -> int:
        """Number of active keys."""
        return len(self._by_hash)

    def stale(self, min_age: float = 1.0) -> bool:
        return self.store is not None and time.monotonic() - self._loaded_at >= min_age

    # ------------------------------------------------------------------ hot path

    def verify(self, presented: str | None) -> ClientKey | None:
        """The active key ``presented`` is, or ``None``."""
        if not presented:
            return None
        digest = hash_key(presented)
        k = self._by_hash.get(digest)
        if k is None or not hmac.compare_digest(k.key_hash, digest):
            return None
        return k

    def _meter(self, key_id: int) -> _Meter:
        m = self._meters.get(key_id)
        if m is None:
            m = self._meters[key_id] = _Meter()
        return m

    def admit(self, key: ClientKey) -> GatewayError | None:
        """Count one request for ``key``; the 429 error to send when a limit is used up."""
        now = self.clock()
        m = self._meter(key.id)
        if key.tokens_per_day:
            day = _utc_day(now)
            if m.day != day:
                m.day, m.tokens = day, 0
            if m.tokens >= key.tokens_per_day:
                wait = (day + 1) * 86400.0 - now
                return GatewayError(
                    f"The client key '{key.name}' used its {key.tokens_per_day} tokens for today (UTC); "
                    f"it resets in {int(wait // 3600)}h{int(wait % 3600 // 60):02d}m. Raise it with "
                    f"`antiapi keys limits {key.id} --tokens-per-day N`.",
                    kind=ErrorKind.RATE_LIMIT,
                    code="client_key_tokens_per_day",
                    retry_after=max(1.0, wait),
                )
        if key.rpm_limit:
            q = m.recent
            while q and q[0] <= now - 60.0:
                q.popleft()
            if len(q) >= key.rpm_limit:
                wait = q[0] + 60.0 - now
                return GatewayError(
                    f"The client key '{key.name}' is limited to {key.rpm_limit} requests per minute; "
                    f"retry in {max(1, int(wait + 0.999))} s.",
                    kind=ErrorKind.RATE_LIMIT,
                    code="client_key_rate_limit",
                    retry_after=max(1.0, wait),
                )
            q.append(now)
        self._touch(key, now)
        return None

    def record_tokens(self, key: int | str | None, tokens: int) -> None:
        """Add ``tokens`` to a key's daily count (by id or by name, as usage records carry it)."""
        if key is None or tokens <= 0:
            return
        k = None
        for cand in self._by_hash.values():
            if cand.id == key or cand.name == key:
                k = cand
                break
        if k is None or not k.tokens_per_day:
            return
        m = self._meter(k.id)
        day = _utc_day(self.clock())
        if m.day != day:
            m.day, m.tokens = day, 0
        m.tokens += int(tokens)

    def observe_usage(self, rec: Any) -> None:
        """Feed one finished usage record (``client_key``, ``input_tokens``, ``output_tokens``)."""
        self.record_tokens(getattr(rec, "client_key", None), int(getattr(rec, "input_tokens", 0) or 0) + int(getattr(rec, "output_tokens", 0) or 0))

    def _touch(self, key: ClientKey, now: float) -> None:
        key.last_used_at = now
        if self.store is None:
            return
        last = self._last_written.get(key.id)
        if last is None or now - last >= LAST_USED_WRITE_EVERY:
            self._last_written[key.id] = now
            self.store.execute("UPDATE client_keys SET last_used_at = ? WHERE id = ?", (now, key.id))
