"""The gateway's :class:`~antiapi.server.admin.AdminBackend`: the admin API over the running gateway.

:class:`GatewayAdminBackend` reads and edits what the gateway already has:

* routing (flows, chains, Smart Switch, strategy, default/background model, accounts enabled)
  through :class:`~antiapi.server.routing.RoutingService` — edits take effect for the next request;
* the request log from :class:`~antiapi.server.usage.UsageLog` (``recent``) and, when the state
  store is open, from its ``usage`` table (history across restarts), aggregates from
  ``Store.usage_summary``;
* quotas from ``RoutingService.quota_view()`` (the same view the quota snapshots persist);
* signed-in accounts from the :class:`~antiapi.accounts.CredentialStore`, sign-ins through a
  :class:`~antiapi.server.admin.SignInManager` over the Codex / Copilot sign-in objects; a new
  account becomes a provider and is routed at once (no restart);
* API-key providers added here (``add_api_key``) through :mod:`antiapi.providers.stored`: saved
  in the data dir (0600), served at once, built again by ``build_providers`` at the next start.

Live events (``events()``): a ``request`` event per usage record (``UsageLog.listeners``), a
``quota`` event whenever an account's quota view changes (checked right after each request and
every second while someone listens), ``accounts`` when the account list or an account's status
changes, ``routing`` / ``settings`` / ``signin`` after edits.

Lifecycle (``create_app`` does this): construct, ``await start(store)`` in the lifespan once the
store is attached, ``await aclose()`` at shutdown. ``end_streams()`` ends every open event stream
(call it when the server begins to shut down, or open SSE connections keep it waiting).

May import: antiapi.server, antiapi.routing, antiapi.providers, antiapi.accounts, antiapi.wire,
stdlib, msgspec. Never textual or antiapi.tui.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as _dt
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import msgspec

from antiapi import __version__
from antiapi.server.admin import (
    AdminError,
    EventHub,
    SignInManager,
    aggregate_from_row,
    quota_from_view,
    record_from_usage,
)
from antiapi.server.admin_remote import RemoteAdminMixin
from antiapi.wire import admin as w

__all__ = ["GatewayAdminBackend", "GatewayEventHub", "UI_SETTINGS"]

log = logging.getLogger("antiapi.admin")

#: settings the gateway keeps for the dashboard only (stored in the state store's settings table
#: under ``ui.<name>``; routing ignores them)
UI_SETTINGS = ("auto_start_tunnel", "auto_open")
_ROUTING_SETTINGS = ("default_model", "background_model", "background_patterns")
_SIGNED_IN_TYPES = ("codex", "copilot")
_KEYED_TYPES = ("openai", "anthropic", "gemini")
_dec = msgspec.json.Decoder()
_enc = msgspec.json.Encoder()


class GatewayEventHub(EventHub):
    """An :class:`EventHub` whose subscriptions can all be ended (server shutdown)."""

    def end_all(self, farewell: w.AdminEvent) -> None:
        """End every subscription: each gets ``farewell`` (to wake a waiting reader), then ends.
        Call on the event loop's thread."""
        for q in list(self._queues):
            self._queues.discard(q)
            if q.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    q.get_nowait()
            q.put_nowait(farewell)


def _entry(e: Any) -> w.Entry:
    return w.Entry(provider=e.provider, model=e.model, account=e.account)


def _entry_keys(entries: Iterable[Any]) -> list[tuple[str, str | None, str | None]]:
    return [(e.provider, e.model, e.account) for e in entries]


class GatewayAdminBackend(RemoteAdminMixin):
    """The admin API's view of one running gateway (see module docstring).

    Args:
        config: the gateway's config (``antiapi.config.Config`` or anything with the same fields).
        routing: the app's :class:`RoutingService` (``app.state.routing``; kept as ``service``).
        usage: the app's :class:`UsageLog` (kept as ``usage_log``).
        started: when the gateway started (epoch seconds).
        url: where clients reach the gateway; None: learnt from the first admin request.
        clock: wall clock (epoch seconds).
        quota_interval: seconds between quota checks while someone follows the events.
    """

    def __init__(
        self,
        config: Any,
        routing: Any,
        usage: Any,
        *,
        started: float | None = None,
        url: str | None = None,
        clock: Callable[[], float] = time.time,
        quota_interval: float = 1.0,
    ) -> None:
        self.config = config
        self.service = routing
        self.usage_log = usage
        self.clock = clock
        self.started = started if started is not None else clock()
        self.url = url
        self.quota_interval = quota_interval
        self.store: Any = None
        self.hub = GatewayEventHub()
        self.signins = SignInManager(self._signin_factories(), on_done=self._signed_in, publish=self.hub.publish, clock=clock)
        self._ui: dict[str, bool] = {k: False for k in UI_SETTINGS}
        #: providers this backend added (sign-ins, API keys): closed at shutdown
        self._added: dict[str, Any] = {}
        self._apikey_lock = asyncio.Lock()
        self._last_quota: dict[str, w.AccountQuota] = {}
        self._last_accounts: list[w.AccountInfo] | None = None
        self._kick: asyncio.Event | None = None
        self._watcher: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self, store: Any = None) -> None:
        """Hook into the usage log, load the dashboard settings, start the quota watcher."""
        self.store = store
        if store is not None:
            try:
                rows = await store.aquery(
                    f"SELECT key, value FROM settings WHERE key IN ({', '.join('?' * len(UI_SETTINGS))})",
                    [f"ui.{k}" for k in UI_SETTINGS],
                )
                for r in rows:
                    self._ui[r["key"][3:]] = bool(_dec.decode(r["value"]))
            except Exception:  # an old or broken database: defaults
                log.exception("admin: reading the dashboard settings failed")
        if self._on_usage not in self.usage_log.listeners:
            self.usage_log.listeners.append(self._on_usage)
        self._kick = asyncio.Event()
        self._baseline()
        self._watcher = asyncio.get_running_loop().create_task(self._watch(), name="antiapi-admin-quota")

    def end_streams(self) -> None:
        """End every open ``/admin/events`` stream (on the event loop's thread)."""
        self.hub.end_all(w.StatusEvent(self._status_now()))

    async def aclose(self) -> None:
        with contextlib.suppress(ValueError):
            self.usage_log.listeners.remove(self._on_usage)
        self.end_streams()
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(BaseException):
                await self._watcher
            self._watcher = None
        await self.signins.aclose()
        for p in self._added.values():
            try:
                await p.aclose()
            except Exception:
                log.exception("closing provider %s failed", p.name)
        self._added.clear()

    # ------------------------------------------------------------------ live events

    def _on_usage(self, rec: Any) -> None:
        """``UsageLog`` listener (event loop thread): publish the record, check quotas soon."""
        if self.hub.subscribers:  # nobody listening: no work on the request path
            self.hub.publish(w.RequestEvent(record_from_usage(rec)))
            if self._kick is not None:
                self._kick.set()

    async def _watch(self) -> None:
        assert self._kick is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), self.quota_interval)
            self._kick.clear()
            if not self.hub.subscribers:
                continue
            try:
                self._publish_changes()
                self._check_remote_changes()
            except Exception:
                log.exception("admin: quota check failed")

    def _baseline(self) -> None:
        views = self.service.quota_view()
        self._last_quota = {v["account"]: quota_from_view(v) for v in views}
        self._last_accounts = self._accounts_from(views)

    def _publish_changes(self) -> None:
        views = self.service.quota_view()
        for v in views:
            q = quota_from_view(v)
            if self._last_quota.get(q.account) != q:
                self._last_quota[q.account] = q
                self.hub.publish(w.QuotaEvent(q))
        accounts = self._accounts_from(views)
        if accounts != self._last_accounts:
            self._last_accounts = accounts
            self.hub.publish(w.AccountsEvent(accounts))

    def _publish_accounts(self) -> None:
        """After an account change: the new list, and every account's quota (new ones included)."""
        views = self.service.quota_view()
        self._last_accounts = self._accounts_from(views)
        self.hub.publish(w.AccountsEvent(self._last_accounts))
        for v in views:
            q = quota_from_view(v)
            if self._last_quota.get(q.account) != q:
                self._last_quota[q.account] = q
                self.hub.publish(w.QuotaEvent(q))

    def events(self) -> AsyncIterator[w.AdminEvent]:
        return self.hub.subscribe()

    # ------------------------------------------------------------------ status

    def _status_now(self) -> w.Status:
        now = self.clock()
        since = now - 60.0
        n = errors = 0
        for rec in reversed(self.usage_log.recent):
            if rec.time < since:
                break
            n += 1
            errors += rec.status >= 400
        t = self.service.table
        return w.Status(
            version=__version__, url=self.url or "", started_at=self.started, uptime_s=max(0.0, now - self.started),
            requests_per_min=float(n), errors_per_min=float(errors), requests_total=int(self.usage_log.count),
            accounts=len(t.accounts), models=len(t.names()), time=now, **self._exposure(),
        )

    async def status(self) -> w.Status:
        return self._status_now()

    # ------------------------------------------------------------------ accounts

    def _source(self, name: str, ptype: str) -> str:
        if name in getattr(self.config, "providers", {}):
            return "config"
        if ptype in _SIGNED_IN_TYPES:
            return "signed_in"
        return "admin"

    def _is_stored(self, name: str) -> bool:
        """An API-key provider added here (saved in the data dir), not a config-file entry."""
        return (name not in getattr(self.config, "providers", {})
                and bool(getattr(self.service.providers.get(name), "stored", False)))

    def _model_counts(self) -> Counter[str]:
        t = self.service.table
        counts: Counter[str] = Counter()
        for cands in t.static.values():
            for account in {c.account for c in cands}:
                counts[account] += 1
        for names in t.dynamic.values():
            for account in set(names):
                counts[account] += 1
        return counts

    def _accounts_from(self, views: list[dict[str, Any]]) -> list[w.AccountInfo]:
        counts = self._model_counts()
        out = []
        for v in views:
            source = self._source(v["account"], v["type"])
            out.append(w.AccountInfo(
                name=v["account"], type=v["type"], label=v.get("label"), enabled=bool(v.get("enabled", True)),
                order=int(v.get("order") or 0), source=source, status=v.get("status") or "ok",
                removable=source == "signed_in" or (source == "admin" and self._is_stored(v["account"])),
                models=counts.get(v["account"], 0),
            ))
        return out

    def _account_info(self, name: str) -> w.AccountInfo:
        for a in self._accounts_from(self.service.quota_view()):
            if a.name == name:
                return a
        raise KeyError(f"no account named {name!r}")

    async def accounts(self) -> list[w.AccountInfo]:
        return self._accounts_from(self.service.quota_view())

    async def providers(self) -> list[w.ProviderType]:
        from antiapi.providers.registry import BUILTIN

        counts = Counter(a.type for a in self.service.table.accounts.values())
        path = getattr(self.config, "path", None)
        where = f"the config file ({path})" if path else "the config file"
        can_add = getattr(self.config, "data_dir", None) is not None
        out = []
        for ptype in BUILTIN:
            if ptype in _SIGNED_IN_TYPES:
                out.append(w.ProviderType(type=ptype, sign_in=True, accounts=counts.get(ptype, 0)))
            elif not can_add:
                out.append(w.ProviderType(
                    type=ptype, api_key=True, accounts=counts.get(ptype, 0),
                    note=f"API keys are added under providers: in {where}; restart antiapi afterwards.",
                ))
            else:
                what = ("an OpenAI key, or any OpenAI-compatible server (Ollama, vLLM, OpenRouter…) by its base URL"
                        if ptype == "openai" else f"an {ptype.capitalize()} key" if ptype == "anthropic"
                        else f"a {ptype.capitalize()} key")
                out.append(w.ProviderType(
                    type=ptype, api_key=True, accounts=counts.get(ptype, 0),
                    note=f"Add one here, served at once: {what}; or under providers: in {where}.",
                ))
        for ptype in sorted(set(counts) - set(BUILTIN)):  # plug-in provider types
            out.append(w.ProviderType(type=ptype, accounts=counts[ptype], note="configured in the config file"))
        return out

    async def set_account_enabled(self, name: str, enabled: bool) -> w.AccountInfo:
        if name not in self.service.table.accounts:
            raise KeyError(f"no account named {name!r}")
        self.service.set_account_enabled(name, enabled)
        self._publish_accounts()
        return self._account_info(name)

    async def remove_account(self, name: str) -> None:
        p = self.service.providers.get(name)
        if p is None:
            raise KeyError(f"no account named {name!r}")
        source = self._source(name, p.type)
        if source == "admin" and self._is_stored(name):
            await self._remove_api_key(name)
            return
        if source != "signed_in":
            path = getattr(self.config, "path", None)
            raise ValueError(f"{name} is defined in the config file{f' ({path})' if path else ''}; remove it there and restart antiapi")
        from antiapi.accounts import CredentialStore

        label = p.account
        if label:
            await asyncio.to_thread(CredentialStore(self.config.data_dir).remove, p.type, label)
        # every provider using that sign-in goes (one per config template of that type)
        gone = [n for n, q in self.service.providers.items()
                if n not in self.config.providers and q.type == p.type and q.account == label]
        for n in gone:
            q = _routing_remove_account(self.service, n)
            self._added.pop(n, None)
            if q is not None:
                try:
                    await q.aclose()
                except Exception:
                    log.exception("closing provider %s failed", n)
        self._last_quota = {k: v for k, v in self._last_quota.items() if k not in gone}
        self._publish_accounts()
        self.hub.publish(w.RoutingEvent(self._routing_view()))

    async def add_api_key(self, account: w.ApiKeyAccount) -> w.AccountInfo:
        """Add an API-key provider: check it, list its models when none are given (which checks the
        key), save it in the data dir (0600), serve it at once. ``ValueError`` (422) says what to
        fix; a name already in use is a 409. The key never appears in any answer or log."""
        from antiapi.providers import stored

        data_dir = getattr(self.config, "data_dir", None)
        if data_dir is None:
            raise NotImplementedError("this gateway has no data directory to keep API keys in; add the provider "
                                      "under providers: in the config file and restart antiapi")
        entry = stored.new_entry(type=account.type, name=account.name, api_key=account.api_key,
                                 base_url=account.base_url, models=account.models, now=self.clock())
        self._check_name_free(entry.name)
        async with self._apikey_lock:  # one add at a time: two adds of one name cannot both pass
            self._check_name_free(entry.name)
            kw = self._provider_kw()
            if not entry.models:
                names = await stored.fetch_models(entry, **kw)
                entry = dataclasses.replace(entry, models=tuple(names), listed=True)
            store = stored.ApiKeyStore(data_dir)
            try:
                await asyncio.to_thread(store.save, entry)
            except OSError as e:
                log.error("saving the API-key provider %s in %s failed: %s", entry.name, store.root, e)
                raise AdminError(f"could not save the provider in {store.root} ({e.strerror or type(e).__name__}); "
                                 "check that the data directory is writable", status=500, code="storage_error") from None
            p = stored.build_provider(entry, **kw)
            try:
                await p.start()
            except Exception:
                with contextlib.suppress(Exception):
                    await p.aclose()
                await asyncio.to_thread(store.remove, entry.name)
                raise
            _routing_add_account(self.service, p)
            self.service.add_provider_models(p, list(entry.models))
            self._added[p.name] = p
        log.info("added the API-key provider %s (%s at %s, %d models)", p.name, entry.type,
                 stored.shown_url(entry.url), len(entry.models))
        self._publish_accounts()
        self.hub.publish(w.RoutingEvent(self._routing_view()))
        return self._account_info(p.name)

    def _check_name_free(self, name: str) -> None:
        """409 when ``name`` is an account or provider already (running, in the config file, or
        saved), compared without case (file names on some systems ignore it)."""
        from antiapi.providers import stored

        taken = set(self.service.providers) | set(getattr(self.config, "providers", {}))
        data_dir = getattr(self.config, "data_dir", None)
        if data_dir is not None:
            taken |= set(stored.ApiKeyStore(data_dir).names())
        same = next((n for n in sorted(taken) if n.lower() == name.lower()), None)
        if same is not None:
            where = " in the config file" if same in getattr(self.config, "providers", {}) else ""
            raise AdminError(f"name: an account named {same!r} exists already{where}; choose another name "
                             "(or remove that account first)", status=409, code="conflict")

    async def _remove_api_key(self, name: str) -> None:
        """Remove a provider added here: delete its file, stop routing to it, close it."""
        from antiapi.providers import stored

        await asyncio.to_thread(stored.ApiKeyStore(self.config.data_dir).remove, name)
        q = _routing_remove_account(self.service, name)
        self._added.pop(name, None)
        if q is not None:
            try:
                await q.aclose()
            except Exception:
                log.exception("closing provider %s failed", name)
        self._last_quota.pop(name, None)
        log.info("removed the API-key provider %s", name)
        self._publish_accounts()
        self.hub.publish(w.RoutingEvent(self._routing_view()))

    # ------------------------------------------------------------------ sign-in

    def _signin_factories(self) -> dict[str, Callable[[str | None], Any]]:
        return {"codex": self._codex_flow, "copilot": self._copilot_flow}

    def _codex_flow(self, mode: str | None) -> Any:
        from antiapi.providers.codex.login import DeviceSignIn, LoginSettings

        settings = LoginSettings.from_config(self.config)
        if mode == "device":
            return DeviceSignIn(settings)
        return _CodexBrowserFlow(settings)

    def _copilot_flow(self, mode: str | None) -> Any:
        if mode == "browser":
            raise AdminError("Copilot signs in with a device code only; start it with mode \"device\" (or none)",
                             status=422, code="invalid_value")
        from antiapi.accounts import CredentialStore
        from antiapi.providers.copilot.login import _provider_config
        from antiapi.providers.copilot.settings import from_config
        from antiapi.providers.copilot.signin import DeviceSignIn

        pc = _provider_config(self.config, None)
        settings = from_config(pc, getattr(self.config, "env_settings", {}), warn=False)
        return _ClosingFlow(DeviceSignIn(settings, CredentialStore(self.config.data_dir)))

    async def start_signin(self, provider: str, mode: str | None) -> w.SignInFlow:
        return await self.signins.start(provider, mode)

    async def signin(self, flow_id: str) -> w.SignInFlow:
        return self.signins.get(flow_id)

    async def complete_signin(self, flow_id: str, pasted: str) -> w.SignInFlow:
        return await self.signins.complete(flow_id, pasted)

    async def cancel_signin(self, flow_id: str) -> w.SignInFlow:
        return await self.signins.cancel(flow_id)

    async def _signed_in(self, ptype: str, label: str) -> None:
        """A sign-in finished: its credentials are saved; serve the account now."""
        added = []
        for pc in self._provider_configs(ptype, label):
            if pc.name in self.service.providers:
                continue  # a renewed sign-in: the running provider reads the new credentials
            p = self._build_provider(pc)
            try:
                await p.start()
                names: list[str] = []
                if p.dynamic_models:
                    try:
                        names = await asyncio.wait_for(p.list_models(), 10.0)
                    except Exception as e:  # the provider falls back to its static list
                        log.warning("provider %s: model sync failed: %s", p.name, e)
            except Exception:
                with contextlib.suppress(Exception):
                    await p.aclose()
                raise
            _routing_add_account(self.service, p)
            if names:
                self.service.add_provider_models(p, names)
            self._added[p.name] = p
            added.append(p.name)
        if added:
            log.info("signed in: serving %s", ", ".join(added))
        self._publish_accounts()
        self.hub.publish(w.RoutingEvent(self._routing_view()))

    def _provider_configs(self, ptype: str, label: str) -> list[Any]:
        """The providers a new ``ptype`` sign-in becomes (as ``build_providers`` does at start)."""
        providers = getattr(self.config, "providers", {})
        if any(pc.type == ptype and pc.account == label for pc in providers.values()):
            return []  # pinned by a config entry, which is running already
        templates = [pc for pc in providers.values() if pc.type == ptype and pc.account is None]
        if templates:
            return [dataclasses.replace(t, name=f"{t.name}:{label}", account=label) for t in templates]
        from antiapi.config.schema import DEFAULT_BASE_URLS, ProviderConfig

        return [ProviderConfig(name=f"{ptype}:{label}", type=ptype, base_url=DEFAULT_BASE_URLS[ptype], account=label)]

    def _provider_kw(self) -> dict[str, Any]:
        """What every provider is built with (as ``build_providers`` does at start)."""
        from antiapi.providers.http import Timeouts

        s = self.config.server
        timeouts = Timeouts(connect=s.connect_timeout, first_byte=s.first_byte_timeout, idle=s.idle_timeout)
        return {"timeouts": timeouts, "transport": None, "data_dir": self.config.data_dir,
                "env": dict(getattr(self.config, "env_settings", {}) or {})}

    def _build_provider(self, pc: Any) -> Any:
        from antiapi.providers.registry import provider_class

        return provider_class(pc.type)(pc, **self._provider_kw())

    # ------------------------------------------------------------------ routing

    def _config_chain(self, kind: str, name: str) -> Any:
        if kind == "flow":
            return getattr(self.config, "flows", {}).get(name)
        routing = getattr(self.config, "routing", None)
        return routing.chains.get(name) if routing is not None else None

    def _chain_source(self, kind: str, name: str, chain: Any) -> str:
        cfg = self._config_chain(kind, name)
        if cfg is not None and _entry_keys(cfg.entries) == _entry_keys(chain.entries) and cfg.strategy == chain.strategy:
            return "config"
        return "admin"

    def _targets(self) -> list[str]:
        t = self.service.table
        names = set(t.accounts) | {a.type for a in t.accounts.values()}
        names |= {n for n, pc in getattr(self.config, "providers", {}).items()
                  if pc.type in _SIGNED_IN_TYPES and pc.account is None}  # template entries
        return sorted(names)

    def _routing_view(self) -> w.RoutingView:
        t = self.service.table
        s = self.service.settings
        return w.RoutingView(
            smart_switch=s.smart_switch, strategy=s.strategy,
            flows=[w.Flow(name=n, entries=[_entry(e) for e in c.entries], strategy=c.strategy,
                          source=self._chain_source("flow", n, c)) for n, c in t.flows.items()],
            chains=[w.Chain(model=m, entries=[_entry(e) for e in c.entries], strategy=c.strategy,
                            source=self._chain_source("chain", m, c)) for m, c in t.chains.items()],
            targets=self._targets(),
        )

    async def routing(self) -> w.RoutingView:
        return self._routing_view()

    @staticmethod
    def _entries(edit: w.ChainEdit) -> list[dict[str, Any]]:
        return [msgspec.structs.asdict(e) for e in edit.entries]

    async def put_flow(self, name: str, edit: w.ChainEdit) -> w.Flow:
        self.service.put_flow(name, self._entries(edit), edit.strategy)
        view = self._routing_view()
        self.hub.publish(w.RoutingEvent(view))
        return next(f for f in view.flows if f.name == name)

    async def delete_flow(self, name: str) -> None:
        if not self.service.delete_flow(name):
            raise KeyError(f"no flow named {name!r}")
        self.hub.publish(w.RoutingEvent(self._routing_view()))

    async def put_chain(self, model: str, edit: w.ChainEdit) -> w.Chain:
        self.service.put_chain(model, self._entries(edit), edit.strategy)
        view = self._routing_view()
        self.hub.publish(w.RoutingEvent(view))
        return next(c for c in view.chains if c.model == model)

    async def delete_chain(self, model: str) -> None:
        if not self.service.delete_chain(model):
            raise KeyError(f"no chain for {model!r}")
        self.hub.publish(w.RoutingEvent(self._routing_view()))

    async def update_routing(self, patch: w.RoutingPatch) -> w.RoutingView:
        changes = {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not msgspec.UNSET}
        if changes:
            self.service.update_settings(**changes)
        view = self._routing_view()
        if changes:
            self.hub.publish(w.RoutingEvent(view))
        return view

    # ------------------------------------------------------------------ settings

    def _settings_view(self) -> w.Settings:
        s = self.service.settings
        return w.Settings(
            default_model=s.default_model, background_model=s.background_model,
            background_patterns=list(s.background_patterns), **self._ui,
        )

    async def settings(self) -> w.Settings:
        return self._settings_view()

    async def update_settings(self, patch: w.SettingsPatch) -> w.Settings:
        changes = {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not msgspec.UNSET}
        routing = {k: changes[k] for k in _ROUTING_SETTINGS if k in changes}
        if "background_patterns" in routing:
            pats = [p.strip() for p in routing["background_patterns"]]
            if any(not p for p in pats):
                raise ValueError("background_patterns: a pattern must not be empty (e.g. \"*haiku*\")")
            routing["background_patterns"] = pats
        for k in ("default_model", "background_model"):
            if k in routing and routing[k] is not None:
                routing[k] = routing[k].strip() or None
        if routing:
            self.service.update_settings(**routing)
        for k in UI_SETTINGS:
            if k in changes:
                self._ui[k] = bool(changes[k])
                if self.store is not None:
                    self.store.put_setting(f"ui.{k}", self._ui[k])
        view = self._settings_view()
        if changes:
            self.hub.publish(w.SettingsEvent(view))
        return view

    # ------------------------------------------------------------------ quotas, usage, requests

    async def quotas(self) -> list[w.AccountQuota]:
        return [quota_from_view(v) for v in self.service.quota_view()]

    async def usage(self, by: str, since: float | None, until: float | None) -> list[w.UsageAggregate]:
        if self.store is not None:
            await self.store.flush()
            rows = await asyncio.to_thread(self.store.usage_summary, by, since, until)
            return [aggregate_from_row(r, by) for r in rows]
        return _aggregate(self.usage_log.recent, by, since, until)

    async def requests(self, query: w.RequestQuery) -> list[w.RequestRecord]:
        if self.store is not None:
            await self.store.flush()
            rows = await self.store.aquery(*_request_sql(query))
            return [record_from_usage(_decoded(r)) for r in rows]
        out: list[w.RequestRecord] = []
        for rec in reversed(self.usage_log.recent):
            r = record_from_usage(rec)
            if w.request_matches(r, query):
                out.append(r)
                if len(out) >= query.limit:
                    break
        return out

    async def request(self, request_id: str) -> w.RequestRecord:
        for rec in reversed(self.usage_log.recent):
            if rec.request_id == request_id:
                return record_from_usage(rec)
        if self.store is not None:
            await self.store.flush()
            rows = await self.store.aquery("SELECT * FROM usage WHERE request_id = ? ORDER BY id DESC LIMIT 1", [request_id])
            if rows:
                return record_from_usage(_decoded(rows[0]))
        raise KeyError(f"no request {request_id!r} in the log")

    async def models(self) -> list[w.ModelInfo]:
        t = self.service.table
        out = []
        for name in t.model_names():
            out.append(w.ModelInfo(name=name, kind="model", accounts=_route_accounts(t, name)))
        models = set(t.model_names())
        for name in t.flow_names():
            if name not in models:
                out.append(w.ModelInfo(name=name, kind="flow", accounts=_route_accounts(t, name)))
        return out


# ---------------------------------------------------------------------------------------- helpers


def _route_accounts(table: Any, name: str) -> list[str]:
    try:
        route = table.resolve(name)
    except Exception:  # a flow naming nothing that exists
        return []
    return list(dict.fromkeys(c.account for c in route.candidates))


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    for k in ("attempts", "route"):
        v = row.get(k)
        row[k] = _dec.decode(v) if isinstance(v, (str, bytes)) and v else []
    row["stream"] = bool(row.get("stream"))
    for k in ("input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens", "status"):
        if row.get(k) is None:
            row[k] = 0
    for k in ("endpoint", "client_dialect", "model"):
        if row.get(k) is None:
            row[k] = ""
    return row


def _request_sql(q: w.RequestQuery) -> tuple[str, list[Any]]:
    cond: list[str] = []
    params: list[Any] = []
    if q.since is not None:
        cond.append("time >= ?")
        params.append(q.since)
    if q.model:
        m = q.model.lower()
        cond.append("(lower(model) = ? OR lower(coalesce(target, '')) = ? OR lower(coalesce(upstream_model, '')) = ?)")
        params += [m, m, m]
    if q.account:
        a = q.account.lower()
        cond.append("(lower(coalesce(provider, '')) = ? OR lower(coalesce(account, '')) = ?)")
        params += [a, a]
    rng = w.parse_status_filter(q.status)
    if rng is not None:
        cond.append("status BETWEEN ? AND ?")
        params += list(rng)
    where = f"WHERE {' AND '.join(cond)}" if cond else ""
    params.append(q.limit)
    return f"SELECT * FROM usage {where} ORDER BY id DESC LIMIT ?", params


def _aggregate(records: Iterable[Any], by: str, since: float | None, until: float | None) -> list[w.UsageAggregate]:
    """``Store.usage_summary`` over in-memory records (a gateway without a state store)."""
    groups: dict[str | None, dict[str, Any]] = {}
    for r in records:
        if (since is not None and r.time < since) or (until is not None and r.time >= until):
            continue
        if by == "account":
            key = r.provider
        elif by == "day":
            key = _dt.datetime.fromtimestamp(r.time, _dt.timezone.utc).strftime("%Y-%m-%d")
        else:
            key = getattr(r, by)
        g = groups.setdefault(key, {"n": 0, "err": 0, "in": 0, "out": 0, "cached": 0, "reasoning": 0, "lat": [], "ttft": []})
        g["n"] += 1
        g["err"] += r.status >= 400
        g["in"] += r.input_tokens or 0
        g["out"] += r.output_tokens or 0
        g["cached"] += r.cached_tokens or 0
        g["reasoning"] += r.reasoning_tokens or 0
        g["lat"].append(r.latency_ms)
        if r.ttft_ms is not None:
            g["ttft"].append(r.ttft_ms)
    out = [
        w.UsageAggregate(
            key=k, requests=g["n"], errors=g["err"], input_tokens=g["in"], output_tokens=g["out"],
            cached_tokens=g["cached"], reasoning_tokens=g["reasoning"],
            avg_latency_ms=round(sum(g["lat"]) / len(g["lat"]), 2) if g["lat"] else None,
            avg_ttft_ms=round(sum(g["ttft"]) / len(g["ttft"]), 2) if g["ttft"] else None,
        )
        for k, g in groups.items()
    ]
    out.sort(key=lambda a: (-a.requests, a.key or ""))
    return out


# RoutingService has no public way to add or remove an account at run time (the gateway builds its
# providers at start). These two do what ``RoutingService.__init__``/``attach_store`` do for one
# account; they belong in RoutingService (``add_account(provider)`` / ``remove_account(name)``).


def _routing_add_account(routing: Any, provider: Any) -> None:
    add = getattr(routing, "add_account", None)
    if add is not None:
        add(provider)
        return
    from antiapi.routing import Account

    routing.providers[provider.name] = provider
    order = max((a.order for a in routing._accounts.values()), default=0) + 1
    routing._accounts = {**routing._accounts, provider.name: Account(provider.name, provider.type, provider.account, order, True)}
    routing._rebuild()
    if routing.store is not None:
        routing.store.add_account(provider.name, provider.type, provider.account, order)


def _routing_remove_account(routing: Any, name: str) -> Any:
    remove = getattr(routing, "remove_account", None)
    if remove is not None:
        return remove(name)
    p = routing.providers.pop(name, None)
    routing._accounts = {k: v for k, v in routing._accounts.items() if k != name}
    routing._dynamic = {m: [n for n in names if n != name] for m, names in routing._dynamic.items()}
    routing._dynamic = {m: names for m, names in routing._dynamic.items() if names}
    routing._rebuild()
    if routing.store is not None:
        routing.store.remove_account(name)
    return p


# ---------------------------------------------------------------------------------------- flows


class _CodexBrowserFlow:
    """Codex browser sign-in for the admin API: listens for the callback on localhost (1455/1457)
    when it can, and always accepts the pasted redirect URL (``complete``). When no port is free it
    runs paste-only: ``wait`` then waits for ``complete`` (or a cancel) instead of failing."""

    def __init__(self, settings: Any) -> None:
        from antiapi.providers.codex.login import BrowserSignIn

        self._settings = settings
        self.inner = BrowserSignIn(settings, listen=True)

    async def start(self) -> dict[str, Any]:
        from antiapi.providers.codex.login import BrowserSignIn

        try:
            return await self.inner.start()
        except Exception as e:  # no free callback port (or no loopback): paste only
            log.info("codex sign-in: no callback listener (%s); the redirect URL must be pasted", e)
            with contextlib.suppress(Exception):
                await self.inner.cancel()
            self.inner = BrowserSignIn(self._settings, listen=False)
            return await self.inner.start()

    async def wait(self) -> str:
        if self.inner.server is None:
            await asyncio.get_running_loop().create_future()  # until complete() or cancel()
        return await self.inner.wait()

    async def complete(self, pasted: str) -> str:
        return await self.inner.complete(pasted)

    async def cancel(self) -> None:
        await self.inner.cancel()


class _ClosingFlow:
    """A sign-in object whose ``wait`` closes it afterwards (Copilot's keeps its HTTP client)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def start(self) -> dict[str, Any]:
        return await self.inner.start()

    async def wait(self) -> str:
        try:
            return await self.inner.wait()
        finally:
            with contextlib.suppress(Exception):
                await self.inner.aclose()

    async def aclose(self) -> None:
        await self.inner.aclose()
