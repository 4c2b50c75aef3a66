"""The provider plug-in interface (may import: translate.ir, errors, stdlib).

A provider owns authentication, URLs and headers for one upstream account or key. It never
translates between dialects and never sees Litestar types: the pipeline hands it a body already
rendered in one of the dialects it declares, and gets back status, headers and a byte stream.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

from antiapi.translate import ir


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a provider (or one model behind it) can serve."""

    streaming: bool = True
    tools: bool = True
    images: bool = True
    thinking: bool = True
    count_tokens: bool = False

    def merged(self, **overrides: bool | None) -> "Capabilities":
        vals = {k: getattr(self, k) for k in ("streaming", "tools", "images", "thinking", "count_tokens")}
        for k, v in overrides.items():
            if v is not None and k in vals:
                vals[k] = v
        return Capabilities(**vals)


@dataclass(slots=True)
class UpstreamCall:
    """One request to send upstream, already rendered in ``dialect``."""

    dialect: str
    model: str
    body: bytes
    stream: bool
    #: "generate" (messages / chat / responses) or "count_tokens"
    operation: str = "generate"
    #: client headers the provider may forward (e.g. anthropic-beta), lower-case names
    forward_headers: Mapping[str, str] = field(default_factory=dict)
    request_id: str = ""
    #: the conversation key (Claude Code session id, prompt_cache_key, ...) when the client sent
    #: one; providers with prompt caches keyed by session (Codex) pass it upstream
    session: str | None = None


class UpstreamResponse(abc.ABC):
    """A successful (2xx) upstream answer. Error statuses are raised as ProviderError."""

    status: int
    headers: Mapping[str, str]

    @abc.abstractmethod
    def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body as it arrives. Raises ProviderError subclasses on timeout / disconnect."""

    @abc.abstractmethod
    async def aread(self) -> bytes: ...

    @abc.abstractmethod
    async def aclose(self) -> None: ...


@dataclass(slots=True)
class QuotaWindow:
    """One usage window of an account (e.g. Codex 5-hour / weekly, Copilot premium requests)."""

    name: str
    used_percent: float | None = None
    remaining: float | None = None
    entitlement: float | None = None
    window_minutes: int | None = None
    resets_at: float | None = None  # epoch seconds


@dataclass(slots=True)
class QuotaState:
    """The latest quota snapshot of one account, as the router and the admin API read it."""

    windows: list[QuotaWindow] = field(default_factory=list)
    #: where it came from: "headers", "usage-endpoint", "error", ...
    source: str = ""
    updated_at: float | None = None  # epoch seconds
    #: the account is known to be out of quota until this time (epoch seconds)
    limited_until: float | None = None
    plan: str | None = None
    #: "ok" | "limited" | "needs_sign_in"
    status: str = "ok"
    detail: str | None = None


class Provider(abc.ABC):
    """One configured upstream (an API key, an account)."""

    #: config name, e.g. "openai", "ollama", "claude"
    name: str
    #: provider family: "openai", "anthropic", "gemini", "codex", "copilot"
    type: str
    #: wire dialects this upstream speaks, preferred first
    dialects: tuple[str, ...]
    capabilities: Capabilities
    #: Same dialect in and out may forward client bytes unchanged. Providers whose upstream needs
    #: its own request shape (the Codex backend) set this False so every request is rendered.
    passthrough: bool = True
    #: The signed-in account this provider uses (codex / copilot), for logs and the admin API.
    account: str | None = None
    #: The models this provider serves come from ``list_models()`` at start (signed-in accounts),
    #: not only from the config file.
    dynamic_models: bool = False

    @abc.abstractmethod
    async def send(self, call: UpstreamCall) -> UpstreamResponse:
        """Send one request. Raises ``errors.ProviderError`` for any failure before a 2xx."""

    def target(self, model: str) -> ir.Target:
        """What renderers need to know about ``model`` on this upstream."""
        return ir.Target(model=model, provider=self.type)

    async def list_models(self) -> list[str]:
        return []

    async def count_tokens(self, req: ir.Request, model: str) -> int | None:
        """Exact input tokens when the upstream can count; None otherwise."""
        return None

    def quota(self) -> QuotaState | None:
        """Latest known quota state (None when the upstream reports none)."""
        return None

    async def start(self) -> None:
        """Called once when the server starts (background refreshers, model sync)."""
        return None

    async def aclose(self) -> None:
        return None
