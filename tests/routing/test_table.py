"""RouteTable: names -> ordered candidates (flows, chains, static routes, Smart Switch)."""

from __future__ import annotations

import pytest

from antiapi.errors import InvalidRequest
from antiapi.routing import Account, Candidate, Chain, Entry, RouteTable, RoutingSettings, UnknownModel

ACCOUNTS = [
    Account("openai", "openai", None, 1),
    Account("codex:a@x", "codex", "a@x", 2),
    Account("copilot:gh1", "copilot", "gh1", 3),
    Account("codex:b@x", "codex", "b@x", 4),
    Account("claude", "anthropic", None, 5),
]


def table(**kw) -> RouteTable:
    base = dict(
        accounts=ACCOUNTS,
        static={"gpt-4.1": [Candidate("openai", "gpt-4.1", caps="C1")], "m": [Candidate("claude", "claude-x"), Candidate("openai", "gpt-4.1")]},
        dynamic={"gpt-5.2-codex": ["codex:b@x", "codex:a@x"], "claude-sonnet-4.5": ["copilot:gh1"]},
        flows={"fast": Chain((Entry("codex", "gpt-5.2-codex-low"), Entry("copilot", "claude-sonnet-4.5"), Entry("openai", "gpt-4.1")))},
    )
    base.update(kw)
    return RouteTable(**base)


def pairs(route):
    return [(c.account, c.model) for c in route.candidates]


def test_flow_by_prefix_and_bare_name_mixes_providers_and_expands_types_in_creation_order():
    t = table()
    for name in ("route:fast", "fast"):
        r = t.resolve(name)
        assert (r.kind, r.key, r.strategy) == ("flow", "flow:fast", "ordered")
        assert pairs(r) == [
            ("codex:a@x", "gpt-5.2-codex-low"), ("codex:b@x", "gpt-5.2-codex-low"),
            ("copilot:gh1", "claude-sonnet-4.5"), ("openai", "gpt-4.1"),
        ]
    # a flow entry reusing a configured deployment keeps its capability overrides
    assert t.resolve("fast").candidates[-1].caps == "C1"


def test_flow_entry_can_pin_one_account_of_a_type():
    t = table(flows={"one": Chain((Entry("codex", "gpt-5.2", account="b@x"), Entry("codex:a@x", "gpt-5.2-mini")))})
    assert pairs(t.resolve("one")) == [("codex:b@x", "gpt-5.2"), ("codex:a@x", "gpt-5.2-mini")]


def test_smart_switch_expands_a_listed_model_to_every_account_in_creation_order_and_off_keeps_the_first():
    assert pairs(table().resolve("gpt-5.2-codex")) == [("codex:a@x", "gpt-5.2-codex"), ("codex:b@x", "gpt-5.2-codex")]
    off = table(settings=RoutingSettings(smart_switch=False))
    assert pairs(off.resolve("gpt-5.2-codex")) == [("codex:a@x", "gpt-5.2-codex")]


def test_config_routes_keep_file_order_and_explicit_chains_win():
    t = table(chains={"m": Chain((Entry("openai"), Entry("codex", "gpt-5.2")), strategy="round_robin")})
    r = t.resolve("m")
    assert r.strategy == "round_robin"
    assert pairs(r) == [("openai", "m"), ("codex:a@x", "gpt-5.2"), ("codex:b@x", "gpt-5.2")]
    assert pairs(table().resolve("m")) == [("claude", "claude-x"), ("openai", "gpt-4.1")]
    # a chain with only a strategy keeps the Smart Switch expansion
    t2 = table(chains={"gpt-5.2-codex": Chain(strategy="least_used")})
    assert t2.resolve("gpt-5.2-codex").strategy == "least_used" and len(t2.resolve("gpt-5.2-codex").candidates) == 2


def test_provider_prefix_is_tolerated_for_models_not_flows():
    assert pairs(table().resolve("openai/gpt-4.1")) == [("openai", "gpt-4.1")]
    with pytest.raises(UnknownModel):
        table().resolve("x/fast")


def test_unknown_name_is_400_model_not_found_listing_flows_and_models():
    with pytest.raises(UnknownModel) as e:
        table().resolve("gpt-nope")
    err = e.value
    assert (err.status, err.code, err.param, err.kind.value) == (400, "model_not_found", "model", "invalid_request")
    assert "'gpt-nope'" in err.message and "Flows: fast" in err.message
    assert "gpt-4.1" in err.message and "gpt-5.2-codex" in err.message and "claude-sonnet-4.5" in err.message
    with pytest.raises(UnknownModel) as e2:
        RouteTable().resolve("x")
    assert "none are configured" in e2.value.message and "Flows" not in e2.value.message
    with pytest.raises(UnknownModel):
        table().resolve("route:nope")


def test_default_model_and_background_mapping():
    t = table(settings=RoutingSettings(default_model="route:fast", background_model="gpt-4.1"))
    assert t.target(None) == "route:fast" and t.target("") == "route:fast"
    assert t.target("claude-3-5-HAIKU-20241022") == "gpt-4.1"
    assert t.target("claude-sonnet-4.5") == "claude-sonnet-4.5"
    with pytest.raises(InvalidRequest) as e:
        table().target(None)
    assert e.value.param == "model" and e.value.status == 400
    # without a background model nothing is mapped
    assert table().target("claude-haiku-4-5") == "claude-haiku-4-5"
    custom = table(settings=RoutingSettings(background_model="fast", background_patterns=("*-mini", "tiny*")))
    assert custom.target("gpt-4.1-mini") == "fast" and custom.target("tiny") == "fast" and custom.target("claude-haiku") == "claude-haiku"


def test_names_lists_models_then_flows():
    assert table().names() == ["claude-sonnet-4.5", "gpt-4.1", "gpt-5.2-codex", "m", "fast"]


def test_unknown_accounts_in_dynamic_lists_are_ignored_and_resolution_is_cached():
    t = table(dynamic={"x": ["gone"]})
    with pytest.raises(UnknownModel):
        t.resolve("x")
    assert t.resolve("fast") is t.resolve("fast")
