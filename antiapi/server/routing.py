"""The routing service: the pure router (antiapi.routing) wired to providers and the state store.

:class:`RoutingService` builds :class:`~antiapi.routing.RouteTable` snapshots from the config
file (static model routes, flows, chains, settings), the models signed-in accounts list, the
accounts (creation order, enabled) and what the admin API changed (kept in the store). It hands
the pipeline plans whose steps carry :class:`Deployment` objects (provider + upstream model +
capabilities), and persists changes and quota snapshots in the background: the request path
never waits on the database.

``ModelTable`` is the historical name of this class and stays an alias.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from antiapi.providers.base import Capabilities, Provider
from antiapi.routing import (
    Account,
    Candidate,
    Chain,
    Entry,
    Plan,
    QuotaInfo,
    Router,
    RouteTable,
    RoutingSettings,
    Step,
    settings_from,
)
from antiapi.routing.settings import DEFAULT_SETTINGS

log = logging.getLogger("antiapi.routing")

__all__ = ["Deployment", "ModelTable", "RoutingService"]

_enc = msgspec.json.Encoder(order="deterministic")


@dataclass(frozen=True, slots=True)
class Deployment:
    name: str  # client-facing model (or flow) name
    provider: Provider
    upstream_model: str
    capabilities: Capabilities


def _entry_dicts(entries: Iterable[Any]) -> list[dict[str, Any]]:
    out = []
    for e in entries:
        if isinstance(e, Entry):
            out.append(msgspec.structs.asdict(e))
        elif isinstance(e, Mapping):
            out.append({k: e.get(k) for k in ("provider", "model", "account")})
        else:  # config FlowEntry dataclass
            out.append({"provider": e.provider, "model": e.model, "account": e.account})
    return [{k: v for k, v in d.items() if v is not None} for d in out]


def _chain(entries: Iterable[Any], strategy: str | None) -> Chain:
    return msgspec.convert({"entries": _entry_dicts(entries), "strategy": strategy}, Chain)


def _digest(value: Any) -> str:
    return hashlib.sha256(_enc.encode(value)).hexdigest()[:32]


class RoutingService:
    """Routing state of one gateway (see module docstring)."""

    def __init__(
        self,
        config: Any,
        providers: Mapping[str, Provider],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.providers: dict[str, Provider] = dict(providers)
        self.clock = clock
        self.store: Any = None
        self._static: dict[str, list[Candidate]] = {}
        for name, routes in getattr(config, "models", {}).items():
            cands = []
            for r in routes:
                p = self.providers.get(r.provider)
                if p is None:
                    log.warning("model %s: provider %s is not available; route skipped", name, r.provider)
                    continue
                caps = r.capabilities
                overrides = {} if caps is None else {
                    k: getattr(caps, k, None) for k in ("streaming", "tools", "images", "thinking")
                }
                cands.append(Candidate(r.provider, r.upstream_model, p.capabilities.merged(**overrides)))
            if cands:
                self._static[name] = cands
        self._explicit = frozenset(getattr(config, "models", {}))
        self._dynamic: dict[str, list[str]] = {}
        self._accounts: dict[str, Account] = {
            name: Account(name, p.type, p.account, i, True) for i, (name, p) in enumerate(self.providers.items(), 1)
        }
        self._flows: dict[str, Chain] = {
            name: _chain(f.entries, f.strategy) for name, f in getattr(config, "flows", {}).items()
        }
        routing = getattr(config, "routing", None)
        self._chains: dict[str, Chain] = {
            m: _chain(c.entries, c.strategy) for m, c in (routing.chains if routing is not None else {}).items()
        }
        self._settings: RoutingSettings = settings_from(dict(routing.settings) if routing is not None else {})
        self._deps: dict[tuple[str, str, str], Deployment] = {}
        self.router = Router(self._build(), clock=clock, quota=self._quota)
        self._snap_version = -1
        self._snapshots: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ snapshots

    def _build(self) -> RouteTable:
        return RouteTable(
            accounts=self._accounts.values(),
            static=self._static,
            dynamic=self._dynamic,
            flows=self._flows,
            chains=self._chains,
            settings=self._settings,
        )

    def _rebuild(self) -> None:
        self.router.set_table(self._build())

    @property
    def table(self) -> RouteTable:
        return self.router.table

    @property
    def settings(self) -> RoutingSettings:
        return self._settings

    def _quota(self, account: str) -> QuotaInfo | None:
        p = self.providers.get(account)
        if p is None:
            return None
        try:
            q = p.quota()
        except Exception:  # a provider's quota bug must not break routing
            log.exception("provider %s: quota() failed", account)
            return None
        if q is None:
            return None
        used = [w.used_percent for w in q.windows if w.used_percent is not None]
        return QuotaInfo(max(used) if used else None, q.limited_until, q.status, q.detail)

    # ------------------------------------------------------------------ store

    async def attach_store(self, store: Any) -> None:
        """Load accounts, flows, chains and settings from ``store`` (importing the config file's
        routing sections when they changed since the last import), then persist changes there."""
        state = await asyncio.to_thread(store.load_state)
        self.store = store
        self._import_config(state)
        # accounts: keep their creation order and enabled flag; new ones go last
        known = {a["name"]: a for a in state.accounts}
        seq = max((int(a["seq"]) for a in state.accounts), default=0)
        accounts: dict[str, Account] = {}
        for name, p in self.providers.items():
            row = known.get(name)
            if row is None:
                seq += 1
                store.add_account(name, p.type, p.account, seq)
                accounts[name] = Account(name, p.type, p.account, seq, True)
            else:
                if row["type"] != p.type or row["label"] != p.account:
                    store.add_account(name, p.type, p.account, int(row["seq"]))
                accounts[name] = Account(name, p.type, p.account, int(row["seq"]), bool(row["enabled"]))
        self._accounts = dict(sorted(accounts.items(), key=lambda kv: kv[1].order))
        self._flows = {n: _chain(f["entries"], f["strategy"]) for n, f in state.flows.items()}
        self._chains = {m: _chain(c["entries"], c["strategy"]) for m, c in state.chains.items()}
        self._settings = settings_from(state.settings)
        self._rebuild()

    def _import_config(self, state: Any) -> None:
        """Write the config file's flows/chains/routing settings into the store when the file's
        sections changed since they were last imported (so admin edits survive restarts, and
        editing the file still takes effect)."""
        store = self.store
        cfg_flows = getattr(self.config, "flows", {})
        routing = getattr(self.config, "routing", None)
        cfg_chains = routing.chains if routing is not None else {}
        cfg_settings = dict(routing.settings) if routing is not None else {}

        flows_doc = {n: {"entries": _entry_dicts(f.entries), "strategy": f.strategy} for n, f in cfg_flows.items()}
        if state.meta.get("config.flows") != (d := _digest(flows_doc)):
            for name, f in list(state.flows.items()):
                if f["source"] == "config" and name not in flows_doc:
                    store.delete_flow(name)
                    del state.flows[name]
            for i, (name, f) in enumerate(flows_doc.items()):
                store.put_flow(name, f["entries"], f["strategy"], source="config", position=i)
                state.flows[name] = {**f, "source": "config"}
            store.put_meta("config.flows", d)

        chains_doc = {m: {"entries": _entry_dicts(c.entries), "strategy": c.strategy} for m, c in cfg_chains.items()}
        if state.meta.get("config.chains") != (d := _digest(chains_doc)):
            for model, c in list(state.chains.items()):
                if c["source"] == "config" and model not in chains_doc:
                    store.delete_chain(model)
                    del state.chains[model]
            for model, c in chains_doc.items():
                store.put_chain(model, c["entries"], c["strategy"], source="config")
                state.chains[model] = {**c, "source": "config"}
            store.put_meta("config.chains", d)

        if state.meta.get("config.settings") != (d := _digest(cfg_settings)):
            previous = [k for k in state.meta.get("config.settings.keys", "").split(",") if k]
            for k in previous:
                if k not in cfg_settings:
                    store.delete_setting(k)
                    state.settings.pop(k, None)
            for k, v in cfg_settings.items():
                store.put_setting(k, v)
                state.settings[k] = v
            store.put_meta("config.settings", d)
            store.put_meta("config.settings.keys", ",".join(cfg_settings))

    # ------------------------------------------------------------------ edits (admin API)

    def put_flow(self, name: str, entries: Iterable[Any], strategy: str | None = None) -> None:
        """Create or replace a flow."""
        chain = _chain(entries, strategy)
        if not chain.entries:
            raise ValueError("a flow needs at least one entry")
        if any(not e.model for e in chain.entries):
            raise ValueError("every flow entry needs the upstream model id (model)")
        self._flows = {**self._flows, name: chain}
        self._rebuild()
        if self.store is not None:
            self.store.put_flow(name, _entry_dicts(chain.entries), chain.strategy, position=len(self._flows))

    def delete_flow(self, name: str) -> bool:
        if name not in self._flows:
            return False
        self._flows = {k: v for k, v in self._flows.items() if k != name}
        self._rebuild()
        if self.store is not None:
            self.store.delete_flow(name)
        return True

    def put_chain(self, model: str, entries: Iterable[Any] = (), strategy: str | None = None) -> None:
        """Set an official model id's account chain (no entries: Smart Switch with ``strategy``)."""
        chain = _chain(entries, strategy)
        self._chains = {**self._chains, model: chain}
        self._rebuild()
        if self.store is not None:
            self.store.put_chain(model, _entry_dicts(chain.entries), chain.strategy)

    def delete_chain(self, model: str) -> bool:
        if model not in self._chains:
            return False
        self._chains = {k: v for k, v in self._chains.items() if k != model}
        self._rebuild()
        if self.store is not None:
            self.store.delete_chain(model)
        return True

    def update_settings(self, **values: Any) -> RoutingSettings:
        """Change routing settings (validated; unknown keys raise ValueError)."""
        unknown = set(values) - set(msgspec.structs.asdict(DEFAULT_SETTINGS))
        if unknown:
            raise ValueError(f"unknown routing settings: {', '.join(sorted(unknown))}")
        try:
            new = settings_from(values, self._settings)
        except msgspec.ValidationError as e:
            raise ValueError(str(e)) from None
        self._settings = new
        self._rebuild()
        if self.store is not None:
            for k, v in values.items():
                self.store.put_setting(k, list(v) if isinstance(v, tuple) else v)
        return new

    def set_account_enabled(self, name: str, enabled: bool) -> None:
        a = self._accounts[name]
        self._accounts = {**self._accounts, name: Account(a.name, a.type, a.label, a.order, enabled)}
        self._rebuild()
        if self.store is not None:
            self.store.set_account_enabled(name, enabled)

    # ------------------------------------------------------------------ model sync

    def add_provider_models(self, provider: Provider, names: list[str]) -> int:
        """Route ``names`` (as listed by a signed-in provider) to it; names the config file routes
        explicitly are left alone. Returns how many were added."""
        added = 0
        dynamic = {k: list(v) for k, v in self._dynamic.items()}
        for name in names:
            if name in self._explicit:
                continue
            accts = dynamic.setdefault(name, [])
            if provider.name in accts:
                continue
            accts.append(provider.name)
            added += 1
        if added:
            self._dynamic = dynamic
            self._rebuild()
        return added

    # ------------------------------------------------------------------ requests

    def names(self) -> list[str]:
        return self.router.table.names()

    def plan(self, requested: str | None, session: str | None = None) -> Plan:
        return self.router.plan(requested, session)

    def deployment(self, plan: Plan, step: Step) -> Deployment:
        c = step.candidate
        key = (plan.name, c.account, c.model)
        dep = self._deps.get(key)
        if dep is None or dep.provider is not self.providers.get(c.account):
            p = self.providers[c.account]
            dep = Deployment(plan.name, p, c.model, c.caps if c.caps is not None else _model_caps(p, c.model))
            if len(self._deps) > 4096:
                self._deps.clear()
            self._deps[key] = dep
        return dep

    def resolve(self, model: str) -> list[Deployment]:
        """Deployments of ``model`` in route order, enabled accounts only (no cooldown logic)."""
        t = self.router.table
        name = t.target(model)
        route = t.resolve(name)
        out = []
        for c in route.candidates:
            a = t.accounts.get(c.account)
            if a is not None and a.enabled:
                p = self.providers[c.account]
                out.append(Deployment(name, p, c.model, c.caps if c.caps is not None else _model_caps(p, c.model)))
        return out

    # ------------------------------------------------------------------ views

    def accounts_view(self) -> list[dict[str, Any]]:
        return [
            {"name": a.name, "type": a.type, "label": a.label, "order": a.order, "enabled": a.enabled}
            for a in self.router.table.accounts.values()
        ]

    def quota_view(self) -> list[dict[str, Any]]:
        """Per account: quota state (used %, remaining, resets, source, last refresh) and cooldowns."""
        now = self.clock()
        cools: dict[str, list[Any]] = {}
        for c in self.router.cooldowns.active():
            cools.setdefault(c.account, []).append(c)
        out = []
        for a in self.router.table.accounts.values():
            p = self.providers.get(a.name)
            q = None
            if p is not None:
                try:
                    q = p.quota()
                except Exception:
                    log.exception("provider %s: quota() failed", a.name)
            quota = None
            used = None
            if q is not None:
                windows = [
                    {"name": w.name, "used_percent": w.used_percent, "remaining": w.remaining,
                     "entitlement": w.entitlement, "window_minutes": w.window_minutes, "resets_at": w.resets_at}
                    for w in q.windows
                ]
                vals = [w.used_percent for w in q.windows if w.used_percent is not None]
                used = max(vals) if vals else None
                quota = {"status": q.status, "source": q.source, "updated_at": q.updated_at,
                         "limited_until": q.limited_until, "plan": q.plan, "detail": q.detail, "windows": windows}
            cl = sorted(cools.get(a.name, []), key=lambda c: -c.until)
            qc = self.router.quota_cooling(a.name, now)
            if qc is not None:
                cl.insert(0, qc)
            cooldowns = [
                {"model": c.model, "until": c.until, "reason": c.reason, "category": c.category, "hard": c.hard,
                 "failures": c.failures}
                for c in cl
            ]
            account_cd = next((c for c in cooldowns if c["model"] is None), None)
            if not a.enabled:
                status = "disabled"
            elif account_cd is not None:
                status = "cooling_down" if account_cd["category"] != "auth" else "needs_sign_in"
            elif quota is not None:
                status = quota["status"]
            else:
                status = "ok"
            out.append({
                "account": a.name, "type": a.type, "label": a.label, "enabled": a.enabled, "order": a.order,
                "status": status, "used_percent": used, "quota": quota, "cooldowns": cooldowns,
                "cooldown": account_cd or (cooldowns[0] if cooldowns else None),
            })
        return out

    def snapshot_quota(self) -> int:
        """Persist the quota view of every account whose view changed; returns how many."""
        if self.store is None:
            return 0
        n = 0
        for view in self.quota_view():
            key = view["account"]
            if self._snapshots.get(key) != view:
                self._snapshots[key] = view
                self.store.put_quota(key, view)
                n += 1
        self._snap_version = self.router.cooldowns.version
        return n

    async def snapshot_loop(self, interval: float = 60.0, poll: float = 1.0) -> None:
        """Background: snapshot quota views every ``interval`` s, and soon after a cooldown change."""
        last = self.clock()
        while True:
            await asyncio.sleep(poll)
            now = self.clock()
            if self.router.cooldowns.version != self._snap_version or now - last >= interval:
                last = now
                try:
                    self.snapshot_quota()
                except Exception:
                    log.exception("quota snapshot failed")


ModelTable = RoutingService


def _model_caps(provider: Provider, model: str):
    """Per-model capabilities when the provider knows them (Copilot's model list), else its own."""
    fn = getattr(provider, "model_capabilities", None)
    if fn is not None:
        try:
            caps = fn(model)
        except Exception:  # a provider bug must not break routing; fall back to its defaults
            caps = None
        if caps is not None:
            return caps
    return provider.capabilities
