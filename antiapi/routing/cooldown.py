"""Cooldowns: which account (or account + model) must not be used until when (pure).

Time is injected (``clock`` returns epoch seconds). A cooldown ends at the provider's reset time
or retry-after when one is known; otherwise it backs off exponentially (``base`` seconds doubling
per consecutive failure, capped at ``cap``). Nothing is ever cleared by a timer: an entry simply
stops counting once its time has passed, and a success clears the failure streak.

``hard`` cooldowns (rate limits, used-up quotas, revoked sign-ins) are skipped outright; ``soft``
ones (5xx, unreachable, timeouts) are tried last when nothing healthy is left.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = ["Cooldowns", "Cooling"]


@dataclass(slots=True)
class Cooling:
    """One active or past cooldown."""

    account: str
    model: str | None  # None: the whole account
    until: float
    reason: str
    category: str  # "limit" | "unavailable" | "auth"
    hard: bool
    failures: int
    since: float


class Cooldowns:
    def __init__(self, clock: Callable[[], float], *, base: float = 5.0, cap: float = 600.0) -> None:
        self.clock = clock
        self.base = base
        self.cap = cap
        self._d: dict[tuple[str, str | None], Cooling] = {}
        #: bumped on every change (the quota snapshot task watches it)
        self.version = 0

    def backoff(self, failures: int) -> float:
        return min(self.cap, self.base * (2 ** max(0, failures - 1)))

    def cool(
        self,
        account: str,
        model: str | None,
        *,
        until: float | None,
        reason: str,
        category: str,
        hard: bool,
    ) -> Cooling:
        """Start (or extend) a cooldown. ``until`` None: exponential backoff."""
        now = self.clock()
        key = (account, model)
        prev = self._d.get(key)
        failures = (prev.failures + 1) if prev is not None else 1
        end = until if until is not None else now + self.backoff(failures)
        if prev is not None and prev.until > end and prev.until > now:
            end = prev.until  # never shorten a running cooldown (e.g. a quota reset far away)
        c = Cooling(account, model, end, reason, category, hard, failures, now)
        self._d[key] = c
        self.version += 1
        return c

    def get(self, account: str, model: str | None) -> Cooling | None:
        """The active cooldown for ``account`` (whole account or this model), latest-ending first."""
        d = self._d
        if not d:
            return None
        now = self.clock()
        best = None
        c = d.get((account, None))
        if c is not None and c.until > now:
            best = c
        if model is not None:
            m = d.get((account, model))
            if m is not None and m.until > now and (best is None or m.until > best.until):
                best = m
        return best

    def clear(self, account: str, model: str | None) -> None:
        """A success: forget the account's (and this model's) failure streak."""
        d = self._d
        if not d:
            return
        changed = d.pop((account, None), None) is not None
        if model is not None:
            changed = d.pop((account, model), None) is not None or changed
        if changed:
            self.version += 1

    def active(self) -> Iterator[Cooling]:
        now = self.clock()
        return (c for c in list(self._d.values()) if c.until > now)

    def prune(self, older_than: float) -> None:
        """Drop entries whose cooldown ended more than ``older_than`` seconds ago."""
        now = self.clock()
        for k, c in list(self._d.items()):
            if c.until < now - older_than:
                del self._d[k]
