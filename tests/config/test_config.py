"""antiapi.paths and antiapi.config: data dir, atomic writes, native + LiteLLM config, errors, secrets."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from antiapi import paths
from antiapi.config import (
    TEMPLATE,
    Capabilities,
    Config,
    ModelRoute,
    ProviderConfig,
    ServerSettings,
    load_config,
    mask_secret,
    parse_config,
    setup_hint,
)
from antiapi.errors import ConfigError

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")

OPENAI_KEY = "sk-proj-AAAAbbbbCCCCddddEEEE1234"
ANTHROPIC_KEY = "sk-ant-api03-ZZZZyyyyXXXXwwww9876"


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    path.chmod(0o600)
    return path


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Config:
    return load_config(write(tmp_path, text), data_dir=tmp_path / "data", env=env or {})


def error(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, data_dir=tmp_path / "data", env=env or {})
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    return message


# ---------------------------------------------------------------------------------------------
# paths
# ---------------------------------------------------------------------------------------------


@posix_only
def test_data_dir_is_created_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        target = tmp_path / "a" / "b"
        got = paths.data_dir(str(target))
    finally:
        os.umask(old)
    assert got == target and got.is_dir()
    assert stat.S_IMODE(got.stat().st_mode) == 0o700


def test_data_dir_expands_user_and_keeps_existing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    got = paths.data_dir("~/antiapi-data")
    assert got == tmp_path / "antiapi-data"
    (got / "keep.txt").write_text("x")
    assert paths.data_dir(got) == got and (got / "keep.txt").read_text() == "x"


def test_default_data_dir_uses_platformdirs() -> None:
    import platformdirs

    got = paths.default_data_dir()
    assert got == Path(platformdirs.user_data_dir("antiapi", appauthor=False))
    assert got.name == "antiapi" and got.parent.name != "antiapi"  # no "<author>/<app>" nesting


@posix_only
def test_save_text_atomic_replaces_with_mode_0600(tmp_path: Path) -> None:
    target = tmp_path / "tokens.json"
    target.write_text("old")
    target.chmod(0o644)
    old = os.umask(0)
    try:
        paths.save_text_atomic(target, '{"token": "é"}')
    finally:
        os.umask(old)
    assert target.read_text(encoding="utf-8") == '{"token": "é"}'
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tokens.json"]  # no temp file left


@posix_only
def test_save_text_atomic_custom_mode_and_missing_parent(tmp_path: Path) -> None:
    target = tmp_path / "new" / "f.txt"
    paths.save_text_atomic(target, "hi", mode=0o640)
    assert target.read_text() == "hi"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700


def test_save_text_atomic_leaves_no_temp_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "dir-in-the-way"
    target.mkdir()
    (target / "x").write_text("x")  # os.replace cannot replace a non-empty directory
    with pytest.raises(OSError):
        paths.save_text_atomic(target, "data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir-in-the-way"]


# ---------------------------------------------------------------------------------------------
# zero config, locations, env injection
# ---------------------------------------------------------------------------------------------


@posix_only
def test_zero_config_writes_template_and_starts_empty(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = load_config(env={"ANTI_API_DATA_DIR": str(data)})
    file = data / "config.yaml"
    assert config.path == file and config.data_dir == data and config.created is True
    assert config.providers == {} and config.models == {} and config.model_names() == []
    assert config.server == ServerSettings()
    assert config.warnings == []
    assert file.read_text(encoding="utf-8") == TEMPLATE
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert yaml.safe_load(TEMPLATE) is None  # only comments
    # The template's examples are valid once uncommented (minus the leading "# ").
    assert "model_list:" in TEMPLATE and "providers:" in TEMPLATE
    assert str(file) in setup_hint(config)

    again = load_config(env={"ANTI_API_DATA_DIR": str(data)})
    assert again.created is False and again.models == {}


def test_template_examples_parse_when_uncommented(tmp_path: Path) -> None:
    sections = ("server:", "providers:", "models:", "model_list:")
    body = "\n".join(
        line[2:] for line in TEMPLATE.splitlines() if line.startswith("#   ") or line[2:] in sections
    )
    config = parse_config(
        body, path=tmp_path / "c.yaml", data_dir=tmp_path, env={"OPENAI_API_KEY": OPENAI_KEY, "ANTHROPIC_API_KEY": "k" * 20}
    )
    assert config.model_names() == ["claude-sonnet", "gpt-4.1", "gpt-4.1-mini", "gpt-4o", "sonnet"]


def test_data_dir_param_beats_env_and_explicit_path(tmp_path: Path) -> None:
    cfg = write(tmp_path, "server: {port: 9000}\n", name="elsewhere.yaml")
    config = load_config(cfg, data_dir=tmp_path / "param", env={"ANTI_API_DATA_DIR": str(tmp_path / "env")})
    assert config.data_dir == tmp_path / "param" and (tmp_path / "param").is_dir()
    assert not (tmp_path / "env").exists()
    assert config.path == cfg and config.created is False and config.server.port == 9000


def test_explicit_missing_path_gets_template(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "my.yaml"
    config = load_config(target, data_dir=tmp_path / "d", env={})
    assert config.created is True and target.read_text(encoding="utf-8") == TEMPLATE


def test_env_is_injected_not_read_from_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    message = error(tmp_path, "providers: {openai: {type: openai, api_key: env:OPENAI_API_KEY}}\n", env={})
    assert "environment variable OPENAI_API_KEY is not set" in message


def test_default_env_is_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTI_API_DATA_DIR", str(tmp_path / "from-env"))
    monkeypatch.setenv("MY_TEST_KEY", OPENAI_KEY)
    path = write(tmp_path, "providers: {p: {type: openai, api_key: env:MY_TEST_KEY}}\n")
    config = load_config(path)
    assert config.data_dir == tmp_path / "from-env"
    assert config.providers["p"].api_key == OPENAI_KEY


# ---------------------------------------------------------------------------------------------
# native format
# ---------------------------------------------------------------------------------------------

NATIVE = """\
server:
  host: 0.0.0.0
  port: 9100
  max_body_mb: 1.5
  timeouts: {connect: 3, first_byte: 60.5, idle: 90}
providers:
  openai:
    type: openai
    api_key: env:OPENAI_API_KEY
    models: [gpt-4.1, gpt-4.1-mini, gpt-4.1]
    reasoning_models: ["o*", "gpt-5*"]
  claude:
    type: anthropic
    base_url: https://api.anthropic.com/v1/
    api_key: os.environ/ANTHROPIC_API_KEY
    headers: {anthropic-beta: "a,b", X-Token: env:EXTRA_TOKEN}
  google:
    type: gemini
    api_key: literal-gemini-key-123456
  local:
    type: openai
    base_url: http://127.0.0.1:8080/v1
    api_key: null
    verify_tls: false
models:
  - name: sonnet-4
    provider: claude
    model: claude-sonnet-4-5
    aliases: [sonnet, claude]
    capabilities: {images: false, thinking: true}
  - name: sonnet-4
    provider: local
  - name: gemini-2.5-pro
    provider: google
  - name: gpt-4.1-mini
    provider: local
    model: qwen3
"""
NATIVE_ENV = {"OPENAI_API_KEY": OPENAI_KEY, "ANTHROPIC_API_KEY": ANTHROPIC_KEY, "EXTRA_TOKEN": "tok-123"}


def test_native_full_example(tmp_path: Path) -> None:
    config = load(tmp_path, NATIVE, NATIVE_ENV)
    assert config.server == ServerSettings(
        host="0.0.0.0",
        port=9100,
        max_body_bytes=1572864,
        connect_timeout=3.0,
        first_byte_timeout=60.5,
        idle_timeout=90.0,
    )
    assert config.providers["openai"] == ProviderConfig(
        name="openai",
        type="openai",
        base_url="https://api.openai.com/v1",
        api_key=OPENAI_KEY,
        headers={},
        verify_tls=True,
        models=("gpt-4.1", "gpt-4.1-mini"),
        reasoning_models=("o*", "gpt-5*"),
    )
    claude = config.providers["claude"]
    assert (claude.type, claude.base_url, claude.api_key) == ("anthropic", "https://api.anthropic.com", ANTHROPIC_KEY)
    assert claude.headers == {"anthropic-beta": "a,b", "X-Token": "tok-123"}
    google = config.providers["google"]
    assert (google.base_url, google.api_key) == ("https://generativelanguage.googleapis.com", "literal-gemini-key-123456")
    local = config.providers["local"]
    assert (local.base_url, local.api_key, local.verify_tls) == ("http://127.0.0.1:8080/v1", None, False)

    sonnet = [
        ModelRoute("sonnet-4", "claude", "claude-sonnet-4-5", Capabilities(images=False, thinking=True)),
        ModelRoute("sonnet-4", "local", "sonnet-4", Capabilities()),
    ]
    assert config.models["sonnet-4"] == sonnet
    assert config.models["sonnet"] == sonnet and config.models["claude"] == sonnet
    assert config.models["gemini-2.5-pro"] == [ModelRoute("gemini-2.5-pro", "google", "gemini-2.5-pro")]
    # Provider-listed ids are routable by themselves, unless an explicit entry claims the name.
    assert config.models["gpt-4.1"] == [ModelRoute("gpt-4.1", "openai", "gpt-4.1")]
    assert config.models["gpt-4.1-mini"] == [ModelRoute("gpt-4.1-mini", "local", "qwen3")]
    assert config.model_names() == ["claude", "gemini-2.5-pro", "gpt-4.1", "gpt-4.1-mini", "sonnet", "sonnet-4"]
    assert config.warnings == []


def test_config_is_frozen(tmp_path: Path) -> None:
    config = load(tmp_path, NATIVE, NATIVE_ENV)
    with pytest.raises(AttributeError):
        config.server = ServerSettings()  # type: ignore[misc]
    with pytest.raises(AttributeError):
        config.providers["openai"].api_key = "x"  # type: ignore[misc]


def test_gemini_and_anthropic_base_urls_drop_version_path(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        providers:
          g: {type: gemini, base_url: "https://proxy.example/v1beta/", api_key: null}
          a: {type: anthropic, base_url: "https://gw.example/anthropic/v1/messages", api_key: null}
          o: {type: openai, base_url: "https://gw.example/openai/v1/", api_key: null}
        """,
    )
    assert [p.base_url for p in config.providers.values()] == [
        "https://proxy.example",
        "https://gw.example/anthropic",
        "https://gw.example/openai/v1",
    ]


def test_missing_api_key_falls_back_to_usual_variable_only_for_official_endpoint(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        providers:
          official: {type: openai}
          other: {type: openai, base_url: "https://evil.example/v1"}
          claude: {type: anthropic}
        """,
        {"OPENAI_API_KEY": OPENAI_KEY},
    )
    assert config.providers["official"].api_key == OPENAI_KEY
    assert config.providers["other"].api_key is None  # the official key never goes elsewhere
    assert config.providers["claude"].api_key is None
    assert config.warnings == [
        f"{tmp_path / 'config.yaml'}: providers.claude: no api_key and ANTHROPIC_API_KEY is not set; "
        "requests will be sent without a key. Set api_key: env:ANTHROPIC_API_KEY"
    ]


def test_empty_sections_are_allowed(tmp_path: Path) -> None:
    config = load(tmp_path, "server:\nproviders:\nmodels:\nmodel_list:\n")
    assert config.providers == {} and config.models == {} and config.server == ServerSettings()


# ---------------------------------------------------------------------------------------------
# LiteLLM format
# ---------------------------------------------------------------------------------------------

LITELLM = """\
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_key: os.environ/OPENAI_API_KEY
      rpm: 480
      tpm: 100000
    model_info:
      id: deployment-1
      mode: chat
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o-2024-08-06
      api_base: https://eu.gateway.example/v1
      api_key: os.environ/EU_KEY
      timeout: 300
  - model_name: gpt-4o-mini
    litellm_params:
      model: gpt-4o-mini
      api_key: os.environ/OPENAI_API_KEY
  - model_name: claude-sonnet
    litellm_params:
      model: anthropic/claude-sonnet-4-5-20250929
      api_key: os.environ/ANTHROPIC_API_KEY
    model_info:
      supports_vision: false
      supports_reasoning: true
  - model_name: gemini-pro
    litellm_params:
      model: gemini/gemini-2.5-pro
      api_key: os.environ/GEMINI_API_KEY
  - model_name: llama3
    litellm_params:
      model: ollama_chat/llama3.1:8b
      api_base: http://localhost:11434
  - model_name: qwen
    litellm_params:
      model: hosted_vllm/Qwen/Qwen2.5-7B-Instruct
      api_base: http://gpu-box:8000/v1
  - model_name: deepseek-r1
    litellm_params:
      model: openrouter/deepseek/deepseek-r1
      api_key: os.environ/OPENROUTER_API_KEY
      extra_headers: {HTTP-Referer: "https://example.org"}

litellm_settings:
  drop_params: true
  success_callback: ["langfuse"]

router_settings:
  routing_strategy: simple-shuffle
  num_retries: 2

general_settings:
  master_key: sk-1234
"""
LITELLM_ENV = {
    "OPENAI_API_KEY": OPENAI_KEY,
    "EU_KEY": "eu-key-0000000000000009",
    "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
    "GEMINI_API_KEY": "AIzaSy-gemini-000000000",
    "OPENROUTER_API_KEY": "sk-or-v1-0000000000000000",
}


def test_real_looking_litellm_config(tmp_path: Path) -> None:
    config = load(tmp_path, LITELLM, LITELLM_ENV)
    file = tmp_path / "config.yaml"
    providers = {
        name: (p.type, p.base_url, p.api_key, p.headers, p.models) for name, p in config.providers.items()
    }
    assert providers == {
        "openai": ("openai", "https://api.openai.com/v1", OPENAI_KEY, {}, ("gpt-4o", "gpt-4o-mini")),
        "eu.gateway.example": (
            "openai", "https://eu.gateway.example/v1", "eu-key-0000000000000009", {}, ("gpt-4o-2024-08-06",)
        ),
        "anthropic": ("anthropic", "https://api.anthropic.com", ANTHROPIC_KEY, {}, ("claude-sonnet-4-5-20250929",)),
        "gemini": (
            "gemini", "https://generativelanguage.googleapis.com", "AIzaSy-gemini-000000000", {}, ("gemini-2.5-pro",)
        ),
        "ollama": ("openai", "http://localhost:11434/v1", None, {}, ("llama3.1:8b",)),
        "gpu-box": ("openai", "http://gpu-box:8000/v1", None, {}, ("Qwen/Qwen2.5-7B-Instruct",)),
        "openrouter": (
            "openai",
            "https://openrouter.ai/api/v1",
            "sk-or-v1-0000000000000000",
            {"HTTP-Referer": "https://example.org"},
            ("deepseek/deepseek-r1",),
        ),
    }
    # Two entries with one model_name are two deployments, in file order.
    assert config.models["gpt-4o"] == [
        ModelRoute("gpt-4o", "openai", "gpt-4o"),
        ModelRoute("gpt-4o", "eu.gateway.example", "gpt-4o-2024-08-06"),
    ]
    assert config.models["gpt-4o-mini"] == [ModelRoute("gpt-4o-mini", "openai", "gpt-4o-mini")]
    assert config.models["claude-sonnet"] == [
        ModelRoute(
            "claude-sonnet", "anthropic", "claude-sonnet-4-5-20250929", Capabilities(images=False, thinking=True)
        )
    ]
    assert config.model_names() == [
        "claude-sonnet", "deepseek-r1", "gemini-pro", "gpt-4o", "gpt-4o-mini", "llama3", "qwen"
    ]
    assert config.warnings == [
        f"{file}: litellm_settings: LiteLLM section ignored by antiapi "
        "(callbacks, caching, drop_params and fallbacks are LiteLLM features)",
        f"{file}: router_settings: LiteLLM section ignored by antiapi "
        "(antiapi tries a model's deployments in file order; use models[].aliases for aliases)",
        f"{file}: general_settings: LiteLLM section ignored by antiapi "
        "(master keys, databases and budgets are LiteLLM proxy features)",
        f"{file}: model_list[0].litellm_params (gpt-4o): antiapi ignores rpm, tpm (per-deployment limits, "
        "timeouts, retries and default request parameters are LiteLLM features)",
        f"{file}: model_list[1].litellm_params (gpt-4o): antiapi ignores timeout (per-deployment limits, "
        "timeouts, retries and default request parameters are LiteLLM features)",
    ]


@pytest.mark.parametrize(
    ("model", "api_base", "ptype", "base_url", "upstream"),
    [
        ("openai/gpt-4o", None, "openai", "https://api.openai.com/v1", "gpt-4o"),
        ("gpt-4o", None, "openai", "https://api.openai.com/v1", "gpt-4o"),
        ("anthropic/claude-opus-4-1", None, "anthropic", "https://api.anthropic.com", "claude-opus-4-1"),
        ("gemini/gemini-2.5-flash", None, "gemini", "https://generativelanguage.googleapis.com", "gemini-2.5-flash"),
        ("ollama/llama3", None, "openai", "http://localhost:11434/v1", "llama3"),
        ("ollama_chat/llama3", "http://box:11434/", "openai", "http://box:11434/v1", "llama3"),
        ("ollama/llama3", "http://box:11434/v1", "openai", "http://box:11434/v1", "llama3"),
        ("hosted_vllm/org/m", "http://vllm:8000/v1", "openai", "http://vllm:8000/v1", "org/m"),
        ("openrouter/anthropic/claude-3.5", None, "openai", "https://openrouter.ai/api/v1", "anthropic/claude-3.5"),
        ("groq/llama-3.3-70b", None, "openai", "https://api.groq.com/openai/v1", "llama-3.3-70b"),
        ("deepseek/deepseek-chat", None, "openai", "https://api.deepseek.com/v1", "deepseek-chat"),
        ("together_ai/meta/llama", None, "openai", "https://api.together.xyz/v1", "meta/llama"),
        ("mistral/mistral-large", None, "openai", "https://api.mistral.ai/v1", "mistral-large"),
        ("fireworks_ai/accounts/x/m", None, "openai", "https://api.fireworks.ai/inference/v1", "accounts/x/m"),
        ("xai/grok-4", None, "openai", "https://api.x.ai/v1", "grok-4"),
        ("openai/local-model", "http://localhost:1234/v1", "openai", "http://localhost:1234/v1", "local-model"),
    ],
)
def test_litellm_prefixes(
    tmp_path: Path, model: str, api_base: str | None, ptype: str, base_url: str, upstream: str
) -> None:
    params = {"model": model, "api_key": "literal-key-for-test"}
    if api_base:
        params["api_base"] = api_base
    config = load(tmp_path, yaml.safe_dump({"model_list": [{"model_name": "m", "litellm_params": params}]}))
    [route] = config.models["m"]
    provider = config.providers[route.provider]
    assert (provider.type, provider.base_url, route.upstream_model) == (ptype, base_url, upstream)
    assert provider.api_key == "literal-key-for-test"


def test_litellm_entries_share_provider_by_type_base_and_key(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        model_list:
          - {model_name: a, litellm_params: {model: openai/a, api_key: os.environ/K1}}
          - {model_name: b, litellm_params: {model: openai/b, api_key: env:K1}}
          - {model_name: c, litellm_params: {model: openai/c, api_key: os.environ/K2}}
          - {model_name: d, litellm_params: {model: openai/d, api_base: "http://localhost:9000/v1"}}
          - {model_name: e, litellm_params: {model: openai/e, api_base: "http://localhost:9000/v1", api_key: x}}
        """,
        {"K1": "key-one-0000000001", "K2": "key-two-0000000002"},
    )
    assert {n: (p.api_key, p.models) for n, p in config.providers.items()} == {
        "openai": ("key-one-0000000001", ("a", "b")),
        "openai-2": ("key-two-0000000002", ("c",)),
        "localhost-9000": (None, ("d",)),
        "localhost-9000-2": ("x", ("e",)),
    }


def test_litellm_used_params_and_model_info(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        model_list:
          - model_name: m
            litellm_params:
              model: m1
              base_url: os.environ/BASE
              organization: org-123
              ssl_verify: false
              headers: {X-A: "1"}
              input_cost_per_token: 0.000001
              tags: [free]
            model_info: {supports_function_calling: false, supports_native_streaming: false, custom: 1}
          - model_name: n
            litellm_params: {model: gpt-x, custom_llm_provider: groq}
        """,
        {"BASE": "https://corp.example/v1", "GROQ_API_KEY": "gsk_0000000000000000"},
    )
    corp = config.providers["corp.example"]
    assert corp.base_url == "https://corp.example/v1" and corp.verify_tls is False
    assert corp.headers == {"X-A": "1", "OpenAI-Organization": "org-123"}
    assert config.models["m"][0].capabilities == Capabilities(tools=False, streaming=False)
    groq = config.providers["groq"]
    assert (groq.base_url, groq.api_key, groq.models) == (
        "https://api.groq.com/openai/v1", "gsk_0000000000000000", ("gpt-x",)
    )
    assert config.warnings == []  # cost/tags bookkeeping is silent


def test_litellm_unknown_param_without_close_match_is_a_warning(tmp_path: Path) -> None:
    config = load(tmp_path, "model_list: [{model_name: m, litellm_params: {model: m, vendor_flag_xyz: 1}}]\n")
    assert config.models["m"][0].upstream_model == "m"
    assert config.warnings == [
        f"{tmp_path / 'config.yaml'}: model_list[0].litellm_params (m): antiapi ignores vendor_flag_xyz "
        "(per-deployment limits, timeouts, retries and default request parameters are LiteLLM features)"
    ]


def test_litellm_wildcard_entry_is_skipped_with_warning(tmp_path: Path) -> None:
    config = load(tmp_path, "model_list: [{model_name: 'openai/*', litellm_params: {model: 'openai/*'}}]\n")
    assert config.models == {} and config.providers == {}
    assert "model_list[0]: wildcard model 'openai/*' skipped" in config.warnings[0]


def test_native_and_model_list_merge(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        providers:
          mine: {type: openai, base_url: "http://127.0.0.1:5000/v1", api_key: null}
        models:
          - {name: shared, provider: mine, model: local-shared}
        model_list:
          - {model_name: shared, litellm_params: {model: openai/gpt-4o, api_key: literal-key-000000}}
          - {model_name: other, litellm_params: {model: anthropic/claude, api_key: literal-key-000001}}
        """,
    )
    assert list(config.providers) == ["mine", "openai", "anthropic"]
    assert config.models["shared"] == [
        ModelRoute("shared", "mine", "local-shared"),
        ModelRoute("shared", "openai", "gpt-4o"),
    ]
    assert config.models["other"] == [ModelRoute("other", "anthropic", "claude")]


def test_generated_provider_names_avoid_native_names(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        providers:
          openai: {type: openai, api_key: null}
        model_list:
          - {model_name: x, litellm_params: {model: openai/x, api_key: k-000000000000}}
        """,
    )
    assert list(config.providers) == ["openai", "openai-2"]
    assert config.models["x"] == [ModelRoute("x", "openai-2", "x")]


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------


def test_unknown_top_level_key_suggests(tmp_path: Path) -> None:
    message = error(tmp_path, "modle_list: []\n")
    assert message == (
        f"{tmp_path / 'config.yaml'}: unknown top-level key 'modle_list' (did you mean 'model_list'?). "
        "antiapi reads server, providers, models and LiteLLM's model_list"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "model_list:\n  - model_name: a\n    litellm_param: {model: a}\n",
            "model_list[0]: unknown key 'litellm_param' (did you mean 'litellm_params'?)",
        ),
        (
            "model_list:\n  - {model_name: a, litellm_params: {model: a}}\n  - model_nam: b\n    litellm_params: {model: b}\n",
            "model_list[1]: unknown key 'model_nam' (did you mean 'model_name'?)",
        ),
        (
            "model_list:\n"
            "  - {model_name: a, litellm_params: {model: a}}\n"
            "  - {model_name: b, litellm_params: {model: b}}\n"
            "  - {model_name: c, litellm_params: {model: c, api_bse: 'http://x'}}\n",
            "model_list[2].litellm_params: unknown key 'api_bse' (did you mean 'api_base'?)",
        ),
        (
            "providers:\n  openai: {type: openai, bse_url: 'http://x'}\n",
            "providers.openai: unknown key 'bse_url' (did you mean 'base_url'?)",
        ),
        (
            "providers:\n  p: {type: openai}\nmodels:\n  - {name: m, provider: p, capabilities: {tool: true}}\n",
            "models[0].capabilities: unknown key 'tool' (did you mean 'tools'?)",
        ),
        ("server:\n  timeout: {connect: 1}\n", "server: unknown key 'timeout' (did you mean 'timeouts'?)"),
        ("server: {timeouts: {first_bytes: 5}}\n", "server.timeouts: unknown key 'first_bytes' (did you mean 'first_byte'?)"),
    ],
)
def test_typos_name_the_path(tmp_path: Path, text: str, expected: str) -> None:
    assert error(tmp_path, text) == f"{tmp_path / 'config.yaml'}: {expected}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('server: {port: "abc"}\n', "server.port: expected a whole number, got a string; write the number without quotes"),
        ("server: {port: 70000}\n", "server.port: must be a whole number <= 65535"),
        ("server: {port: true}\n", "server.port: expected a whole number, got true or false"),
        ("server: {timeouts: {idle: 0}}\n", "server.timeouts.idle: must be a number > 0.0"),
        ("server: [1]\n", "server: expected a mapping (key: value lines), got a list"),
        (
            "providers: {p: {type: azure}}\n",
            "providers.p.type: 'azure' is not a valid value; use one of: openai, anthropic, gemini, codex, copilot",
        ),
        ("providers: {p: {base_url: 'http://x'}}\n", "providers.p: the required key 'type' is missing; add it"),
        ("providers: {p: {type: openai, verify_tls: 'no'}}\n", "providers.p.verify_tls: expected true or false, got a string; write true or false without quotes"),
        ("providers: {p: {type: openai, headers: {X-N: 5}}}\n", "providers.p.headers.X-N: expected a string, got a whole number; put the value in quotes"),
        ("providers: {p: {type: openai, base_url: 'api.openai.com'}}\n", "providers.p.base_url: must be a full URL starting with http:// or https://, e.g. https://api.openai.com/v1"),
        ("providers: [a]\n", "providers: expected a mapping (name: settings), got a list"),
        ("providers: {'bad name': {type: openai}}\n", "providers.bad name: provider names may use letters, digits, '.', '_' and '-' and must start with a letter or digit"),
        (
            "providers: {openai: {type: openai}}\nmodels: [{name: m, provider: opnai}]\n",
            "models[0].provider: no provider named 'opnai' (did you mean 'openai'?); providers defined under providers: openai",
        ),
        (
            "providers: {p: {type: openai}}\nmodels: [{name: a, provider: p}, {name: b, provider: p, aliases: [a]}]\n",
            "models[1].aliases[0]: 'a' is already a model name; an alias must name no other model",
        ),
        (
            "providers: {p: {type: openai}}\nmodels: [{name: a, provider: p, aliases: [x]}, {name: b, provider: p, aliases: [x]}]\n",
            "models[1].aliases[0]: 'x' is already an alias of 'a'; pick another alias",
        ),
        ("model_list: [{model_name: m, litellm_params: {api_key: x}}]\n", "model_list[0].litellm_params: the required key 'model' is missing; add it"),
        ("model_list: [{model_name: 5, litellm_params: {model: m}}]\n", "model_list[0].model_name: expected a string, got a whole number; put the value in quotes"),
        ("model_list: {a: 1}\n", "model_list: expected a list (lines starting with '- '), got a mapping (key: value lines)"),
        (
            "model_list: [{model_name: m, litellm_params: {model: hosted_vllm/x}}]\n",
            "model_list[0].litellm_params: 'hosted_vllm/' models need api_base, the URL of your server (e.g. http://localhost:8000/v1)",
        ),
        ("model_list: [{model_name: m, litellm_params: {model: m}, model_info: {supports_vision: 'yes'}}]\n", "model_list[0].model_info.supports_vision: expected true or false, got a string"),
        ("- a\n- b\n", "the file must be a mapping of sections (server:, providers:, models:, model_list:), got a list"),
    ],
)
def test_wrong_values_name_the_key(tmp_path: Path, text: str, expected: str) -> None:
    assert error(tmp_path, text) == f"{tmp_path / 'config.yaml'}: {expected}"


@pytest.mark.parametrize("model", ["azure/gpt-4o", "bedrock/anthropic.claude-v2", "vertex_ai/gemini-pro", "mystery/x"])
def test_unsupported_litellm_prefix(tmp_path: Path, model: str) -> None:
    message = error(tmp_path, f"model_list:\n  - {{model_name: a, litellm_params: {{model: a}}}}\n  - {{model_name: b, litellm_params: {{model: '{model}'}}}}\n")
    prefix = model.split("/")[0]
    assert message.startswith(f"{tmp_path / 'config.yaml'}: model_list[1].litellm_params.model: '{model}': ")
    assert f"'{prefix}'" in message
    assert (
        "Supported prefixes: openai/, anthropic/, gemini/, ollama/, ollama_chat/, hosted_vllm/, openrouter/, "
        "groq/, deepseek/, together_ai/, mistral/, fireworks_ai/, xai/ (no prefix means openai/)"
    ) in message


def test_missing_env_var_error_text(tmp_path: Path) -> None:
    message = error(tmp_path, "providers:\n  openai:\n    type: openai\n    api_key: env:OPENAI_API_KEY\n")
    assert message == (
        f"{tmp_path / 'config.yaml'}: providers.openai.api_key: environment variable OPENAI_API_KEY is not set. "
        "Export it before starting antiapi (export OPENAI_API_KEY=...), or remove this key"
    )
    message = error(
        tmp_path,
        "model_list:\n  - {model_name: m, litellm_params: {model: openai/m, api_key: os.environ/MY_KEY}}\n",
        {"MY_KEY": ""},
    )
    assert message.startswith(
        f"{tmp_path / 'config.yaml'}: model_list[0].litellm_params.api_key: environment variable MY_KEY is empty."
    )
    message = error(tmp_path, "providers: {p: {type: openai, headers: {Authorization: 'env:TOK'}}}\n")
    assert ": providers.p.headers.Authorization: environment variable TOK is not set." in message


def test_yaml_syntax_error_names_line_and_hides_content(tmp_path: Path) -> None:
    text = "providers:\n  openai:\n    type: openai\n    api_key: sk-live-SECRETVALUE: oops\n"
    message = error(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'config.yaml'}: line 4, column 33: invalid YAML: mapping values are not allowed here.")
    assert "SECRETVALUE" not in message


def test_duplicate_yaml_key_is_an_error(tmp_path: Path) -> None:
    message = error(tmp_path, "providers:\n  a: {type: openai}\n  a: {type: gemini}\n")
    assert message == (
        f"{tmp_path / 'config.yaml'}: line 3, column 3: the key 'a' appears twice in the same section; "
        "keep one (YAML would silently use the last)"
    )


def test_yaml_merge_keys_still_work(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        providers:
          a: &base {type: openai, api_key: null}
          b:
            <<: *base
            base_url: http://127.0.0.1:1/v1
        """,
    )
    assert config.providers["a"].base_url == "https://api.openai.com/v1"
    assert (config.providers["b"].type, config.providers["b"].base_url) == ("openai", "http://127.0.0.1:1/v1")


def test_errors_never_contain_secrets(tmp_path: Path) -> None:
    env = {"OPENAI_API_KEY": OPENAI_KEY}
    for text in (
        f"providers: {{p: {{type: openai, api_key: {OPENAI_KEY}, bad: 1}}}}\n",
        f"model_list: [{{model_name: m, litellm_params: {{model: azure/x, api_key: {OPENAI_KEY}}}}}]\n",
        "providers: {p: {type: openai, api_key: env:OPENAI_API_KEY}}\nmodels: [{name: m, provider: q}]\n",
    ):
        assert OPENAI_KEY not in error(tmp_path, text, env)


def test_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"server: {host: \xff}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, data_dir=tmp_path / "d", env={})
    assert str(info.value) == f"{path}: the file is not UTF-8 text; save it as UTF-8"
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    with pytest.raises(ConfigError) as info:
        load_config(folder, data_dir=tmp_path / "d", env={})
    assert str(info.value).startswith(f"{folder}: cannot read the file (")


def test_data_dir_that_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    with pytest.raises(ConfigError) as info:
        load_config(env={"ANTI_API_DATA_DIR": str(blocker / "sub")})
    assert str(info.value).startswith(f"{blocker / 'sub'}: cannot create the data directory (")


# ---------------------------------------------------------------------------------------------
# secrets in repr
# ---------------------------------------------------------------------------------------------


def test_mask_secret() -> None:
    assert mask_secret("sk-proj-abcdefghijklmnop-abcd") == "sk-…abcd"
    assert mask_secret("shortkey") == "…"
    assert mask_secret(None) is None


def test_repr_masks_keys_and_header_values(tmp_path: Path) -> None:
    config = load(tmp_path, NATIVE, NATIVE_ENV)
    text = repr(config)
    assert OPENAI_KEY not in text and ANTHROPIC_KEY not in text and "literal-gemini-key-123456" not in text
    assert "tok-123" not in text
    assert "api_key='sk-…1234'" in text and "api_key='sk-…9876'" in text
    assert str(config.providers["openai"]) == (
        "ProviderConfig(name='openai', type='openai', base_url='https://api.openai.com/v1', api_key='sk-…1234', "
        "headers={}, verify_tls=True, models=('gpt-4.1', 'gpt-4.1-mini'), reasoning_models=('o*', 'gpt-5*'))"
    )
    assert "'X-Token': '…'" in repr(config.providers["claude"])


@posix_only
def test_world_readable_file_with_literal_key_warns(tmp_path: Path) -> None:
    path = write(tmp_path, "providers: {p: {type: openai, api_key: literal-secret-123456}}\n")
    path.chmod(0o644)
    config = load_config(path, data_dir=tmp_path / "d", env={})
    assert config.warnings == [
        f"{path}: the file holds an API key and other users can read it (mode 644). "
        f"Run chmod 600 {path}, or use api_key: env:NAME"
    ]
    path.chmod(0o600)
    assert load_config(path, data_dir=tmp_path / "d", env={}).warnings == []


_WORDS = [
    "server", "providers", "models", "model_list", "litellm_settings", "port", "host", "timeouts", "idle",
    "type", "openai", "anthropic", "gemini", "base_url", "api_key", "headers", "verify_tls", "name",
    "provider", "model", "aliases", "capabilities", "tools", "model_name", "litellm_params", "model_info",
    "api_base", "ollama/x", "azure/x", "env:K", "os.environ/K", "http://h/v1", "supports_vision", "rpm",
]
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.floats(allow_nan=False),
                     st.sampled_from(_WORDS), st.text(max_size=5))
_trees = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(st.sampled_from(_WORDS), st.integers(0, 3)), inner, max_size=4),
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_trees, st.dictionaries(st.sampled_from(_WORDS[:4]), _trees, max_size=4)))
def test_any_yaml_gives_config_or_config_error(tmp_path_factory: pytest.TempPathFactory, tree: object) -> None:
    tmp = tmp_path_factory.getbasetemp()
    text = yaml.safe_dump(tree)
    try:
        config = parse_config(text, path=tmp / "fuzz.yaml", data_dir=tmp, env={"K": "k-0000000000000"})
    except ConfigError as exc:
        assert str(exc).startswith(f"{tmp / 'fuzz.yaml'}: ")
    else:
        assert isinstance(config, Config)


def _paths(node: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


_BASES = [yaml.safe_load(NATIVE), yaml.safe_load(LITELLM)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_valid_config_gives_config_or_config_error(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    import copy

    tree = copy.deepcopy(data.draw(st.sampled_from(_BASES)))
    where = data.draw(st.sampled_from(_paths(tree)))
    parent = tree
    for step in where[:-1]:
        parent = parent[step]
    parent[where[-1]] = data.draw(_trees)
    tmp = tmp_path_factory.getbasetemp()
    env = {**NATIVE_ENV, **LITELLM_ENV, "K": "k-0000000000000"}
    try:
        config = parse_config(yaml.safe_dump(tree), path=tmp / "m.yaml", data_dir=tmp, env=env)
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith(f"{tmp / 'm.yaml'}: ")
        assert all(secret not in message for secret in env.values())
    else:
        assert isinstance(config, Config) and config.model_names() == sorted(config.models)


DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_documented_examples_load(tmp_path: Path) -> None:
    if not DOCS.exists():
        pytest.skip("docs/configuration.md not present")
    blocks = DOCS.read_text(encoding="utf-8").split("```yaml\n")[1:]
    examples = [c for c in (b.split("```")[0] for b in blocks) if "providers:" in c or "model_list:" in c]
    assert len(examples) == 2
    env = {n: f"{n.lower()}-0123456789" for n in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GATEWAY_KEY")}
    native = parse_config(examples[0], path=tmp_path / "a.yaml", data_dir=tmp_path, env=env)
    assert [r.provider for r in native.models["sonnet"]] == ["anthropic", "lmstudio"]
    assert native.models["claude"] == native.models["sonnet"]
    assert "o3" in native.models and native.server.max_body_bytes == 32 * 1024 * 1024
    litellm = parse_config(examples[1], path=tmp_path / "b.yaml", data_dir=tmp_path, env=env)
    assert [r.provider for r in litellm.models["gpt-4o"]] == ["openai", "my-gateway.example"]
    assert litellm.providers["anthropic"].api_key == "anthropic_api_key-0123456789"
    assert litellm.models["claude"][0].capabilities == Capabilities(images=True)
    assert len(litellm.warnings) == 1 and "litellm_settings" in litellm.warnings[0]


# ---------------------------------------------------------------------------------------------
# import hygiene
# ---------------------------------------------------------------------------------------------


def test_schema_import_is_pure() -> None:
    code = (
        "import sys, antiapi.config.schema, antiapi.config; "
        "bad = sorted(m for m in ('yaml', 'platformdirs', 'httpx', 'litestar') if m in sys.modules); "
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
