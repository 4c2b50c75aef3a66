"""The router: plans which entries a request tries, learns from failures (pure, in memory).

One :class:`Router` per gateway. It holds the current :class:`RouteTable` snapshot, the
cooldowns, the session-affinity map and the round-robin turns, all in memory: the request path
never touches the database (the server persists changes in the background).

    plan = router.plan(requested_model, session_key)      # may raise UnknownModel/InvalidRequest
    for step in plan.steps:
        if step.skip: continue                             # cooling down / disabled: logged
        try: ... serve with step.candidate ...
        except ProviderError as e:
            if router.failed(plan, step, e).fail_over: continue
            raise
        router.served(plan, step); break
    else:
        raise router.exhausted(plan, last_error)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from antiapi.errors import ProviderError
from antiapi.routing.affinity import Affinity
from antiapi.routing.cooldown import Cooldowns, Cooling
from antiapi.routing.policy import AUTH, LIMIT, Verdict, classify, exhausted, order
from antiapi.routing.table import Candidate, Route, RouteTable

__all__ = ["Plan", "QuotaInfo", "Router", "Step"]


class QuotaInfo(NamedTuple):
    """What the router reads of an account's quota state."""

    used_percent: float | None = None
    limited_until: float | None = None
    status: str = "ok"
    #: the provider's own words (e.g. "sign in again: antiapi login codex")
    detail: str | None = None


@dataclass(slots=True)
class Step:
    candidate: Candidate
    #: why this entry is not tried (cooling down, disabled); None: try it
    skip: str | None = None
    #: the cooldown in force (a soft one is tried last, a hard one skipped)
    cooling: Cooling | None = None

    @property
    def label(self) -> str:
        return f"{self.candidate.account}/{self.candidate.model}"


@dataclass(slots=True)
class Plan:
    requested: str | None
    name: str
    route: Route
    steps: list[Step]
    affinity_key: str | None = None
    tried: list[tuple[Step, Verdict, ProviderError]] = field(default_factory=list)


def _fmt_wait(seconds: float) -> str:
    s = max(1, math.ceil(seconds))
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{math.ceil(s / 60)} min"
    return f"{s / 3600:.1f} h"


class Router:
    def __init__(
        self,
        table: RouteTable,
        *,
        clock: Callable[[], float],
        quota: Callable[[str], QuotaInfo | None] | None = None,
    ) -> None:
        self.clock = clock
        s = table.settings
        self.cooldowns = Cooldowns(clock, base=s.cooldown_base, cap=s.cooldown_max)
        self.affinity = Affinity(clock, ttl=s.affinity_ttl, size=s.affinity_size)
        self.quota = quota or (lambda _a: None)
        self._turns: dict[str, int] = {}
        self.table = table

    def set_table(self, table: RouteTable) -> None:
        """Swap in a new snapshot (settings, flows, accounts changed); state is kept."""
        s = table.settings
        self.cooldowns.base, self.cooldowns.cap = s.cooldown_base, s.cooldown_max
        self.affinity.ttl, self.affinity.size = s.affinity_ttl, s.affinity_size
        self.table = table

    # ------------------------------------------------------------------ planning

    def _used(self, c: object) -> float | None:
        q = self.quota(c.account)  # type: ignore[attr-defined]
        return q.used_percent if q is not None else None

    def quota_cooling(self, account: str, now: float) -> Cooling | None:
        """A cooldown implied by the account's own quota report (limited / needs sign-in)."""
        q = self.quota(account)
        if q is None:
            return None
        if q.limited_until is not None and q.limited_until > now:
            return Cooling(account, None, q.limited_until, "quota used up", LIMIT, True, 1, now)
        if q.status == "needs_sign_in":
            reason = f"needs sign-in ({q.detail})" if q.detail else "needs sign-in"
            return Cooling(account, None, now + self.cooldowns.cap, reason, AUTH, True, 1, now)
        return None

    def cooling(self, c: Candidate, now: float) -> Cooling | None:
        a = self.cooldowns.get(c.account, c.model)
        q = self.quota_cooling(c.account, now)
        if q is not None and (a is None or q.until > a.until):
            return q
        return a

    def plan(self, requested: str | None, session: str | None = None) -> Plan:
        """The ordered steps for a request. Raises UnknownModel / InvalidRequest."""
        t = self.table
        name = t.target(requested)
        route = t.resolve(name)
        cands: list[Candidate] | tuple[Candidate, ...] = route.candidates
        if len(cands) > 1 and route.strategy != "ordered":
            turn = self._turns.get(route.key, 0)
            self._turns[route.key] = turn + 1
            cands = order(cands, route.strategy, turn=turn, used=self._used)
        akey = None
        if session and len(cands) > 1 and t.settings.session_affinity:
            akey = f"{route.key}\x00{session}"
            acct = self.affinity.get(akey)
            if acct is not None and cands[0].account != acct:
                for i, c in enumerate(cands):
                    if c.account == acct:
                        cands = [c, *cands[:i], *cands[i + 1:]]
                        break
        now = self.clock()
        steps: list[Step] = []
        later: list[Step] = []
        accounts = t.accounts
        for c in cands:
            a = accounts.get(c.account)
            if a is None:
                continue
            if not a.enabled:
                steps.append(Step(c, "disabled"))
                continue
            cool = self.cooling(c, now)
            if cool is None:
                steps.append(Step(c))
            elif cool.hard:
                steps.append(Step(c, f"cooling down for {_fmt_wait(cool.until - now)}: {cool.reason}", cool))
            else:
                later.append(Step(c, None, cool))
        if later:  # soft cooldowns: a last resort once everything healthy was tried
            later.sort(key=lambda s: s.cooling.until)  # type: ignore[union-attr]
            steps.extend(later)
        return Plan(requested, name, route, steps, akey)

    # ------------------------------------------------------------------ outcomes

    def failed(self, plan: Plan, step: Step, err: ProviderError) -> Verdict:
        """Record a failure before the first byte; returns whether to try the next step."""
        v = classify(err, self.clock())
        if v.category is not None:
            c = step.candidate
            reason = f"{err.status} {err.kind.value}"
            if err.message:
                reason += f" ({err.message[:160]})"
            self.cooldowns.cool(
                c.account, c.model if v.model_scoped else None,
                until=v.until, reason=reason, category=v.category, hard=v.hard,
            )
        plan.tried.append((step, v, err))
        return v

    def served(self, plan: Plan, step: Step) -> None:
        c = step.candidate
        self.cooldowns.clear(c.account, c.model)
        if plan.affinity_key is not None:
            self.affinity.put(plan.affinity_key, c.account)

    def answered(self, plan: Plan, step: Step) -> None:
        """The account answered with the client's own error (400, 404...): it is healthy, so the
        session stays there (no cooldown change)."""
        if plan.affinity_key is not None:
            self.affinity.put(plan.affinity_key, step.candidate.account)

    def exhausted(self, plan: Plan, last: ProviderError | None) -> ProviderError:
        """The error for a request no step could serve.

        A route with a single entry that was tried gives the upstream's own error (status,
        message, retry-after); otherwise a 429 (503 when every failure was an outage) listing
        every entry, with the soonest reset as ``retry_after``.
        """
        if last is not None and len(plan.steps) == 1 and plan.tried:
            return last
        now = self.clock()
        notes: list[str] = []
        cats: list[str] = []
        tried = {id(s): (v, e) for s, v, e in plan.tried}
        soonest: float | None = None
        for s in plan.steps:
            te = tried.get(id(s))
            if te is not None:
                v, e = te
                notes.append(f"{s.label}: {e.status} {e.kind.value}")
                if v.category:
                    cats.append(v.category)
            elif s.skip is not None:
                notes.append(f"{s.label}: {s.skip}")
                if s.cooling is not None:
                    cats.append(s.cooling.category)
            cool = self.cooling(s.candidate, now)
            if cool is not None and (soonest is None or cool.until < soonest):
                soonest = cool.until
        return exhausted(plan.name, notes, cats, soonest, now)
