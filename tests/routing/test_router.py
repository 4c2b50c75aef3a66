"""Router (pure): cooldowns with an injected clock, failover verdicts, strategies, affinity,
the exhausted error."""

from __future__ import annotations

import pytest

from antiapi.errors import (
    ErrorKind,
    InvalidRequest,
    LimitReached,
    NeedsSignIn,
    StreamInterrupted,
    UpstreamHTTPError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from antiapi.routing import (
    Account,
    Affinity,
    Candidate,
    Chain,
    Cooldowns,
    Entry,
    QuotaInfo,
    Router,
    RoutesExhausted,
    RouteTable,
    RoutingSettings,
    classify,
    order,
)


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, s: float) -> None:
        self.t += s


ACCTS = [Account(n, "openai", None, i) for i, n in enumerate(["a", "b", "c"], 1)]


def router(clock, *, strategy="ordered", quota=None, settings=None, accounts=ACCTS):
    t = RouteTable(
        accounts=accounts,
        static={"m": [Candidate(a.name, "up-m") for a in accounts], "solo": [Candidate("a", "up-solo")]},
        flows={"f": Chain((Entry("b", "x"), Entry("a", "y")))},
        chains={"m": Chain(strategy=strategy)} if strategy != "ordered" else {},
        settings=settings or RoutingSettings(),
    )
    return Router(t, clock=clock, quota=quota)


def rate_limit(ra=None):
    return UpstreamHTTPError("Rate limit reached", kind=ErrorKind.RATE_LIMIT, status=429, retry_after=ra)


def runnable(plan):
    return [(s.candidate.account, s.skip is None) for s in plan.steps]


def serve(r, model, session=None, fail: dict | None = None):
    """Drive a plan like the pipeline does; ``fail`` maps account -> error. Returns (account, plan)."""
    plan = r.plan(model, session)
    last = None
    for step in plan.steps:
        if step.skip:
            continue
        err = (fail or {}).get(step.candidate.account)
        if err is None:
            r.served(plan, step)
            return step.candidate.account, plan
        last = err
        if not r.failed(plan, step, err).fail_over:
            raise err
    raise r.exhausted(plan, last)


def test_429_with_retry_after_skips_the_account_until_the_reset_then_uses_it_again():
    clock = Clock()
    r = router(clock)
    acct, plan = serve(r, "m", fail={"a": rate_limit(30)})
    assert acct == "b" and [s.candidate.account for s, _, _ in plan.tried] == ["a"]
    clock.advance(29)
    plan = r.plan("m")
    assert runnable(plan) == [("a", False), ("b", True), ("c", True)]
    assert plan.steps[0].skip.startswith("cooling down for 1 s: 429 rate_limit (Rate limit reached)")
    clock.advance(1.5)
    assert serve(r, "m")[0] == "a"


def test_rate_limits_cool_only_that_model_but_limits_and_outages_cool_the_whole_account():
    clock = Clock()
    r = router(clock)
    serve(r, "m", fail={"a": rate_limit(60)})
    assert serve(r, "solo")[0] == "a"  # same account, other upstream model: still usable
    serve(r, "m", fail={"a": LimitReached("usage limit", resets_at=clock.t + 3600)})  # a was skipped: b served
    assert serve(r, "m")[0] == "b"
    r2 = router(clock)
    with pytest.raises(LimitReached):  # a single-entry route gives the upstream's own error
        serve(r2, "solo", fail={"a": LimitReached("usage limit", resets_at=clock.t + 3600)})
    assert serve(r2, "m")[0] == "b"  # the whole account cools down, for every model
    clock.advance(10)
    with pytest.raises(RoutesExhausted) as e:
        serve(r2, "solo")
    assert e.value.status == 429 and e.value.retry_after == 3590 and "usage limit" in e.value.message


def test_backoff_without_reset_time_doubles_from_base_to_cap_and_success_resets_it():
    clock = Clock()
    cd = Cooldowns(clock, base=5, cap=600)
    ends = []
    for _ in range(10):
        c = cd.cool("a", None, until=None, reason="503", category="unavailable", hard=False)
        ends.append(round(c.until - clock.t))
        clock.advance(c.until - clock.t + 0.01)
    assert ends == [5, 10, 20, 40, 80, 160, 320, 600, 600, 600]
    cd.clear("a", "m")
    assert cd.cool("a", None, until=None, reason="x", category="unavailable", hard=False).until - clock.t == 5
    # a running cooldown is never shortened by a later, shorter one
    long = cd.cool("b", None, until=clock.t + 1000, reason="quota", category="limit", hard=True)
    assert cd.cool("b", None, until=clock.t + 5, reason="x", category="limit", hard=True).until == long.until


def test_soft_cooldowns_are_tried_last_hard_ones_skipped():
    clock = Clock()
    r = router(clock)
    serve(r, "m", fail={"a": UpstreamUnavailable("a: cannot connect")})  # soft, 5 s
    serve(r, "m", fail={"b": rate_limit(60)})  # hard; c serves
    plan = r.plan("m")
    assert runnable(plan) == [("b", False), ("c", True), ("a", True)]
    # everything fails: the soft-cooled one is the last resort; the result is a 429 (a limit was among them)
    with pytest.raises(RoutesExhausted) as e:
        serve(r, "m", fail={"c": UpstreamHTTPError("boom", kind=ErrorKind.API_ERROR, status=500),
                            "a": UpstreamTimeout("a: timeout")})
    err = e.value
    assert err.status == 429 and err.kind is ErrorKind.RATE_LIMIT
    assert err.retry_after == 5  # soonest: c's 5 s backoff (a's second failure backs off 10 s)
    assert "b/up-m: cooling down" in err.message and "c/up-m: 500 api_error" in err.message
    assert "a/up-m: 504 timeout" in err.message


def test_all_outages_give_503_with_the_soonest_retry():
    clock = Clock()
    r = router(clock)
    with pytest.raises(RoutesExhausted) as e:
        serve(r, "m", fail={n: UpstreamHTTPError("down", kind=ErrorKind.OVERLOADED, status=503, retry_after=7) for n in "abc"})
    assert (e.value.status, e.value.retry_after) == (503, 7)
    assert e.value.kind is ErrorKind.OVERLOADED


def test_non_retryable_errors_end_the_request_without_cooldown():
    clock = Clock()
    r = router(clock)
    bad = UpstreamHTTPError("context too long", kind=ErrorKind.INVALID_REQUEST, status=400)
    with pytest.raises(UpstreamHTTPError):
        serve(r, "m", fail={"a": bad})
    assert list(r.cooldowns.active()) == []


@pytest.mark.parametrize(
    "err, category, scoped, hard, until",
    [
        (rate_limit(10), "limit", True, True, 10),
        (rate_limit(), "limit", True, True, None),
        (LimitReached("x", resets_at=1_000_500.0), "limit", False, True, 500),
        (UpstreamHTTPError("x", kind=ErrorKind.RATE_LIMIT, status=429, code="usage_limit_reached", retry_after=99), "limit", False, True, 99),
        (UpstreamHTTPError("q", kind=ErrorKind.BILLING, status=429, code="insufficient_quota"), "limit", False, True, None),
        (NeedsSignIn("sign in again"), "auth", False, True, None),
        (UpstreamHTTPError("x", kind=ErrorKind.API_ERROR, status=500), "unavailable", False, False, None),
        (UpstreamHTTPError("x", kind=ErrorKind.OVERLOADED, status=529), "unavailable", False, False, None),
        (UpstreamTimeout("t"), "unavailable", False, False, None),
        (UpstreamUnavailable("u"), "unavailable", False, False, None),
        (StreamInterrupted("s"), "unavailable", False, False, None),
    ],
)
def test_classify(err, category, scoped, hard, until):
    v = classify(err, 1_000_000.0)
    assert v.fail_over and (v.category, v.model_scoped, v.hard) == (category, scoped, hard)
    assert (None if v.until is None else round(v.until - 1_000_000.0)) == until


@pytest.mark.parametrize("kind,status", [(ErrorKind.INVALID_REQUEST, 400), (ErrorKind.AUTHENTICATION, 401),
                                         (ErrorKind.PERMISSION, 403), (ErrorKind.NOT_FOUND, 404)])
def test_classify_client_errors_do_not_fail_over(kind, status):
    assert not classify(UpstreamHTTPError("x", kind=kind, status=status), 0).fail_over


def test_quota_reports_skip_limited_and_signed_out_accounts_and_least_used_orders_by_usage():
    clock = Clock()
    quotas = {"a": QuotaInfo(90.0), "b": QuotaInfo(10.0, limited_until=clock.t + 100), "c": QuotaInfo(40.0)}
    r = router(clock, strategy="least_used", quota=quotas.get)
    plan = r.plan("m")
    assert [(s.candidate.account, s.skip is None) for s in plan.steps] == [("b", False), ("c", True), ("a", True)]
    assert "quota used up" in plan.steps[0].skip
    quotas["b"] = QuotaInfo(10.0, status="needs_sign_in")
    assert r.plan("m").steps[0].skip.endswith("needs sign-in")
    quotas["b"] = QuotaInfo(None)  # unknown usage counts as 0
    assert [s.candidate.account for s in r.plan("m").steps] == ["b", "c", "a"]


def test_round_robin_rotates_the_first_entry_and_keeps_failover_order():
    r = router(Clock(), strategy="round_robin")
    firsts = [[s.candidate.account for s in r.plan("m").steps] for _ in range(4)]
    assert firsts == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]
    assert order([1, 2, 3], "ordered", turn=5) == [1, 2, 3]


def test_disabled_accounts_are_skipped():
    clock = Clock()
    accts = [Account("a", "openai", None, 1, enabled=False), *ACCTS[1:]]
    r = router(clock, accounts=accts)
    plan = r.plan("m")
    assert plan.steps[0].skip == "disabled"
    with pytest.raises(RoutesExhausted) as e:
        serve(router(clock, accounts=[Account("a", "openai", None, 1, enabled=False)]), "solo")
    assert e.value.status == 503 and "a/up-solo: disabled" in e.value.message


def test_session_affinity_keeps_a_session_on_its_account_and_moves_it_on_failure():
    clock = Clock()
    r = router(clock, strategy="round_robin")
    s1 = serve(r, "m", "s1")[0]
    s2 = serve(r, "m", "s2")[0]
    assert s1 != s2
    for _ in range(5):
        assert serve(r, "m", "s1")[0] == s1
        assert serve(r, "m", "s2")[0] == s2
    moved = serve(r, "m", "s1", fail={s1: rate_limit(30)})[0]
    assert moved != s1
    clock.advance(31)  # the old account is healthy again, the session stays where it moved
    assert all(serve(r, "m", "s1")[0] == moved for _ in range(3))
    # different routes keep separate affinities
    assert serve(r, "f", "s1")[0] == "b"


def test_affinity_is_a_bounded_lru_with_ttl():
    clock = Clock()
    a = Affinity(clock, ttl=10, size=3)
    for k in "wxyz":
        a.put(k, k.upper())
    assert a.get("w") is None and len(a) == 3
    a.get("x")  # refreshes LRU position
    a.put("q", "Q")
    assert a.get("y") is None and a.get("x") == "X"
    clock.advance(11)
    assert a.get("x") is None


def test_plan_applies_default_and_background_mapping():
    r = router(Clock(), settings=RoutingSettings(default_model="f", background_model="solo"))
    p = r.plan(None)
    assert (p.name, p.route.kind) == ("f", "flow")
    assert r.plan("claude-haiku-4-5").name == "solo"
    r2 = router(Clock())
    with pytest.raises(InvalidRequest):
        r2.plan(None)
