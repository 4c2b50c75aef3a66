"""Static model map: client model name -> ordered deployments (provider + upstream model).

Full flow/account routing lives in its own issue; this resolves names from the config file.
"""

from __future__ import annotations

from dataclasses import dataclass

from antiapi.errors import ModelNotFound
from antiapi.providers.base import Capabilities, Provider


@dataclass(frozen=True, slots=True)
class Deployment:
    name: str  # client-facing model name
    provider: Provider
    upstream_model: str
    capabilities: Capabilities


class ModelTable:
    def __init__(self, config, providers: dict[str, Provider]) -> None:
        self._routes: dict[str, list[Deployment]] = {}
        for name, routes in config.models.items():
            deps = []
            for r in routes:
                p = providers[r.provider]
                caps = r.capabilities
                overrides = {} if caps is None else {
                    k: getattr(caps, k, None) for k in ("streaming", "tools", "images", "thinking")
                }
                deps.append(Deployment(name, p, r.upstream_model, p.capabilities.merged(**overrides)))
            self._routes[name] = deps
        self._explicit = frozenset(self._routes)

    def add_provider_models(self, provider: Provider, names: list[str]) -> int:
        """Route ``names`` (as listed by a signed-in provider) to it, after any existing
        deployments; names the config routes explicitly are left alone. Returns how many were added."""
        added = 0
        for name in names:
            deps = self._routes.setdefault(name, [])
            if name in self._explicit or any(d.provider is provider for d in deps):
                continue
            deps.append(Deployment(name, provider, name, provider.capabilities))
            added += 1
        return added

    def names(self) -> list[str]:
        return sorted(self._routes)

    def resolve(self, model: str) -> list[Deployment]:
        deps = self._routes.get(model)
        if deps:
            return deps
        # tolerate a provider prefix ("openai/gpt-4o") and dated Claude names
        if "/" in model:
            tail = model.split("/", 1)[1]
            if tail in self._routes:
                return self._routes[tail]
        raise ModelNotFound(model, self.names())
