"""The shape of antiapi's configuration: what the file may say, and what the server gets.

Two layers live here:

* **File schema** (``*Spec`` msgspec Structs, ``forbid_unknown_fields=True``): what a human may write in
  ``config.yaml`` in antiapi's native format, plus the outer shape of a LiteLLM ``model_list`` entry.
  Secrets are still *references* (``env:NAME`` / ``os.environ/NAME``) at this layer.
* **Resolved config** (frozen dataclasses): what :func:`antiapi.config.load_config` returns and the
  server consumes. Secrets are resolved; ``repr`` masks them.

Pure: imports only the standard library and msgspec (no yaml, no I/O, no ``os.environ``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

__all__ = [
    "DEFAULT_BASE_URLS",
    "LITELLM_IGNORED_SECTIONS",
    "LITELLM_PARAMS_KNOWN",
    "LITELLM_PARAMS_SILENT",
    "LITELLM_PARAMS_USED",
    "LITELLM_PARAMS_WARN",
    "LITELLM_PREFIXES",
    "LITELLM_UNSUPPORTED",
    "MODEL_INFO_CAPABILITIES",
    "NATIVE_SECTIONS",
    "ROUTING_SECTIONS",
    "STRATEGIES",
    "ChainSpec",
    "Flow",
    "FlowEntry",
    "FlowEntrySpec",
    "FlowSpec",
    "RoutingConfig",
    "RoutingSpec",
    "PROVIDER_TYPES",
    "Capabilities",
    "CapabilitiesSpec",
    "Config",
    "DeploymentSpec",
    "LiteLLMPrefix",
    "LiteLLMParamsSpec",
    "ModelRoute",
    "ModelSpec",
    "NativeSpec",
    "ProviderConfig",
    "ProviderSpec",
    "ProviderType",
    "ServerSettings",
    "ServerSpec",
    "TimeoutsSpec",
    "mask_secret",
]

ProviderType = Literal["openai", "anthropic", "gemini", "codex", "copilot"]

#: The upstream dialects antiapi can talk to, in the order error messages list them.
PROVIDER_TYPES: tuple[str, ...] = ("openai", "anthropic", "gemini", "codex", "copilot")

#: Base URL used when a provider gives none. The anthropic provider appends ``/v1/messages``;
#: the gemini provider appends ``/v1beta/models/...``; the openai one appends ``/chat/completions``.
DEFAULT_BASE_URLS: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com",
    "codex": "https://chatgpt.com/backend-api/codex",
    "copilot": "https://api.githubcopilot.com",
}

_MIB = 1024 * 1024


# --------------------------------------------------------------------------------------------
# File schema (native format)
# --------------------------------------------------------------------------------------------


class _Spec(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Base of every file-schema Struct: a typo in a key is an error, never silently ignored."""


class TimeoutsSpec(_Spec):
    """``server.timeouts`` in seconds."""

    connect: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    first_byte: Annotated[float, msgspec.Meta(gt=0)] = 120.0
    idle: Annotated[float, msgspec.Meta(gt=0)] = 300.0


class ServerSpec(_Spec):
    """``server:`` section."""

    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8964
    max_body_mb: Annotated[float, msgspec.Meta(gt=0)] = 32
    timeouts: TimeoutsSpec = msgspec.field(default_factory=TimeoutsSpec)
    #: browser origins allowed to call the gateway (CORS); empty: none (API clients send no Origin)
    cors_origins: list[str] = msgspec.field(default_factory=list)
    #: extra Host names accepted while no client key is required (besides localhost and loopback IPs)
    allowed_hosts: list[str] = msgspec.field(default_factory=list)


class ProviderSpec(_Spec):
    """One entry of ``providers:``. ``api_key`` left out (UNSET) differs from ``api_key: null``."""

    type: ProviderType
    base_url: str | None = None
    api_key: str | None | msgspec.UnsetType = msgspec.UNSET
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    verify_tls: bool = True
    models: list[str] = msgspec.field(default_factory=list)
    reasoning_models: list[str] = msgspec.field(default_factory=list)
    #: openai type only: which OpenAI API the server speaks. "responses" for servers with the
    #: Responses API (api.openai.com has both; default there), "chat" for everything else.
    api: Literal["chat", "responses", "both"] | None = None
    #: codex / copilot: the signed-in account (its label) this provider uses; default: every
    #: signed-in account of that type becomes a provider of its own.
    account: str | None = None
    #: codex / copilot: override any upstream URL (auth server, token endpoint, device flow,
    #: API base) for proxies, GitHub Enterprise, mirrors and tests.
    endpoints: dict[str, str] = msgspec.field(default_factory=dict)
    #: provider-specific settings (e.g. codex reasoning_effort)
    options: dict[str, Any] = msgspec.field(default_factory=dict)


class CapabilitiesSpec(_Spec):
    """Per-model capability overrides; ``null`` (or absent) means "use the provider's default"."""

    tools: bool | None = None
    images: bool | None = None
    thinking: bool | None = None
    streaming: bool | None = None


class ModelSpec(_Spec):
    """One entry of ``models:``."""

    name: str
    provider: str
    model: str | None = None
    capabilities: CapabilitiesSpec | None = None
    aliases: list[str] = msgspec.field(default_factory=list)


Strategy = Literal["ordered", "round_robin", "least_used"]

#: How a chain orders its entries: failover only, rotate the first entry, or least-used quota first.
STRATEGIES: tuple[str, ...] = ("ordered", "round_robin", "least_used")


class FlowEntrySpec(_Spec):
    """One entry of a flow or chain: ``provider`` names a configured provider (or a signed-in
    account ``codex:<label>``) or a provider type (every account of that type)."""

    provider: str
    model: str | None = None
    account: str | None = None


class FlowSpec(_Spec):
    """A flow written as a mapping (with a strategy) instead of a bare list of entries."""

    entries: list[FlowEntrySpec]
    strategy: Strategy | None = None


class ChainSpec(_Spec):
    """``routing.chains.<model id>``: the account chain of one official model id."""

    entries: list[FlowEntrySpec] = msgspec.field(default_factory=list)
    strategy: Strategy | None = None


class RoutingSpec(_Spec):
    """``routing:`` section. Keys left out keep the value stored by the admin API (or the default)."""

    smart_switch: bool | None = None
    strategy: Strategy | None = None
    default_model: str | None = None
    background_model: str | None = None
    background_patterns: list[str] | None = None
    session_affinity: bool | None = None
    affinity_ttl: Annotated[float, msgspec.Meta(gt=0)] | None = None
    cooldown_base: Annotated[float, msgspec.Meta(gt=0)] | None = None
    cooldown_max: Annotated[float, msgspec.Meta(gt=0)] | None = None
    first_event_wait: Annotated[float, msgspec.Meta(ge=0)] | None = None
    usage_retention_days: Annotated[float, msgspec.Meta(gt=0)] | None = None
    usage_max_rows: Annotated[int, msgspec.Meta(gt=0)] | None = None
    chains: dict[str, ChainSpec] = msgspec.field(default_factory=dict)


class NativeSpec(_Spec):
    """antiapi's own top-level sections (documentation of the whole native shape)."""

    server: ServerSpec = msgspec.field(default_factory=ServerSpec)
    providers: dict[str, ProviderSpec] = msgspec.field(default_factory=dict)
    models: list[ModelSpec] = msgspec.field(default_factory=list)
    flows: dict[str, list[FlowEntrySpec] | FlowSpec] = msgspec.field(default_factory=dict)
    routing: RoutingSpec = msgspec.field(default_factory=RoutingSpec)


# --------------------------------------------------------------------------------------------
# File schema (LiteLLM's model_list)
# --------------------------------------------------------------------------------------------


class DeploymentSpec(_Spec):
    """One ``model_list`` entry. ``litellm_params`` and ``model_info`` are open in LiteLLM, so they
    are kept as mappings here and checked key by key by the loader."""

    model_name: str
    litellm_params: dict[str, Any]
    model_info: dict[str, Any] | None = None


class LiteLLMParamsSpec(msgspec.Struct, frozen=True, kw_only=True):
    """The ``litellm_params`` keys antiapi uses, typed. Not strict: the loader checks the rest."""

    model: str
    api_base: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    extra_headers: dict[str, str] | None = None
    headers: dict[str, str] | None = None
    organization: str | None = None
    ssl_verify: bool | str | None = None
    custom_llm_provider: str | None = None


# --------------------------------------------------------------------------------------------
# Tables: top-level sections and what antiapi makes of LiteLLM's vocabulary
# --------------------------------------------------------------------------------------------

NATIVE_SECTIONS = ("server", "providers", "models")

#: Routing sections (flows and routing settings); imported into the state store when they change.
ROUTING_SECTIONS = ("flows", "routing")

#: LiteLLM top-level sections antiapi accepts and ignores, with what to do instead.
LITELLM_IGNORED_SECTIONS: dict[str, str] = {
    "litellm_settings": "callbacks, caching, drop_params and fallbacks are LiteLLM features",
    "router_settings": "antiapi tries a model's deployments in file order; use models[].aliases for aliases",
    "general_settings": "master keys, databases and budgets are LiteLLM proxy features",
    "environment_variables": "antiapi does not set variables from the file; export them in your shell",
    "credential_list": "put the key on each entry as api_key: os.environ/NAME instead",
    "guardrails": "guardrails are a LiteLLM feature",
    "callback_settings": "callbacks are a LiteLLM feature",
    "include": "antiapi reads a single file; paste the included model_list here",
    "mcp_servers": "MCP servers are a LiteLLM feature",
    "mcp_tools": "MCP tools are a LiteLLM feature",
    "search_tools": "search tools are a LiteLLM feature",
    "vector_store_registry": "vector stores are a LiteLLM feature",
    "files_settings": "the files API is a LiteLLM feature",
    "finetune_settings": "fine-tuning is a LiteLLM feature",
    "assistant_settings": "the assistants API is a LiteLLM feature",
    "prompts": "prompt management is a LiteLLM feature",
}


@dataclass(frozen=True)
class LiteLLMPrefix:
    """How antiapi serves one LiteLLM model prefix."""

    type: str  # antiapi provider type
    base_url: str | None  # None: api_base is required
    family: str  # base name for generated providers
    key_env: tuple[str, ...] = ()  # where LiteLLM looks for a key when api_key is left out
    append_v1: bool = False


#: LiteLLM model prefixes antiapi serves: prefix -> upstream type, default api_base, env fallback.
LITELLM_PREFIXES: dict[str, LiteLLMPrefix] = {
    "openai": LiteLLMPrefix("openai", DEFAULT_BASE_URLS["openai"], "openai", ("OPENAI_API_KEY",)),
    "anthropic": LiteLLMPrefix("anthropic", DEFAULT_BASE_URLS["anthropic"], "anthropic", ("ANTHROPIC_API_KEY",)),
    "gemini": LiteLLMPrefix("gemini", DEFAULT_BASE_URLS["gemini"], "gemini", ("GEMINI_API_KEY", "GOOGLE_API_KEY")),
    "ollama": LiteLLMPrefix("openai", "http://localhost:11434", "ollama", append_v1=True),
    "ollama_chat": LiteLLMPrefix("openai", "http://localhost:11434", "ollama", append_v1=True),
    "hosted_vllm": LiteLLMPrefix("openai", None, "vllm", ("HOSTED_VLLM_API_KEY",)),
    "openrouter": LiteLLMPrefix("openai", "https://openrouter.ai/api/v1", "openrouter", ("OPENROUTER_API_KEY",)),
    "groq": LiteLLMPrefix("openai", "https://api.groq.com/openai/v1", "groq", ("GROQ_API_KEY",)),
    "deepseek": LiteLLMPrefix("openai", "https://api.deepseek.com/v1", "deepseek", ("DEEPSEEK_API_KEY",)),
    "together_ai": LiteLLMPrefix(
        "openai", "https://api.together.xyz/v1", "together", ("TOGETHERAI_API_KEY", "TOGETHER_API_KEY")
    ),
    "mistral": LiteLLMPrefix("openai", "https://api.mistral.ai/v1", "mistral", ("MISTRAL_API_KEY",)),
    "fireworks_ai": LiteLLMPrefix(
        "openai", "https://api.fireworks.ai/inference/v1", "fireworks", ("FIREWORKS_AI_API_KEY", "FIREWORKS_API_KEY")
    ),
    "xai": LiteLLMPrefix("openai", "https://api.x.ai/v1", "xai", ("XAI_API_KEY",)),
}

#: LiteLLM providers that exist but antiapi cannot talk to (a clearer error than "unknown prefix").
LITELLM_UNSUPPORTED = frozenset(
    {
        "azure", "azure_ai", "azure_text", "bedrock", "bedrock_converse", "sagemaker", "sagemaker_chat",
        "vertex_ai", "vertex_ai_beta", "cohere", "cohere_chat", "huggingface", "replicate", "watsonx",
        "databricks", "cloudflare", "perplexity", "anyscale", "deepinfra", "ai21", "nlp_cloud",
        "aleph_alpha", "petals", "palm", "text-completion-openai", "text-completion-codestral",
        "codestral", "vllm", "lm_studio", "litellm_proxy", "github", "github_copilot", "cerebras",
        "sambanova", "nvidia_nim", "volcengine", "predibase", "triton", "clarifai", "friendliai",
        "baseten", "voyage", "xinference", "custom_openai", "openai_like", "llamafile", "dashscope",
        "moonshot", "nebius", "novita", "featherless_ai", "nscale", "hyperbolic", "lambda_ai", "oci",
        "snowflake", "galadriel", "topaz", "assemblyai", "elevenlabs", "jina_ai", "infinity", "empower",
        "gradient_ai", "meta_llama", "datarobot", "v0", "morph", "recraft", "heroku",
    }
)

# litellm_params keys, in three groups. Anything else is a typo (close to a known key: error) or a
# provider-specific extra LiteLLM would forward (warning).
LITELLM_PARAMS_USED = frozenset(
    {"model", "api_base", "base_url", "api_key", "extra_headers", "headers", "organization", "ssl_verify",
     "custom_llm_provider"}
)
#: Keys that change LiteLLM's behaviour and that antiapi does not apply: warn so the user knows.
LITELLM_PARAMS_WARN = frozenset(
    {
        # limits, routing and retries
        "rpm", "tpm", "timeout", "stream_timeout", "max_retries", "num_retries", "weight", "order",
        "max_parallel_requests", "fallbacks", "litellm_credential_name", "api_version",
        # default request parameters LiteLLM merges into every call
        "temperature", "max_tokens", "max_completion_tokens", "top_p", "top_k", "stop", "seed", "n",
        "presence_penalty", "frequency_penalty", "logit_bias", "response_format", "tools", "tool_choice",
        "parallel_tool_calls", "reasoning_effort", "thinking", "extra_body", "user", "stream",
        "service_tier", "safety_settings", "verbosity", "web_search_options", "modalities", "audio",
        "logprobs", "top_logprobs", "stream_options", "prediction",
        # LiteLLM request rewriting
        "drop_params", "additional_drop_params", "allowed_openai_params", "merge_reasoning_content_in_choices",
        "cache_control_injection_points", "mock_response", "use_litellm_proxy", "use_in_pass_through",
    }
)
#: Bookkeeping or cloud-specific keys that make no difference to antiapi: accepted silently.
LITELLM_PARAMS_SILENT = frozenset(
    {
        "input_cost_per_token", "output_cost_per_token", "input_cost_per_second", "output_cost_per_second",
        "input_cost_per_pixel", "output_cost_per_pixel", "cache_creation_input_token_cost",
        "cache_read_input_token_cost", "tags", "metadata", "region_name", "litellm_trace_id",
        "budget_duration", "max_budget", "configurable_clientside_auth_params", "mode",
        "health_check_model", "model_info", "litellm_metadata",
    }
)
LITELLM_PARAMS_KNOWN = LITELLM_PARAMS_USED | LITELLM_PARAMS_WARN | LITELLM_PARAMS_SILENT

#: model_info flags antiapi reads as capability overrides.
MODEL_INFO_CAPABILITIES = {
    "supports_function_calling": "tools",
    "supports_vision": "images",
    "supports_reasoning": "thinking",
    "supports_native_streaming": "streaming",
}


# --------------------------------------------------------------------------------------------
# Resolved config (what the server consumes)
# --------------------------------------------------------------------------------------------


def mask_secret(secret: str | None) -> str | None:
    """Show a secret without revealing it: ``"sk-proj-…wxyz"`` becomes ``"sk-…wxyz"``.

    Keys shorter than 12 characters are fully masked, so at most 7 characters of a long key show.
    """
    if secret is None:
        return None
    if len(secret) < 12:
        return "…"
    return f"{secret[:3]}…{secret[-4:]}"


@dataclass(frozen=True)
class ServerSettings:
    """How antiapi listens and how long it waits on upstreams (seconds)."""

    host: str = "127.0.0.1"
    port: int = 8964
    max_body_bytes: int = 32 * _MIB
    connect_timeout: float = 10.0
    first_byte_timeout: float = 120.0
    idle_timeout: float = 300.0
    cors_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Capabilities:
    """What a model can do. ``None`` means "whatever the provider says by default"."""

    tools: bool | None = None
    images: bool | None = None
    thinking: bool | None = None
    streaming: bool | None = None


@dataclass(frozen=True, repr=False)
class ProviderConfig:
    """One upstream account/endpoint, with its secret resolved (``repr`` masks it)."""

    name: str
    type: str
    base_url: str
    api_key: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    verify_tls: bool = True
    models: tuple[str, ...] = ()
    reasoning_models: tuple[str, ...] = ()
    api: str | None = None
    account: str | None = None
    endpoints: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        # Header values can carry credentials too (Authorization, x-api-key): mask them all.
        headers = {k: mask_secret(v) for k, v in self.headers.items()}
        return (
            f"ProviderConfig(name={self.name!r}, type={self.type!r}, base_url={self.base_url!r}, "
            f"api_key={mask_secret(self.api_key)!r}, headers={headers!r}, verify_tls={self.verify_tls!r}, "
            f"models={self.models!r}, reasoning_models={self.reasoning_models!r})"
        )


@dataclass(frozen=True)
class ModelRoute:
    """One deployment of a client-facing model: which provider serves it under which upstream id."""

    name: str
    provider: str
    upstream_model: str
    capabilities: Capabilities = field(default_factory=Capabilities)


@dataclass(frozen=True)
class FlowEntry:
    """One resolved flow/chain entry (see :class:`FlowEntrySpec`)."""

    provider: str
    model: str | None = None
    account: str | None = None


@dataclass(frozen=True)
class Flow:
    """An ordered list of entries a client reaches as ``route:<name>`` or ``<name>``."""

    name: str
    entries: tuple[FlowEntry, ...]
    strategy: str | None = None


@dataclass(frozen=True)
class RoutingConfig:
    """The file's ``routing:`` section. ``settings`` holds only the keys the file sets."""

    settings: dict[str, Any] = field(default_factory=dict)
    chains: dict[str, Flow] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    """The whole resolved configuration.

    ``models`` maps every client-facing name *and alias* to its deployments, in file order (the
    router tries them in that order). ``warnings`` lists what was accepted but ignored.
    """

    path: Path
    data_dir: Path
    created: bool = False
    server: ServerSettings = field(default_factory=ServerSettings)
    providers: dict[str, ProviderConfig] = field(default_factory=dict)
    models: dict[str, list[ModelRoute]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: every ``ANTI_API_*`` environment variable (provider switches such as
    #: ANTI_API_CODEX_REASONING_EFFORT), read here so no other module touches the environment
    env_settings: dict[str, str] = field(default_factory=dict)
    #: ``flows:`` (name -> Flow, file order) and ``routing:`` (settings, chains)
    flows: dict[str, Flow] = field(default_factory=dict)
    routing: RoutingConfig = field(default_factory=RoutingConfig)

    def model_names(self) -> list[str]:
        """Every routable model name and alias, sorted."""
        return sorted(self.models)
