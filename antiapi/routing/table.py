"""Model name -> ordered candidates (account + upstream model): flows, chains, Smart Switch.

Pure (stdlib, msgspec, antiapi.errors). A :class:`RouteTable` is an immutable snapshot built from
the accounts, the config file's static model routes, the models signed-in accounts list, the
flows/chains and the settings; the router swaps in a new one whenever any of those changes, so a
request resolves a name with dictionary lookups only.

Resolution order for a requested name (after the default/background mapping):

1. ``route:<flow>``, or a bare flow name: the flow's entries, in order;
2. an official model id with an explicit chain (``routing.chains``): the chain's entries;
3. a model id the config file routes (``models:``/``model_list``/provider ``models:``): its
   deployments in file order;
4. a model id signed-in accounts list: with Smart Switch on every such account in creation
   order, otherwise the first one;
5. ``<prefix>/<model>``: the same lookups (2-4) for ``<model>``.

An entry's ``provider`` names an account (a provider name) or a provider type (every account of
that type, in creation order).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from antiapi.errors import ErrorKind, GatewayError, InvalidRequest, ModelNotFound
from antiapi.routing.settings import DEFAULT_SETTINGS, Chain, Entry, RoutingSettings

__all__ = ["FLOW_PREFIX", "Account", "Candidate", "Route", "RouteTable", "UnknownModel"]

FLOW_PREFIX = "route:"


@dataclass(frozen=True, slots=True)
class Account:
    """One account: a provider object the gateway can send to (its name is the key)."""

    name: str
    type: str
    label: str | None = None
    order: int = 0
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class Candidate:
    """One place a request may be served: an account and the upstream model id to ask for."""

    account: str
    model: str
    #: opaque per-deployment capability overrides from the config file (None: account defaults)
    caps: Any = None


@dataclass(frozen=True, slots=True)
class Route:
    """What a name resolved to."""

    key: str  # "flow:<name>" or "model:<id>": affinity, round-robin and log key
    name: str
    kind: str  # "flow" | "model"
    strategy: str
    candidates: tuple[Candidate, ...]


class UnknownModel(ModelNotFound):
    """No flow or model of that name (400, code ``model_not_found``), listing what exists."""

    kind = ErrorKind.INVALID_REQUEST

    def __init__(self, model: str, models: list[str], flows: list[str]) -> None:
        listing = ", ".join(models[:40]) if models else "none are configured"
        more = f" (and {len(models) - 40} more)" if len(models) > 40 else ""
        flow_text = (
            f" Flows: {', '.join(flows[:40])} (ask for route:<flow> or the flow's name)." if flows else ""
        )
        GatewayError.__init__(
            self,
            f"The model '{model}' is not served here.{flow_text} Models available: {listing}{more}. "
            "Add it to the config file (models, or a flow under flows) or ask for one of these.",
            status=400,
            code="model_not_found",
            param="model",
        )
        self.model = model
        self.models = models
        self.flows = flows


def _compile(patterns: Iterable[str]) -> re.Pattern[str] | None:
    parts = [fnmatch.translate(p.lower()) for p in patterns if p]
    return re.compile("|".join(f"(?:{p})" for p in parts)) if parts else None


class RouteTable:
    """An immutable routing snapshot (see module docstring)."""

    def __init__(
        self,
        *,
        accounts: Iterable[Account] = (),
        static: Mapping[str, Iterable[Candidate]] | None = None,
        dynamic: Mapping[str, Iterable[str]] | None = None,
        flows: Mapping[str, Chain] | None = None,
        chains: Mapping[str, Chain] | None = None,
        settings: RoutingSettings = DEFAULT_SETTINGS,
    ) -> None:
        self.accounts: dict[str, Account] = {a.name: a for a in sorted(accounts, key=lambda a: a.order)}
        self.static: dict[str, tuple[Candidate, ...]] = {k: tuple(v) for k, v in (static or {}).items()}
        self.flows: dict[str, Chain] = dict(flows or {})
        self.chains: dict[str, Chain] = dict(chains or {})
        self.settings = settings
        self._by_type: dict[str, list[Account]] = {}
        for a in self.accounts.values():
            self._by_type.setdefault(a.type, []).append(a)
        # model id -> accounts listing it (creation order); only accounts that exist
        self.dynamic: dict[str, tuple[str, ...]] = {}
        for model, names in (dynamic or {}).items():
            present = sorted((n for n in dict.fromkeys(names) if n in self.accounts), key=lambda n: self.accounts[n].order)
            if present:
                self.dynamic[model] = tuple(present)
        self._caps: dict[tuple[str, str], Any] = {}
        for cands in self.static.values():
            for c in cands:
                self._caps.setdefault((c.account, c.model), c.caps)
        self._background = _compile(settings.background_patterns) if settings.background_model else None
        self._cache: dict[str, Route] = {}

    # ------------------------------------------------------------------ names

    def model_names(self) -> list[str]:
        return sorted(set(self.static) | set(self.dynamic))

    def flow_names(self) -> list[str]:
        return list(self.flows)

    def names(self) -> list[str]:
        """Everything a client may ask for (models, then flows not shadowing a model)."""
        models = self.model_names()
        seen = set(models)
        return models + [f for f in self.flows if f not in seen]

    # ------------------------------------------------------------------ resolution

    def target(self, requested: str | None) -> str:
        """The name to route: the default model when none is named, the background model for
        background-class names (e.g. ``*haiku*``), else the requested name."""
        s = self.settings
        if not requested:
            if s.default_model:
                return s.default_model
            raise InvalidRequest(
                'model: required. Name the model to use, e.g. "model": "gpt-4.1" (or set a default model).',
                param="model",
            )
        if self._background is not None and requested != s.background_model and self._background.match(requested.lower()):
            return s.background_model  # type: ignore[return-value]
        return requested

    def resolve(self, name: str) -> Route:
        """The route for ``name``. Raises :class:`UnknownModel`."""
        r = self._cache.get(name)
        if r is None:
            r = self._resolve(name)
            if len(self._cache) >= 4096:  # "<any prefix>/<model>" names are unbounded
                self._cache.clear()
            self._cache[name] = r
        return r

    def _resolve(self, name: str) -> Route:
        if name.startswith(FLOW_PREFIX):
            flow = name[len(FLOW_PREFIX):]
            if flow in self.flows:
                return self._flow_route(flow)
            raise UnknownModel(name, self.model_names(), self.flow_names())
        if name in self.flows:
            return self._flow_route(name)
        r = self._model_route(name)
        if r is None and "/" in name:
            r = self._model_route(name.split("/", 1)[1])
        if r is None:
            raise UnknownModel(name, self.model_names(), self.flow_names())
        return r

    def _flow_route(self, flow: str) -> Route:
        chain = self.flows[flow]
        cands = self._expand(chain.entries, None)
        return Route(f"flow:{flow}", flow, "flow", chain.strategy or self.settings.strategy, cands)

    def _model_route(self, model: str) -> Route | None:
        chain = self.chains.get(model)
        strategy = (chain.strategy if chain is not None else None) or self.settings.strategy
        if chain is not None and chain.entries:
            return Route(f"model:{model}", model, "model", strategy, self._expand(chain.entries, model))
        cands = self.static.get(model)
        if cands:
            return Route(f"model:{model}", model, "model", strategy, cands)
        names = self.dynamic.get(model)
        if names:
            if not self.settings.smart_switch:
                names = names[:1]
            return Route(f"model:{model}", model, "model", strategy, tuple(Candidate(n, model) for n in names))
        return None

    def accounts_for(self, provider: str, account: str | None = None) -> list[Account]:
        """Accounts an entry's ``provider`` (name or type) and ``account`` (label) select."""
        a = self.accounts.get(provider)
        if a is not None:
            found = [a]
        elif provider in self._by_type:
            found = list(self._by_type[provider])
        else:  # a template entry of the config: "<entry>:<label>" accounts
            found = [x for x in self.accounts.values() if x.name.startswith(provider + ":")]
        if account:
            found = [x for x in found if x.label == account or x.name == account]
        return found

    def _expand(self, entries: Iterable[Entry], default_model: str | None) -> tuple[Candidate, ...]:
        out: dict[tuple[str, str], Candidate] = {}
        for e in entries:
            model = e.model or default_model
            if not model:
                continue
            for a in self.accounts_for(e.provider, e.account):
                key = (a.name, model)
                if key not in out:
                    out[key] = Candidate(a.name, model, self._caps.get(key))
        return tuple(out.values())
