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


class Provider(abc.ABC):
    """One configured upstream (an API key, an account)."""

    #: config name, e.g. "openai", "ollama", "claude"
    name: str
    #: provider family: "openai", "anthropic", "gemini", "codex", "copilot"
    type: str
    #: wire dialects this upstream speaks, preferred first
    dialects: tuple[str, ...]
    capabilities: Capabilities

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

    async def aclose(self) -> None:
        return None
