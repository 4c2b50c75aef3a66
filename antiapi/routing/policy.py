"""Failover decisions (pure): what a failure means for the request and for the account.

Before the first byte reaches the client, a failure either ends the request (the client's own
mistake: 400, 401, 404, ...) or moves on to the next entry and cools the account down:

=====================================  ==========  =================  ======  =========================
failure                                category    cooldown scope     hard    until
=====================================  ==========  =================  ======  =========================
LimitReached, ``usage_limit_reached``  limit       account            yes     resets_at / retry-after
429 rate limit                         limit       account + model    yes     retry-after
402 / insufficient_quota (billing)     limit       account            yes     backoff
NeedsSignIn                            auth        account            yes     backoff
5xx, overloaded, timeouts, unreachable unavailable account            no      retry-after / backoff
stream broken before its first event  unavailable account            no      backoff
=====================================  ==========  =================  ======  =========================

"backoff" is the exponential default (5 s doubling up to 10 min). When every entry is used up
the client gets 429 (503 when every failure was an outage) with the soonest reset in
``retry-after``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from antiapi.errors import (
    ErrorKind,
    LimitReached,
    NeedsSignIn,
    ProviderError,
    StreamInterrupted,
    UpstreamTimeout,
    UpstreamUnavailable,
)

__all__ = ["LIMIT", "UNAVAILABLE", "AUTH", "RoutesExhausted", "Verdict", "classify", "exhausted", "order"]

LIMIT, UNAVAILABLE, AUTH = "limit", "unavailable", "auth"

_LIMIT_CODES = frozenset({"usage_limit_reached", "quota_exceeded", "insufficient_quota", "usage_not_included"})


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do after one entry failed."""

    fail_over: bool
    category: str | None = None
    #: cool only this upstream model on the account (rate limits are per model upstream)
    model_scoped: bool = False
    hard: bool = False
    #: epoch seconds the cooldown ends; None with a category: exponential backoff
    until: float | None = None


class RoutesExhausted(ProviderError):
    """Every entry of a route failed or is cooling down."""

    retryable = True


def classify(err: ProviderError, now: float) -> Verdict:
    """The verdict for ``err`` raised before anything reached the client."""
    ra = err.retry_after
    after = now + ra if ra is not None and ra > 0 else None
    if isinstance(err, LimitReached) or err.code in _LIMIT_CODES:
        until = getattr(err, "resets_at", None) or after
        return Verdict(True, LIMIT, model_scoped=False, hard=True, until=until)
    if isinstance(err, NeedsSignIn):
        return Verdict(True, AUTH, hard=True)
    kind = err.kind
    if kind is ErrorKind.RATE_LIMIT:
        return Verdict(True, LIMIT, model_scoped=True, hard=True, until=after)
    if kind is ErrorKind.BILLING:
        return Verdict(True, LIMIT, hard=True, until=after)
    if isinstance(err, (UpstreamTimeout, UpstreamUnavailable, StreamInterrupted)) or kind in (
        ErrorKind.OVERLOADED, ErrorKind.API_ERROR, ErrorKind.TIMEOUT
    ):
        return Verdict(True, UNAVAILABLE, until=after)
    if err.retryable:  # a provider-specific error that says another account may serve
        return Verdict(True, UNAVAILABLE, until=after)
    return Verdict(False)


def order(items: Sequence, strategy: str, *, turn: int = 0, used: Callable[[object], float | None] | None = None) -> list:
    """``items`` in the order a strategy tries them (stable; never drops any)."""
    n = len(items)
    if n < 2 or strategy == "ordered":
        return list(items)
    if strategy == "round_robin":
        k = turn % n
        return list(items[k:]) + list(items[:k])
    if strategy == "least_used" and used is not None:
        return sorted(items, key=lambda it: used(it) or 0.0)
    return list(items)


def retry_after_seconds(until: float | None, now: float) -> int | None:
    if until is None:
        return None
    return max(1, math.ceil(until - now - 1e-6))


def exhausted(name: str, notes: Sequence[str], categories: Sequence[str], soonest: float | None, now: float) -> RoutesExhausted:
    """The error for a request none of whose entries could serve it."""
    limited = any(c == LIMIT for c in categories)
    wait = retry_after_seconds(soonest, now)
    if categories and all(c == AUTH for c in categories):
        detail = "; ".join(notes)
        msg = f"Every account that serves '{name}' must be signed in again ({detail})."
        return RoutesExhausted(msg, kind=ErrorKind.AUTHENTICATION, status=401, code="needs_sign_in")
    when = f" Try again in {wait} s." if wait is not None else ""
    detail = "; ".join(notes) if notes else "no account is enabled"
    if limited:
        msg = f"Rate limit: every account that serves '{name}' is rate-limited or out of quota ({detail}).{when}"
        return RoutesExhausted(msg, kind=ErrorKind.RATE_LIMIT, status=429, retry_after=wait, code="rate_limit_exceeded")
    msg = f"Every upstream that serves '{name}' is unavailable ({detail}).{when}"
    return RoutesExhausted(msg, kind=ErrorKind.OVERLOADED, status=503, retry_after=wait)
