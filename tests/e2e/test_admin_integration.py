"""The admin API and the dashboard wired to the REAL gateway (issue 7's integration).

A real antiapi server (tests/harness: ``create_app`` under uvicorn) with two mock upstreams as
accounts (``openai`` -> mock A, ``anthropic`` -> mock B); the official SDKs make the requests.
Every admin resource is exercised through HTTP with the token from ``<data dir>/admin_token``;
the Textual app runs under Pilot with the real HTTP client; ``antiapi serve`` (dashboard) and
``antiapi tui --url`` run in tmux.
"""

from __future__ import annotations

import asyncio
import os
import queue
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import anthropic
import httpx
import msgspec
import openai
import pytest

from antiapi.wire import admin as w
from antiapi.wire.sse import SSEDecoder
from tests.harness import GatewayServer, free_port
from tests.mocks import Error, Reply, Text

pytestmark = pytest.mark.e2e

ROOT = str(Path(__file__).resolve().parents[2])
HI = [{"role": "user", "content": "hi"}]


def gateway_config(a, b, extra: str = "") -> str:
    """``openai`` (mock A, Chat Completions) and ``anthropic`` (mock B) as two accounts; ``m`` is
    served by both (A first)."""
    return (
        "providers:\n"
        f"  openai: {{type: openai, base_url: '{a.root_url}/v1', api_key: test-key}}\n"
        f"  anthropic: {{type: anthropic, base_url: '{b.root_url}', api_key: test-key}}\n"
        "models:\n"
        "  - {name: gpt-4.1, provider: openai}\n"
        "  - {name: claude-x, provider: anthropic}\n"
        "  - {name: m, provider: openai, model: gpt-4.1}\n"
        "  - {name: m, provider: anthropic, model: claude-x}\n"
    ) + extra


class Env:
    """One gateway, its two upstreams, an admin HTTP client and SDK clients."""

    def __init__(self, gw: GatewayServer, a, b) -> None:
        self.gw, self.a, self.b = gw, a, b
        self.token = (gw.data_dir / "admin_token").read_text().strip()
        self.admin = httpx.Client(base_url=gw.url, headers={"authorization": f"Bearer {self.token}"}, timeout=10)

    def get(self, path: str, **kw) -> httpx.Response:
        r = self.admin.get(path, **kw)
        assert r.status_code == 200, r.text
        return r

    def chat(self, model: str = "gpt-4.1") -> str:
        c = openai.OpenAI(base_url=self.gw.url + "/v1", api_key="x", max_retries=0)
        return c.chat.completions.create(model=model, messages=HI).choices[0].message.content

    def claude(self, model: str = "claude-x", stream: bool = False) -> str:
        c = anthropic.Anthropic(base_url=self.gw.url, api_key="x", max_retries=0)
        if stream:
            with c.messages.stream(model=model, max_tokens=50, messages=HI) as s:
                return s.get_final_text()
        return c.messages.create(model=model, max_tokens=50, messages=HI).content[0].text

    def close(self) -> None:
        self.admin.close()


@pytest.fixture
def env(mock_upstream_factory, gateway_factory):
    a, b = mock_upstream_factory("openai_chat"), mock_upstream_factory("anthropic")
    a.default = Reply([Text("from a")])
    b.default = Reply([Text("from b")])
    e = Env(gateway_factory(gateway_config(a, b, "flows:\n  coding:\n    - {provider: openai, model: gpt-4.1}\n")), a, b)
    yield e
    e.close()


def decode(resp: httpx.Response, typ):
    return msgspec.json.decode(resp.content, type=typ)


class EventReader:
    """``GET /admin/events`` followed in a thread; events queued with their arrival time."""

    def __init__(self, url: str, token: str | None) -> None:
        self.events: queue.Queue = queue.Queue()
        self.status: int | None = None
        self.body = b""
        self._client = httpx.Client(timeout=httpx.Timeout(10, read=None))
        self._headers = {"authorization": f"Bearer {token}"} if token else {}
        self._url = url + "/admin/events"
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._opened.wait(10), "the event stream did not open"

    def _run(self) -> None:
        dec = SSEDecoder()
        try:
            with self._client.stream("GET", self._url, headers=self._headers) as r:
                self.status = r.status_code
                if r.status_code != 200:
                    self.body = r.read()
                    return
                self._opened.set()
                for chunk in r.iter_raw():
                    for frame in dec.feed(chunk):
                        ev = w.decode_event(frame.event, frame.data)
                        if ev is not None:
                            self.events.put((time.monotonic(), ev))
        except Exception:  # closed from the test thread
            pass
        finally:
            self._opened.set()

    def next(self, pred: Callable[[w.AdminEvent], bool], timeout: float = 5.0) -> tuple[float, w.AdminEvent]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no matching admin event")
            try:
                t, ev = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if pred(ev):
                return t, ev

    def close(self) -> None:
        self._client.close()
        self._thread.join(5)


# ---------------------------------------------------------------------------------------- resources


def test_status_accounts_providers_and_models(env):
    env.chat()
    env.gw.records(1)
    status = decode(env.get("/admin/status"), w.Status)
    assert status.url == env.gw.url and status.version
    assert status.accounts == 2 and status.models == 4  # gpt-4.1, claude-x, m + the flow
    assert status.requests_total == 1 and status.requests_per_min == 1.0 and status.errors_per_min == 0.0
    assert 0 <= status.uptime_s < 60 and abs(status.time - time.time()) < 5
    assert env.get("/admin/health").json()["url"] == env.gw.url

    accounts = decode(env.get("/admin/accounts"), list[w.AccountInfo])
    assert [(a.name, a.type, a.order, a.source, a.removable, a.enabled, a.status, a.models) for a in accounts] == [
        ("openai", "openai", 1, "config", False, True, "ok", 2),
        ("anthropic", "anthropic", 2, "config", False, True, "ok", 2),
    ]
    providers = {p.type: p for p in decode(env.get("/admin/providers"), list[w.ProviderType])}
    assert providers["codex"].sign_in and providers["copilot"].sign_in and providers["codex"].accounts == 0
    assert providers["openai"].api_key and providers["openai"].accounts == 1
    assert str(env.gw.config_path) in (providers["openai"].note or "")

    models = decode(env.get("/admin/models"), list[w.ModelInfo])
    assert [(m.name, m.kind, m.accounts) for m in models] == [
        ("claude-x", "model", ["anthropic"]), ("gpt-4.1", "model", ["openai"]), ("m", "model", ["openai", "anthropic"]),
        ("coding", "flow", ["openai"]),
    ]

    # an API-key provider cannot take the name of an existing account (and the key is never echoed)
    r = env.admin.post("/admin/accounts/apikey", json={"type": "openai", "name": "openai", "api_key": "sk-1"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict" and b"sk-1" not in r.content
    # config-file accounts cannot be removed here; unknown ones are 404
    r = env.admin.delete("/admin/accounts/openai")
    assert r.status_code == 422 and "config file" in r.json()["error"]["message"]
    assert env.admin.delete("/admin/accounts/nobody").status_code == 404
    assert env.admin.patch("/admin/accounts/nobody", json={"enabled": False}).status_code == 404
    # sign-in: an unknown provider is 404; Copilot has no browser mode
    assert env.admin.post("/admin/accounts/signin", json={"provider": "openai"}).status_code == 404
    assert env.admin.post("/admin/accounts/signin", json={"provider": "copilot", "mode": "browser"}).status_code == 422
    assert env.admin.get("/admin/accounts/signin/nope").status_code == 404


def test_flow_and_chain_edits_route_the_next_sdk_request(env):
    a, b = env.a, env.b
    routing = decode(env.get("/admin/routing"), w.RoutingView)
    assert routing.targets == ["anthropic", "openai"]
    assert [(f.name, f.entries, f.source) for f in routing.flows] == [("coding", [w.Entry("openai", "gpt-4.1")], "config")]
    assert env.chat("route:coding") == "from a"

    # replace the flow: B first, then A
    r = env.admin.put("/admin/routing/flows/coding", json={
        "entries": [{"provider": "anthropic", "model": "claude-x"}, {"provider": "openai", "model": "gpt-4.1"}],
        "strategy": "ordered",
    })
    assert r.status_code == 200
    flow = decode(r, w.Flow)
    assert flow.source == "admin" and [e.provider for e in flow.entries] == ["anthropic", "openai"]
    n_a, n_b = len(a.requests), len(b.requests)
    assert env.chat("route:coding") == "from b"
    assert len(b.requests) == n_b + 1 and len(a.requests) == n_a
    rec = env.gw.records(2)[-1]
    assert rec.provider == "anthropic" and rec.upstream_model == "claude-x" and rec.route == ["anthropic/claude-x: served"]

    # a new flow by its bare name; then deleted: the model is unknown again
    assert env.admin.put("/admin/routing/flows/fast", json={"entries": [{"provider": "openai", "model": "gpt-4.1"}]}).status_code == 200
    assert env.claude("fast") == "from a"
    assert env.admin.delete("/admin/routing/flows/fast").status_code == 204
    assert env.admin.delete("/admin/routing/flows/fast").status_code == 404
    with pytest.raises(openai.BadRequestError) as exc:
        env.chat("route:fast")
    assert exc.value.status_code == 400 and "model_not_found" in str(exc.value.body)

    # invalid edits: checked by the API (422 with every problem), nothing changes
    r = env.admin.put("/admin/routing/flows/bad", json={"entries": [{"provider": "nowhere"}]})
    assert r.status_code == 422
    details = r.json()["error"]["details"]
    assert any("'nowhere' is neither an account nor a provider type" in d for d in details)
    assert any("name the upstream model" in d for d in details)
    assert "bad" not in {f.name for f in decode(env.get("/admin/routing"), w.RoutingView).flows}

    # a chain for an official model id: gpt-4.1 now goes to B's claude-x
    r = env.admin.put("/admin/routing/chains/gpt-4.1", json={"entries": [{"provider": "anthropic", "model": "claude-x"}]})
    assert r.status_code == 200 and decode(r, w.Chain).model == "gpt-4.1"
    assert env.chat("gpt-4.1") == "from b"
    routing = decode(env.get("/admin/routing"), w.RoutingView)
    assert [(c.model, c.entries) for c in routing.chains] == [("gpt-4.1", [w.Entry("anthropic", "claude-x")])]
    assert env.admin.delete("/admin/routing/chains/gpt-4.1").status_code == 204
    assert env.chat("gpt-4.1") == "from a"

    # Smart Switch and the default strategy
    r = env.admin.patch("/admin/routing", json={"smart_switch": False, "strategy": "round_robin"})
    view = decode(r, w.RoutingView)
    assert (view.smart_switch, view.strategy) == (False, "round_robin")
    assert env.gw.app.state.routing.settings.strategy == "round_robin"
    assert env.admin.patch("/admin/routing", json={"strategy": "fastest"}).status_code == 400


def test_settings_route_real_requests_and_survive_a_restart(mock_upstream_factory, tmp_path):
    a, b = mock_upstream_factory("openai_chat"), mock_upstream_factory("anthropic")
    a.default = Reply([Text("from a")])
    b.default = Reply([Text("from b")])
    text = gateway_config(a, b)
    gw = GatewayServer(text, tmp_path / "gw").start()
    env = Env(gw, a, b)
    try:
        s = decode(env.get("/admin/settings"), w.Settings)
        assert s == w.Settings(background_patterns=["*haiku*"])
        r = env.admin.patch("/admin/settings", json={
            "default_model": "claude-x", "background_model": "gpt-4.1", "background_patterns": ["*mini*"], "auto_open": True,
        })
        assert r.status_code == 200
        assert decode(r, w.Settings) == w.Settings(default_model="claude-x", background_model="gpt-4.1",
                                                   background_patterns=["*mini*"], auto_open=True)
        # no model: the default model (B); a background-class name: the background model (A)
        raw = httpx.post(gw.url + "/v1/chat/completions", json={"messages": HI}, timeout=10)
        assert raw.status_code == 200 and raw.json()["choices"][0]["message"]["content"] == "from b"
        assert env.chat("claude-mini") == "from a"
        rec = gw.records(2)[-1]
        assert (rec.model, rec.target, rec.provider) == ("claude-mini", "gpt-4.1", "openai")
        assert env.admin.put("/admin/routing/flows/keep", json={"entries": [{"provider": "anthropic", "model": "claude-x"}]}).status_code == 200
        # unknown fields are refused; null clears a model
        assert env.admin.patch("/admin/settings", json={"default_modle": "x"}).status_code == 400
        r = env.admin.patch("/admin/settings", json={"default_model": None})
        assert decode(r, w.Settings).default_model is None
        rid = gw.records(2)[-1].request_id
    finally:
        env.close()
        gw.stop()
    # a restart on the same data directory keeps edits, settings and the request log
    gw2 = GatewayServer(text, tmp_path / "gw").start()
    env2 = Env(gw2, a, b)
    try:
        assert env2.token == env.token
        s = decode(env2.get("/admin/settings"), w.Settings)
        assert s == w.Settings(default_model=None, background_model="gpt-4.1", background_patterns=["*mini*"], auto_open=True)
        assert "keep" in {f.name for f in decode(env2.get("/admin/routing"), w.RoutingView).flows}
        assert env2.chat("route:keep") == "from b"
        old = decode(env2.get(f"/admin/requests/{rid}"), w.RequestRecord)
        assert (old.model, old.target, old.provider, old.status) == ("claude-mini", "gpt-4.1", "openai", 200)
        assert len(decode(env2.get("/admin/requests"), list[w.RequestRecord])) == 3
    finally:
        env2.close()
        gw2.stop()


def test_account_switches_and_quota_cooldowns_follow_real_requests(env):
    reader = EventReader(env.gw.url, env.token)
    try:
        reader.next(lambda e: isinstance(e, w.StatusEvent))
        quotas = decode(env.get("/admin/quotas"), list[w.AccountQuota])
        assert [(q.account, q.type, q.status, q.enabled, q.cooldowns) for q in quotas] == [
            ("openai", "openai", "ok", True, []), ("anthropic", "anthropic", "ok", True, []),
        ]
        # A answers 429 (retry in 30 s): m fails over to B; A's gpt-4.1 cools down (pushed at once)
        env.a.enqueue(Error.rate_limit(retry_after=30))
        assert env.chat("m") == "from b"
        done = time.monotonic()
        t, ev = reader.next(lambda e: isinstance(e, w.QuotaEvent) and e.quota.account == "openai", timeout=3)
        assert t - done < 1.0
        cd = ev.quota.cooldowns
        assert [(c.model, c.category, c.hard) for c in cd] == [("gpt-4.1", "limit", True)]
        assert cd[0].reason.startswith("429 rate_limit") and 25 < cd[0].until - time.time() <= 31
        q = {q.account: q for q in decode(env.get("/admin/quotas"), list[w.AccountQuota])}
        assert q["openai"].cooldowns == cd and q["anthropic"].cooldowns == []
        assert q["openai"].status == "ok"  # a model's cooldown; the account itself is fine

        # disable B: m has nowhere left to go (A cools down) -> a 429 to the client
        r = env.admin.patch("/admin/accounts/anthropic", json={"enabled": False})
        assert r.status_code == 200 and decode(r, w.AccountInfo) .enabled is False
        _, ev = reader.next(lambda e: isinstance(e, w.AccountsEvent))
        assert {a.name: (a.enabled, a.status) for a in ev.accounts} == {"openai": (True, "ok"), "anthropic": (False, "disabled")}
        q = {q.account: q for q in decode(env.get("/admin/quotas"), list[w.AccountQuota])}
        assert (q["anthropic"].enabled, q["anthropic"].status) == (False, "disabled")
        n_b = len(env.b.requests)
        with pytest.raises(openai.APIStatusError) as exc:
            env.chat("m")
        assert exc.value.status_code == 429
        assert len(env.b.requests) == n_b  # a disabled account is never asked
        rec = env.gw.records(2)[-1]
        assert rec.route[0].startswith("openai/gpt-4.1: skipped (cooling down")
        assert rec.route[1].startswith("anthropic/claude-x: skipped (disabled")
        # enabled again: served
        assert env.admin.patch("/admin/accounts/anthropic", json={"enabled": True}).status_code == 200
        assert env.chat("m") == "from b"
    finally:
        reader.close()


def test_usage_aggregates_and_the_request_log_after_real_requests(env):
    with openai.OpenAI(base_url=env.gw.url + "/v1", api_key="x", max_retries=0) as c:
        raw = c.chat.completions.with_raw_response.create(model="gpt-4.1", messages=HI)
        first_id = raw.headers["x-request-id"]
        assert raw.parse().choices[0].message.content == "from a"
    assert env.claude(stream=True) == "from b"
    env.a.enqueue(Error.rate_limit(retry_after=30))
    assert env.chat("m") == "from b"  # A 429 -> B
    with pytest.raises(openai.BadRequestError):
        env.chat("no-such-model")
    env.gw.records(4)

    by_account = {g.key: g for g in decode(env.get("/admin/usage", params={"by": "account"}), list[w.UsageAggregate])}
    assert (by_account["openai"].requests, by_account["openai"].errors) == (1, 0)
    assert (by_account["anthropic"].requests, by_account["anthropic"].errors) == (2, 0)
    assert by_account["anthropic"].output_tokens > 0 and by_account["anthropic"].avg_latency_ms > 0
    assert (by_account[None].requests, by_account[None].errors) == (1, 1)  # the unknown model: no account
    by_model = {g.key: g.requests for g in decode(env.get("/admin/usage", params={"by": "model"}), list[w.UsageAggregate])}
    assert by_model == {"gpt-4.1": 1, "claude-x": 1, "m": 1, "no-such-model": 1}
    days = decode(env.get("/admin/usage", params={"by": "day"}), list[w.UsageAggregate])
    assert [(d.key, d.requests) for d in days] == [(time.strftime("%Y-%m-%d", time.gmtime()), 4)]
    future = decode(env.get("/admin/usage", params={"by": "model", "since": time.time() + 60}), list[w.UsageAggregate])
    assert future == []
    assert env.admin.get("/admin/usage", params={"by": "week"}).status_code == 400

    log = decode(env.get("/admin/requests"), list[w.RequestRecord])
    assert [r.model for r in log] == ["no-such-model", "m", "claude-x", "gpt-4.1"]  # newest first
    failover = log[1]
    assert failover.attempts == ["openai/gpt-4.1: 429 rate_limit"]
    assert failover.route == ["openai/gpt-4.1: 429 rate_limit", "anthropic/claude-x: served"]
    assert (failover.provider, failover.upstream_model, failover.status) == ("anthropic", "claude-x", 200)
    assert log[2].stream is True and log[2].client_dialect == "anthropic" and log[2].route == ["anthropic/claude-x: served"]
    assert log[0].status == 400 and log[0].error

    def query(**params) -> list[str]:
        return [r.model for r in decode(env.get("/admin/requests", params=params), list[w.RequestRecord])]

    assert query(status="error") == ["no-such-model"]
    assert query(status="ok", account="anthropic") == ["m", "claude-x"]
    assert query(model="CLAUDE-X") == ["m", "claude-x"]  # the upstream model of the failover counts too
    assert query(limit=2) == ["no-such-model", "m"]
    assert query(since=time.time() + 60) == []
    assert env.admin.get("/admin/requests", params={"status": "bad"}).status_code == 400

    detail = decode(env.get(f"/admin/requests/{first_id}"), w.RequestRecord)
    assert (detail.request_id, detail.model, detail.provider, detail.route) == (first_id, "gpt-4.1", "openai", ["openai/gpt-4.1: served"])
    assert env.admin.get("/admin/requests/req_nope").status_code == 404


def test_the_event_stream_delivers_a_request_within_a_second(env):
    reader = EventReader(env.gw.url, env.token)
    try:
        _, first = reader.next(lambda e: True)
        assert isinstance(first, w.StatusEvent) and first.status.url == env.gw.url
        with openai.OpenAI(base_url=env.gw.url + "/v1", api_key="x", max_retries=0) as c:
            raw = c.chat.completions.with_raw_response.create(model="gpt-4.1", messages=HI)
        done = time.monotonic()
        rid = raw.headers["x-request-id"]
        t, ev = reader.next(lambda e: isinstance(e, w.RequestEvent), timeout=1.0)
        assert t - done < 1.0
        rec = ev.record
        assert (rec.request_id, rec.model, rec.provider, rec.status, rec.route) == (rid, "gpt-4.1", "openai", 200, ["openai/gpt-4.1: served"])
        # an edit is pushed too
        env.admin.put("/admin/routing/flows/coding", json={"entries": [{"provider": "anthropic", "model": "claude-x"}]})
        _, ev = reader.next(lambda e: isinstance(e, w.RoutingEvent), timeout=1.0)
        assert ev.routing.flows[0].entries == [w.Entry("anthropic", "claude-x")]
        env.admin.patch("/admin/settings", json={"default_model": "m"})
        _, ev = reader.next(lambda e: isinstance(e, w.SettingsEvent), timeout=1.0)
        assert ev.settings.default_model == "m"
    finally:
        reader.close()


def test_a_copilot_sign_in_from_the_admin_api_is_served_at_once_and_removable(gateway_factory):
    from tests.providers.copilot.conftest import template_config
    from tests.providers.copilot.mock import CopilotMock

    mock = CopilotMock().start()
    try:
        mock.script_device("alice", interval=0, pending=1, user_code="WDJB-MJHT")
        gw = gateway_factory(template_config(mock))
        env = Env(gw, None, None)
        reader = EventReader(gw.url, env.token)
        try:
            assert decode(env.get("/admin/accounts"), list[w.AccountInfo]) == []
            r = env.admin.post("/admin/accounts/signin", json={"provider": "copilot"})
            assert r.status_code == 201
            flow = decode(r, w.SignInFlow)
            assert (flow.provider, flow.user_code, flow.verification_uri) == ("copilot", "WDJB-MJHT", "https://github.com/login/device")
            # the new account is pushed first, then the finished sign-in
            _, ev = reader.next(lambda e: isinstance(e, w.AccountsEvent), timeout=10)
            assert [(a.name, a.label, a.source, a.removable) for a in ev.accounts] == [("copilot:alice", "alice", "signed_in", True)]
            _, ev = reader.next(lambda e: isinstance(e, w.SignInEvent) and e.flow.status == "done")
            assert ev.flow.label == "alice" and ev.flow.flow_id == flow.flow_id and ev.flow.message == "Signed in as alice."
            assert decode(env.get(f"/admin/accounts/signin/{flow.flow_id}"), w.SignInFlow).status == "done"
            assert (gw.data_dir / "accounts" / "copilot" / "alice.json").exists()
            # served without a restart: its models are routed to it
            assert "copilot:alice" in decode(env.get("/admin/routing"), w.RoutingView).targets
            models = {m.name: m.accounts for m in decode(env.get("/admin/models"), list[w.ModelInfo])}
            assert models["gpt-4.1"] == ["copilot:alice"]
            mock.enqueue(Reply([Text("from copilot")]))
            c = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
            assert c.chat.completions.create(model="gpt-4.1", messages=HI).choices[0].message.content == "from copilot"
            assert gw.records(1)[-1].provider == "copilot:alice"
            # removed: credentials deleted, no longer routed
            assert env.admin.delete("/admin/accounts/copilot:alice").status_code == 204
            assert not (gw.data_dir / "accounts" / "copilot" / "alice.json").exists()
            assert decode(env.get("/admin/accounts"), list[w.AccountInfo]) == []
            with pytest.raises(openai.BadRequestError):
                c.chat.completions.create(model="gpt-4.1", messages=HI)
        finally:
            reader.close()
            env.close()
    finally:
        mock.stop()


def test_a_codex_browser_sign_in_finished_by_pasting_the_redirect_url(gateway_factory):
    from tests.providers.codex.conftest import A, codex_config
    from tests.providers.codex.mock import CodexMock

    mock = CodexMock().start()
    try:
        mock.add_account(A, plan="plus")
        gw = gateway_factory(codex_config(mock))
        env = Env(gw, None, None)
        try:
            flow = decode(env.admin.post("/admin/accounts/signin", json={"provider": "codex"}), w.SignInFlow)
            assert flow.status == "pending" and flow.url and "/oauth/authorize?" in flow.url
            assert "paste the address" in (flow.message or "")
            location = httpx.get(flow.url).headers["location"]  # where the browser is sent after signing in
            bad = env.admin.post(f"/admin/accounts/signin/{flow.flow_id}/complete", json={"pasted": location.replace("state=", "state=x")})
            assert bad.status_code == 422 and "State mismatch" in bad.json()["error"]["message"]
            r = env.admin.post(f"/admin/accounts/signin/{flow.flow_id}/complete", json={"pasted": location})
            assert r.status_code == 200, r.text
            done = decode(r, w.SignInFlow)
            assert (done.status, done.label) == ("done", A)
            accounts = decode(env.get("/admin/accounts"), list[w.AccountInfo])
            assert [(a.name, a.type, a.source, a.removable) for a in accounts] == [(f"codex:{A}", "codex", "signed_in", True)]
            assert accounts[0].models > 0
            model = next(m.name for m in decode(env.get("/admin/models"), list[w.ModelInfo]) if m.accounts == [f"codex:{A}"])
            mock.enqueue(Reply([Text("from codex")]))
            c = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
            assert c.chat.completions.create(model=model, messages=HI).choices[0].message.content == "from codex"
            # a finished sign-in cannot be completed twice
            assert env.admin.post(f"/admin/accounts/signin/{flow.flow_id}/complete", json={"pasted": location}).status_code == 409
            # a second one, cancelled
            second = decode(env.admin.post("/admin/accounts/signin", json={"provider": "codex"}), w.SignInFlow)
            assert decode(env.admin.delete(f"/admin/accounts/signin/{second.flow_id}"), w.SignInFlow).status == "cancelled"
        finally:
            env.close()
    finally:
        mock.stop()


# ---------------------------------------------------------------------------------------- auth

_ROUTES = [
    ("GET", "/admin/status"), ("GET", "/admin/accounts"), ("PATCH", "/admin/accounts/openai"), ("GET", "/admin/routing"),
    ("PUT", "/admin/routing/flows/coding"), ("DELETE", "/admin/routing/flows/coding"), ("GET", "/admin/settings"),
    ("PATCH", "/admin/settings"), ("GET", "/admin/quotas"), ("GET", "/admin/usage"), ("GET", "/admin/requests"),
    ("GET", "/admin/models"), ("POST", "/admin/accounts/signin"),
]


def test_the_admin_api_needs_the_token(env):
    env.chat()
    for headers in ({}, {"authorization": "Bearer wrong"}, {"x-admin-token": env.token[:-1]}):
        for method, path in _ROUTES:
            body = {"entries": [{"provider": "openai", "model": "gpt-4.1"}], "enabled": False} if method in ("PUT", "PATCH") else None
            r = httpx.request(method, env.gw.url + path, headers=headers, json=body)
            assert r.status_code == 401, (method, path, headers)
            assert r.json()["error"]["code"] == "unauthorized" and b"gpt" not in r.content
    for token in (None, "wrong", env.token + "x"):
        reader = EventReader(env.gw.url, token)
        try:
            assert reader.status == 401 and b"unauthorized" in reader.body
        finally:
            reader.close()
    # nothing changed
    assert [f.name for f in decode(env.get("/admin/routing"), w.RoutingView).flows] == ["coding"]
    assert env.gw.app.state.routing.table.accounts["openai"].enabled
    assert env.admin.get("/admin/status", headers={"authorization": "", "x-admin-token": env.token}).status_code == 200
    # the token file is private
    assert (env.gw.data_dir / "admin_token").stat().st_mode & 0o777 == 0o600
    # the schema describes the admin API only and needs no token; the client API is unchanged
    schema = httpx.get(env.gw.url + "/admin/schema/openapi.json").json()
    assert "/admin/routing/flows/{name}" in schema["paths"] and "/v1/chat/completions" not in schema["paths"]
    assert schema["components"]["securitySchemes"]["AdminToken"]["scheme"] == "bearer"
    page = httpx.get(env.gw.url + "/routing")
    assert page.status_code == 200 and "antiapi tui --web" in page.text
    r = httpx.get(env.gw.url + "/nope")
    assert r.status_code == 404 and r.json()["error"]["message"].startswith("Unknown endpoint GET /nope")


# ---------------------------------------------------------------------------------------- the dashboard (Pilot)


async def until(pilot, cond: Callable[[], bool], timeout: float = 5.0) -> float:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        await pilot.pause(0.02)
    return time.monotonic() - t0


def dashboard(env: Env):
    from antiapi.tui.app import AntiapiApp
    from antiapi.tui.client import HttpAdminClient

    return AntiapiApp(HttpAdminClient(env.gw.url, env.token), close_client=True)


async def test_dashboard_shows_a_real_sdk_request_within_a_second(env):
    from antiapi.tui.screens.requests import RequestDetailScreen
    from antiapi.tui.widgets.quota import QuotaList
    from antiapi.tui.widgets.status import StatusLine

    await asyncio.to_thread(env.chat)
    app = dashboard(env)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.connected and app.query_one(QuotaList).bar("anthropic") is not None)
        await until(pilot, lambda: env.gw.url in str(app.query_one(StatusLine).render()))
        await pilot.press("2")
        table = app.request_table()
        await until(pilot, lambda: table.row_count == 1)
        await asyncio.to_thread(env.claude, "claude-x", True)
        done = time.monotonic()
        await until(pilot, lambda: table.row_count == 2, timeout=1.0)
        assert time.monotonic() - done < 1.0
        row = table.get_row_at(1)
        assert [str(c) for c in row[1:5]] == ["200", "claude-x", "anthropic", "claude-x"]
        await pilot.press("end", "enter")
        await until(pilot, lambda: isinstance(app.screen, RequestDetailScreen))
        body = str(app.screen.query_one("#detail-body").render())
        assert "1. anthropic/claude-x: served" in body and "(anthropic, stream)" in body


async def test_a_routing_edit_in_the_dashboard_moves_the_next_sdk_request(env):
    from textual.widgets import DataTable, Input

    from antiapi.tui.screens.routing import ChainEditorScreen, EntryScreen

    assert await asyncio.to_thread(env.chat, "route:coding") == "from a"
    app = dashboard(env)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.connected)
        await pilot.press("3")
        routes = app.query_one("#routing-table", DataTable)
        await until(pilot, lambda: routes.row_count == 1 and app.focused is routes)
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, ChainEditorScreen))
        editor = app.screen
        assert editor.entries == [w.Entry("openai", "gpt-4.1")]
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, EntryScreen))
        await pilot.press(*"anthropic", "enter")
        app.screen.query_one("#entry-model", Input).value = "claude-x"
        await pilot.press("enter", "enter")
        await until(pilot, lambda: app.screen is editor)
        await pilot.press("K")  # move it first
        assert editor.entries == [w.Entry("anthropic", "claude-x"), w.Entry("openai", "gpt-4.1")]
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.screen is not editor)
        flows = env.gw.app.state.routing.table.flows
        assert [e.provider for e in flows["coding"].entries] == ["anthropic", "openai"]
        n_a = len(env.a.requests)
        assert await asyncio.to_thread(env.chat, "route:coding") == "from b"
        assert len(env.a.requests) == n_a
        # the pane shows the saved flow, now an admin edit
        await until(pilot, lambda: "1. anthropic → claude-x" in str(app.query_one("#routing-entries").render()))
    view = decode(env.get("/admin/routing"), w.RoutingView)
    assert view.flows[0].source == "admin"


# ---------------------------------------------------------------------------------------- real terminals

tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install -y tmux)")


class Tmux:
    def __init__(self, command: str, width: int = 100, height: int = 30) -> None:
        self.name = f"antiapi-it-{uuid.uuid4().hex[:8]}"
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height), command], check=True)

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True).stdout

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def wait_for(self, text: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not on screen after {timeout}s:\n{screen}")

    def kill(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def shell(*argv: str) -> str:
    return f"cd {shlex.quote(ROOT)} && PYTHONPATH={shlex.quote(ROOT)} " + " ".join(shlex.quote(a) for a in argv)


@tmux
def test_antiapi_serve_shows_the_dashboard_and_q_stops_the_server(mock_upstream_factory, tmp_path):
    a, b = mock_upstream_factory("openai_chat"), mock_upstream_factory("anthropic")
    a.default = Reply([Text("from a")])
    data = tmp_path / "data"
    data.mkdir()
    (data / "config.yaml").write_text(gateway_config(a, b))
    port = free_port()
    term = Tmux(shell(sys.executable, "-m", "antiapi", "serve", "--port", str(port), "--data-dir", str(data))
                + "; echo EXIT=$?; sleep 60")
    try:
        screen = term.wait_for("● live", timeout=30)
        assert f"http://127.0.0.1:{port}" in screen and "1 Quota" in screen
        assert "openai" in screen and "anthropic" in screen
        c = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
        assert c.chat.completions.create(model="gpt-4.1", messages=HI).choices[0].message.content == "from a"
        term.keys("2")
        screen = term.wait_for("gpt-4.1", timeout=5)
        assert "200" in screen
        term.keys("q")
        screen = term.wait_for("EXIT=0", timeout=20)
        # the banner is back on the normal screen, and the server is gone
        assert f"antiapi 0.1.0 listening on http://127.0.0.1:{port}" in screen and "antiapi stopped." in screen
        assert not port_open(port)
        assert (data / "admin_token").exists() and (data / "antiapi.log").exists()
        conn_rows = __import__("sqlite3").connect(data / "antiapi.db").execute("SELECT model, status FROM usage").fetchall()
        assert conn_rows == [("gpt-4.1", 200)]  # flushed at shutdown
    finally:
        term.kill()


@tmux
def test_antiapi_tui_attaches_to_a_running_gateway(env):
    env.chat()
    term = Tmux(shell(sys.executable, "-m", "antiapi", "tui", "--url", env.gw.url, "--data-dir", str(env.gw.data_dir),
                      "--screen", "requests") + "; echo EXIT=$?; sleep 60")
    try:
        screen = term.wait_for("● live", timeout=30)
        assert env.gw.url in screen and "gpt-4.1" in screen
        env.claude()
        term.wait_for("claude-x", timeout=5)
        term.keys("3")
        screen = term.wait_for("Smart Switch", timeout=5)
        assert "coding" in screen
        term.keys("q")
        term.wait_for("EXIT=0", timeout=15)
        assert port_open(env.gw.port)  # the gateway keeps running
    finally:
        term.kill()


def test_antiapi_serve_without_a_terminal_runs_headless_and_stops_with_a_stream_open(mock_upstream, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "config.yaml").write_text(gateway_config(mock_upstream, mock_upstream))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "antiapi", "serve", "--port", str(port), "--data-dir", str(data)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    url = f"http://127.0.0.1:{port}"
    reader = None
    try:
        deadline = time.monotonic() + 20
        while not port_open(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        token = (data / "admin_token").read_text().strip()
        r = httpx.get(url + "/admin/status", headers={"authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.json()["url"] == url
        reader = EventReader(url, token)
        reader.next(lambda e: isinstance(e, w.StatusEvent))
        t0 = time.monotonic()
        proc.terminate()
        out, err = proc.communicate(timeout=20)
        # an open event stream does not hold the shutdown (it is ended, not waited for)
        assert time.monotonic() - t0 < 4.0
    finally:
        if reader is not None:
            reader.close()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert "no terminal for the dashboard (stdin/stdout is not a TTY); running headless." in err
    assert f"listening on {url}" in err
    assert proc.returncode in (0, -15)
