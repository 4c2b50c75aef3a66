"""A fake gateway for admin API and TUI tests: implements ``AdminBackend`` (server side) and,
with ``url``/``aclose``, the TUI's ``AdminClient`` too (in-process snapshot tests).

Every mutating call is recorded in ``calls`` as ``(method, args...)`` so tests assert what the
API or the TUI asked the gateway to do. Events go through a real :class:`EventHub`; ``emit`` may
be called from the test's thread while the server runs in another.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable

import msgspec

from antiapi.server.admin import AdminError, EventHub, SignInManager
from antiapi.wire import admin as w

T0 = 1_760_000_000.0  # a fixed "now" for deterministic screens


class FakeSignIn:
    """A sign-in flow object like the providers' (start/wait/complete/cancel)."""

    def __init__(self, provider: str, mode: str | None) -> None:
        self.provider = provider
        self.mode = mode
        self.approved: asyncio.Event | None = None
        self.label = "new@example.com" if provider == "codex" else "octocat"
        self.cancelled = False

    async def start(self) -> dict:
        self.approved = asyncio.Event()
        if self.provider == "copilot" or self.mode == "device":
            return {"user_code": "ABCD-1234", "verification_uri": "https://github.com/login/device", "expires_in": 900}
        return {"url": "https://auth.example.com/authorize?state=s1", "expires_in": 900}

    async def wait(self) -> str:
        assert self.approved is not None
        await self.approved.wait()
        return self.label

    async def complete(self, pasted: str) -> str:
        if "code=" not in pasted:
            raise ValueError("the pasted URL carries no code=")
        return self.label

    async def cancel(self) -> None:
        self.cancelled = True


def sample_records(now: float = T0) -> list[w.RequestRecord]:
    return [
        w.RequestRecord(
            time=now - 30, request_id="req_a1", endpoint="/v1/messages", client_dialect="anthropic",
            model="claude-sonnet-4", status=200, latency_ms=1830.0, stream=True, provider="codex:me@example.com",
            provider_type="codex", account="me@example.com", upstream_model="gpt-5", upstream_dialect="openai_responses",
            ttft_ms=420.0, input_tokens=1200, output_tokens=310, route=["codex:me@example.com/gpt-5: served"],
        ),
        w.RequestRecord(
            time=now - 12, request_id="req_b2", endpoint="/v1/chat/completions", client_dialect="openai_chat",
            model="gpt-4.1", status=429, latency_ms=95.0, provider="openai", provider_type="openai",
            upstream_model="gpt-4.1", error="rate limited by every account", attempts=["openai/gpt-4.1: 429 rate_limit"],
            route=["openai/gpt-4.1: 429 rate_limit", "copilot:octo/gpt-4.1: cooling down for 30 s"],
        ),
    ]


class FakeBackend:
    """In-memory gateway state (see module docstring)."""

    url = "http://127.0.0.1:8964"

    def __init__(self, clock: Callable[[], float] = lambda: T0) -> None:
        self.clock = clock
        self.hub = EventHub()
        self.calls: list[tuple] = []
        self.status_calls = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self.account_list = [
            w.AccountInfo(name="codex:me@example.com", type="codex", label="me@example.com", order=1, source="signed_in", removable=True, models=8),
            w.AccountInfo(name="copilot:octo", type="copilot", label="octo", order=2, source="signed_in", removable=True, models=12),
            w.AccountInfo(name="openai", type="openai", order=3, source="config", models=3),
        ]
        self.quota = {
            "codex:me@example.com": w.AccountQuota(
                account="codex:me@example.com", type="codex", label="me@example.com", used_percent=42.0, plan="plus",
                windows=[w.QuotaWindow(name="5h", used_percent=42.0, window_minutes=300, resets_at=T0 + 2 * 3600 + 300),
                         w.QuotaWindow(name="weekly", used_percent=18.0, window_minutes=10080, resets_at=T0 + 4 * 86400)],
                source="headers", updated_at=T0 - 5,
            ),
            "copilot:octo": w.AccountQuota(
                account="copilot:octo", type="copilot", label="octo", status="cooling_down", used_percent=91.0,
                windows=[w.QuotaWindow(name="premium", used_percent=91.0, remaining=27, entitlement=300, resets_at=T0 + 9 * 86400)],
                cooldowns=[w.Cooldown(until=T0 + 30, reason="429 rate_limit", category="limit", hard=True)],
            ),
            "openai": w.AccountQuota(account="openai", type="openai"),
        }
        self.records: list[w.RequestRecord] = sample_records(T0)
        self.flows = {
            "coding": w.Flow(name="coding", entries=[
                w.Entry(provider="codex", model="gpt-5"),
                w.Entry(provider="copilot:octo", model="claude-sonnet-4"),
                w.Entry(provider="openai", model="gpt-4.1"),
            ], strategy="ordered"),
        }
        self.chains = {
            "gpt-4.1": w.Chain(model="gpt-4.1", entries=[w.Entry(provider="openai"), w.Entry(provider="copilot")], strategy="round_robin"),
        }
        self.routing_state = {"smart_switch": True, "strategy": "ordered"}
        self.settings_state = w.Settings(default_model="gpt-4.1", background_model="gpt-4.1-mini", background_patterns=["*haiku*"])
        self.signins = SignInManager(
            {"codex": lambda mode: self._new_flow("codex", mode), "copilot": lambda mode: self._new_flow("copilot", mode)},
            on_done=self._signed_in, publish=self.emit, clock=clock,
        )
        self.flow_objects: list[FakeSignIn] = []
        self.key_list = [
            w.ClientKeyInfo(id=1, name="laptop", prefix="aa-AbCdEfGh", created_at=T0 - 86400, last_used_at=T0 - 120,
                            requests_today=12, tokens_today=34500),
            w.ClientKeyInfo(id=2, name="ci", prefix="aa-QrStUvWx", created_at=T0 - 3 * 86400, rpm_limit=30,
                            tokens_per_day=2_000_000),
            w.ClientKeyInfo(id=3, name="old-phone", prefix="aa-MnOpQrSt", created_at=T0 - 9 * 86400, revoked=True,
                            revoked_at=T0 - 86400),
        ]
        self.remote_state = w.RemoteView(
            host="127.0.0.1", keys_required=True, active_keys=2, provider="cloudflared",
            tunnel=w.TunnelStatus(kind="cloudflared", state="running", url="https://calm-words-here.trycloudflare.com",
                                  restarts=1, pid=4242, started_at=T0 - 600),
            tools=[w.TunnelTool(kind="cloudflared", installed=True, path="/usr/bin/cloudflared"),
                   w.TunnelTool(kind="ngrok", install="Install ngrok from https://ngrok.com/download"),
                   w.TunnelTool(kind="localtunnel", install="npm install -g localtunnel")],
        )
        #: the secret of the last key created (tests check the dialog shows it)
        self.last_secret: str | None = None

    # ---------------------------------------------------------------- test controls

    def emit(self, event: w.AdminEvent) -> None:
        """Publish an event from any thread."""
        loop = self.loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is not None and running is not loop:
            loop.call_soon_threadsafe(self.hub.publish, event)
        else:
            self.hub.publish(event)

    def set_quota(self, account: str, used: float) -> None:
        q = self.quota[account]
        windows = [msgspec.structs.replace(q.windows[0], used_percent=used), *q.windows[1:]] if q.windows else []
        self.quota[account] = msgspec.structs.replace(q, used_percent=used, windows=windows)
        self.emit(w.QuotaEvent(self.quota[account]))

    def add_record(self, rec: w.RequestRecord) -> None:
        self.records.append(rec)
        self.emit(w.RequestEvent(rec))

    def drop_subscribers(self) -> None:
        """End every event stream (as a server restart would)."""
        def drop() -> None:
            for q in list(self.hub._queues):
                self.hub._queues.discard(q)
                q.put_nowait(w.StatusEvent(w.Status(version="0.1.0", url=self.url, started_at=T0, uptime_s=0)))

        if self.loop is not None:
            self.loop.call_soon_threadsafe(drop)
        else:
            drop()

    def approve_signin(self) -> None:
        flow = self.flow_objects[-1]
        assert flow.approved is not None
        if self.loop is not None:
            self.loop.call_soon_threadsafe(flow.approved.set)
        else:
            flow.approved.set()

    def _new_flow(self, provider: str, mode: str | None) -> FakeSignIn:
        f = FakeSignIn(provider, mode)
        self.flow_objects.append(f)
        return f

    async def _signed_in(self, provider: str, label: str) -> None:
        self.calls.append(("signed_in", provider, label))
        self.account_list.append(w.AccountInfo(name=f"{provider}:{label}", type=provider, label=label,
                                               order=len(self.account_list) + 1, source="signed_in", removable=True))
        self.emit(w.AccountsEvent(list(self.account_list)))

    # ---------------------------------------------------------------- AdminBackend / AdminClient

    async def aclose(self) -> None:
        await self.signins.aclose()

    async def status(self) -> w.Status:
        self.status_calls += 1
        now = self.clock()
        return w.Status(version="0.1.0", url=self.url, started_at=T0 - 7380, uptime_s=now - (T0 - 7380),
                        requests_per_min=12.0, errors_per_min=1.0, requests_total=len(self.records),
                        accounts=len(self.account_list), models=23, time=now)

    async def providers(self) -> list[w.ProviderType]:
        return [
            w.ProviderType(type="codex", sign_in=True, accounts=1),
            w.ProviderType(type="copilot", sign_in=True, accounts=1),
            w.ProviderType(type="openai", api_key=True, accounts=1, note="API keys are added in the config file"),
            w.ProviderType(type="anthropic", api_key=True),
            w.ProviderType(type="gemini", api_key=True),
        ]

    async def accounts(self) -> list[w.AccountInfo]:
        return list(self.account_list)

    def _account(self, name: str) -> int:
        for i, a in enumerate(self.account_list):
            if a.name == name:
                return i
        raise KeyError(f"no account named {name!r}")

    async def set_account_enabled(self, name: str, enabled: bool) -> w.AccountInfo:
        i = self._account(name)
        self.calls.append(("set_account_enabled", name, enabled))
        a = msgspec.structs.replace(self.account_list[i], enabled=enabled, status="ok" if enabled else "disabled")
        self.account_list[i] = a
        self.emit(w.AccountsEvent(list(self.account_list)))
        return a

    async def remove_account(self, name: str) -> None:
        i = self._account(name)
        if not self.account_list[i].removable:
            raise ValueError(f"{name} is defined in the config file; remove it there")
        self.calls.append(("remove_account", name))
        del self.account_list[i]
        self.emit(w.AccountsEvent(list(self.account_list)))

    async def add_api_key(self, account: w.ApiKeyAccount) -> w.AccountInfo:
        self.calls.append(("add_api_key", account.type, account.name))
        raise NotImplementedError(
            "Adding API-key providers here is not supported yet: add it under providers: in the config file "
            "(antiapi prints its path at start) and restart antiapi."
        )

    async def start_signin(self, provider: str, mode: str | None = None) -> w.SignInFlow:
        self.loop = asyncio.get_running_loop()
        self.calls.append(("start_signin", provider, mode))
        return await self.signins.start(provider, mode)

    async def signin(self, flow_id: str) -> w.SignInFlow:
        return self.signins.get(flow_id)

    async def complete_signin(self, flow_id: str, pasted: str) -> w.SignInFlow:
        return await self.signins.complete(flow_id, pasted)

    async def cancel_signin(self, flow_id: str) -> w.SignInFlow:
        return await self.signins.cancel(flow_id)

    async def routing(self) -> w.RoutingView:
        targets = sorted({a.name for a in self.account_list} | {a.type for a in self.account_list})
        return w.RoutingView(
            smart_switch=self.routing_state["smart_switch"], strategy=self.routing_state["strategy"],
            flows=list(self.flows.values()), chains=list(self.chains.values()), targets=targets,
        )

    async def put_flow(self, name: str, edit: w.ChainEdit) -> w.Flow:
        self.calls.append(("put_flow", name, list(edit.entries), edit.strategy))
        self.flows[name] = w.Flow(name=name, entries=list(edit.entries), strategy=edit.strategy)
        self.emit(w.RoutingEvent(await self.routing()))
        return self.flows[name]

    async def delete_flow(self, name: str) -> None:
        if name not in self.flows:
            raise KeyError(f"no flow named {name!r}")
        self.calls.append(("delete_flow", name))
        del self.flows[name]
        self.emit(w.RoutingEvent(await self.routing()))

    async def put_chain(self, model: str, edit: w.ChainEdit) -> w.Chain:
        self.calls.append(("put_chain", model, list(edit.entries), edit.strategy))
        self.chains[model] = w.Chain(model=model, entries=list(edit.entries), strategy=edit.strategy)
        self.emit(w.RoutingEvent(await self.routing()))
        return self.chains[model]

    async def delete_chain(self, model: str) -> None:
        if model not in self.chains:
            raise KeyError(f"no chain for {model!r}")
        self.calls.append(("delete_chain", model))
        del self.chains[model]
        self.emit(w.RoutingEvent(await self.routing()))

    async def update_routing(self, patch: w.RoutingPatch) -> w.RoutingView:
        changes = {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not msgspec.UNSET}
        self.calls.append(("update_routing", changes))
        self.routing_state.update(changes)
        view = await self.routing()
        self.emit(w.RoutingEvent(view))
        return view

    async def settings(self) -> w.Settings:
        return self.settings_state

    async def update_settings(self, patch: w.SettingsPatch) -> w.Settings:
        changes = {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not msgspec.UNSET}
        self.calls.append(("update_settings", changes))
        self.settings_state = msgspec.structs.replace(self.settings_state, **changes)
        self.emit(w.SettingsEvent(self.settings_state))
        return self.settings_state

    async def quotas(self) -> list[w.AccountQuota]:
        return list(self.quota.values())

    async def usage(self, by: str = "account", since: float | None = None, until: float | None = None) -> list[w.UsageAggregate]:
        self.calls.append(("usage", by, since, until))
        groups: dict[str | None, w.UsageAggregate] = {}
        for r in self.records:
            if (since is not None and r.time < since) or (until is not None and r.time >= until):
                continue
            key = {"account": r.provider, "model": r.model, "upstream_model": r.upstream_model, "day": "2025-10-09",
                   "client_key": r.client_key}[by]
            g = groups.setdefault(key, w.UsageAggregate(key=key))
            g.requests += 1
            g.errors += r.status >= 400
            g.input_tokens += r.input_tokens
            g.output_tokens += r.output_tokens
        return sorted(groups.values(), key=lambda g: -g.requests)

    async def requests(self, query: w.RequestQuery) -> list[w.RequestRecord]:
        out = [r for r in reversed(self.records) if w.request_matches(r, query)]
        return out[: query.limit]

    async def request(self, request_id: str) -> w.RequestRecord:
        for r in self.records:
            if r.request_id == request_id:
                return r
        raise KeyError(f"no request {request_id!r} in the log")

    async def models(self) -> list[w.ModelInfo]:
        return [
            w.ModelInfo(name="gpt-4.1", accounts=["openai", "copilot:octo"]),
            w.ModelInfo(name="gpt-5", accounts=["codex:me@example.com"]),
            w.ModelInfo(name="coding", kind="flow", accounts=["codex:me@example.com", "copilot:octo", "openai"]),
        ]

    # ---------------------------------------------------------------- remote access

    def _active(self) -> list[w.ClientKeyInfo]:
        return [k for k in self.key_list if not k.revoked]

    def _find_key(self, ident: str) -> int:
        for i, k in enumerate(self.key_list):
            if str(k.id) == ident or (k.name == ident and not k.revoked):
                return i
        raise KeyError(f"no client key with id or name {ident!r}")

    def _remote_changed(self) -> None:
        self.remote_state = msgspec.structs.replace(self.remote_state, active_keys=len(self._active()))
        self.emit(w.KeysEvent(list(self.key_list)))
        self.emit(w.RemoteEvent(self.remote_state))

    async def keys(self) -> list[w.ClientKeyInfo]:
        return list(self.key_list)

    async def create_key(self, body: w.KeyCreate) -> w.KeyCreated:
        self.calls.append(("create_key", body.name, body.rpm_limit, body.tokens_per_day))
        if any(k.name == body.name for k in self._active()):
            raise AdminError(f"an active key is already named {body.name!r}", status=409, code="conflict")
        k = w.ClientKeyInfo(id=max(k.id for k in self.key_list) + 1, name=body.name, prefix="aa-NewKey00",
                            created_at=self.clock(), rpm_limit=body.rpm_limit, tokens_per_day=body.tokens_per_day)
        self.key_list.append(k)
        self.last_secret = "aa-NewKey00" + "x" * 35
        self._remote_changed()
        return w.KeyCreated(key=k, secret=self.last_secret)

    async def update_key(self, ident: str, patch: w.KeyPatch) -> w.ClientKeyInfo:
        i = self._find_key(ident)
        changes = {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not msgspec.UNSET}
        self.calls.append(("update_key", ident, changes))
        self.key_list[i] = msgspec.structs.replace(self.key_list[i], **changes)
        self._remote_changed()
        return self.key_list[i]

    async def revoke_key(self, ident: str) -> w.ClientKeyInfo:
        i = self._find_key(ident)
        self.calls.append(("revoke_key", ident))
        self.key_list[i] = msgspec.structs.replace(self.key_list[i], revoked=True, revoked_at=self.clock())
        self._remote_changed()
        return self.key_list[i]

    async def remote_view(self) -> w.RemoteView:
        return self.remote_state

    async def update_remote(self, patch: w.RemotePatch) -> w.RemoteView:
        changes = {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not msgspec.UNSET}
        self.calls.append(("update_remote", {k: ("***" if k == "authtoken" else v) for k, v in changes.items()}))
        if "authtoken" in changes:
            self.remote_state = msgspec.structs.replace(self.remote_state, authtoken_set=bool(changes.pop("authtoken")))
        self.remote_state = msgspec.structs.replace(self.remote_state, **changes)
        self._remote_changed()
        return self.remote_state

    async def start_tunnel(self, body: w.TunnelStart) -> w.RemoteView:
        self.calls.append(("start_tunnel", body.provider))
        if not self._active():
            raise AdminError("no client key exists: create one first", status=409, code="client_key_required")
        kind = body.provider or self.remote_state.provider
        self.remote_state = msgspec.structs.replace(
            self.remote_state, keys_required=True,
            tunnel=w.TunnelStatus(kind=kind, state="running", url=f"https://fresh-{kind}.trycloudflare.com", pid=4343))
        self._remote_changed()
        return self.remote_state

    async def stop_tunnel(self) -> w.RemoteView:
        self.calls.append(("stop_tunnel",))
        self.remote_state = msgspec.structs.replace(self.remote_state, tunnel=w.TunnelStatus())
        self._remote_changed()
        return self.remote_state

    def events(self) -> AsyncIterator[w.AdminEvent]:
        self.loop = asyncio.get_running_loop()
        return self.hub.subscribe()


class FakeClient(FakeBackend):
    """The fake as an in-process ``AdminClient``: its event stream opens with a status event, as
    the real server's does."""

    def events(self) -> AsyncIterator[w.AdminEvent]:
        sub = self.hub.subscribe()

        async def stream() -> AsyncIterator[w.AdminEvent]:
            yield w.StatusEvent(await self.status())
            async for ev in sub:
                yield ev

        return stream()
