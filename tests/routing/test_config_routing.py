"""The config file's flows: and routing: sections."""

from __future__ import annotations

import pytest

from antiapi.config import parse_config
from antiapi.config.schema import Flow, FlowEntry
from antiapi.errors import ConfigError

PROVIDERS = """
providers:
  openai: {type: openai, api_key: k, base_url: "http://127.0.0.1:1/v1"}
  claude: {type: anthropic, api_key: k, base_url: "http://127.0.0.1:1"}
"""


def parse(text: str):
    return parse_config(PROVIDERS + text, path="/cfg/config.yaml", data_dir="/tmp/antiapi-test", env={})


def test_flows_as_lists_or_mappings_and_routing_settings():
    cfg = parse("""
flows:
  fast:
    - {provider: codex, model: gpt-5.2-codex-low}
    - {provider: copilot:gh-user, model: claude-sonnet-4.5}
    - {provider: openai, model: gpt-4.1}
  spread: {strategy: round_robin, entries: [{provider: codex, account: a@x, model: gpt-5.2}]}
routing:
  smart_switch: false
  default_model: fast
  background_model: route:fast
  background_patterns: ["*haiku*", "*-mini"]
  cooldown_max: 120
  chains:
    gpt-4.1: {strategy: least_used, entries: [{provider: openai}, {provider: claude, model: claude-x}]}
""")
    assert list(cfg.flows) == ["fast", "spread"]
    assert cfg.flows["fast"].entries[1] == FlowEntry("copilot:gh-user", "claude-sonnet-4.5")
    assert cfg.flows["spread"] == Flow("spread", (FlowEntry("codex", "gpt-5.2", "a@x"),), "round_robin")
    assert cfg.routing.settings == {
        "smart_switch": False, "default_model": "fast", "background_model": "route:fast",
        "background_patterns": ["*haiku*", "*-mini"], "cooldown_max": 120.0,
    }
    chain = cfg.routing.chains["gpt-4.1"]
    assert chain.strategy == "least_used" and chain.entries == (FlowEntry("openai"), FlowEntry("claude", "claude-x"))


def test_no_routing_sections_means_empty_defaults():
    cfg = parse("")
    assert cfg.flows == {} and cfg.routing.settings == {} and cfg.routing.chains == {}


@pytest.mark.parametrize(
    "text, message",
    [
        ("flows:\n  fast: [{provider: opnai, model: x}]\n",
         "flows.fast[0].provider: 'opnai' is neither a provider defined under providers (openai, claude) nor a "
         "provider type (openai, anthropic, gemini, codex, copilot) (did you mean 'openai'?)"),
        ("flows:\n  fast: [{provider: openai}]\n",
         "flows.fast[0].model: the upstream model id this entry asks for is required (model: ...)"),
        ("flows:\n  fast: []\n", "flows.fast: a flow needs at least one entry"),
        ("flows:\n  fast: {entries: [{provider: openai, model: m}], strategy: random}\n",
         "flows.fast.strategy: 'random' is not a valid value"),
        ("flows:\n  'bad name': [{provider: openai, model: m}]\n", "flows.bad name: flow names may use letters"),
        ("flows:\n  fast: [{provider: openai, modle: m}]\n", "unknown key 'modle' (did you mean 'model'?)"),
        ("routing:\n  smart_swich: true\n", "routing: unknown key 'smart_swich' (did you mean 'smart_switch'?)"),
        ("routing:\n  cooldown_base: 0\n", "routing.cooldown_base: must be a number > 0"),
        ("routing:\n  chains: {gpt-4.1: {entries: [{provider: nope}]}}\n", "routing.chains.gpt-4.1.entries[0].provider: 'nope'"),
        ("flow:\n  fast: []\n", "unknown top-level key 'flow' (did you mean 'flows'?)"),
    ],
)
def test_errors_name_the_key_and_the_fix(text, message):
    with pytest.raises(ConfigError) as e:
        parse(text)
    assert message in str(e.value), str(e.value)
    assert str(e.value).startswith("/cfg/config.yaml: ")


def test_a_flow_named_like_a_model_is_a_warning():
    cfg = parse("models:\n  - {name: gpt-4.1, provider: openai}\nflows:\n  gpt-4.1: [{provider: claude, model: c}]\n")
    assert any("flows.gpt-4.1: the flow has the name of a model" in w for w in cfg.warnings)
