"""The admin API (antiapi.server.admin) through a real Litestar app with a fake backend.

Ordinary resources go through Litestar's AsyncTestClient; the SSE event stream through a real
uvicorn server (the in-process client buffers whole responses).
"""

from __future__ import annotations

import asyncio
import os
import stat
import time
import types

import httpx
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from antiapi.server.admin import (
    AdminBackend,
    AdminError,
    EventHub,
    SignInManager,
    admin_openapi_config,
    admin_router,
    aggregate_from_row,
    load_or_create_token,
    quota_from_view,
    record_from_usage,
    web_handlers,
)
from antiapi.server.usage import UsageRecord
from antiapi.wire import admin as w
from antiapi.wire.sse import SSEDecoder
from tests.tui.fakes import T0, FakeBackend
from tests.tui.server import AdminServer

TOKEN = "s3cret-admin-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}


def make_app(backend: FakeBackend, web_url=None) -> Litestar:
    return Litestar(
        [admin_router(backend, TOKEN), *web_handlers(web_url)],
        openapi_config=admin_openapi_config("0.1.0"),
    )


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
async def client(backend):
    async with AsyncTestClient(make_app(backend)) as c:
        yield c


def error_of(resp: httpx.Response) -> w.ErrorDetail:
    return msgspec.json.decode(resp.content, type=w.ErrorBody).error


# ---------------------------------------------------------------------------------------- auth

_ADMIN_ROUTES = [
    ("GET", "/admin/status"), ("GET", "/admin/health"), ("GET", "/admin/providers"), ("GET", "/admin/accounts"),
    ("PATCH", "/admin/accounts/openai"), ("DELETE", "/admin/accounts/openai"), ("POST", "/admin/accounts/apikey"),
    ("POST", "/admin/accounts/signin"), ("GET", "/admin/accounts/signin/f1"), ("POST", "/admin/accounts/signin/f1/complete"),
    ("DELETE", "/admin/accounts/signin/f1"), ("GET", "/admin/routing"), ("PATCH", "/admin/routing"),
    ("PUT", "/admin/routing/flows/coding"), ("DELETE", "/admin/routing/flows/coding"),
    ("PUT", "/admin/routing/chains/gpt-4.1"), ("DELETE", "/admin/routing/chains/gpt-4.1"), ("GET", "/admin/settings"),
    ("PATCH", "/admin/settings"), ("GET", "/admin/quotas"), ("GET", "/admin/usage"), ("GET", "/admin/requests"),
    ("GET", "/admin/requests/req_a1"), ("GET", "/admin/models"), ("GET", "/admin/events"),
    ("GET", "/admin/keys"), ("POST", "/admin/keys"), ("PATCH", "/admin/keys/1"), ("DELETE", "/admin/keys/1"),
    ("GET", "/admin/remote"), ("PATCH", "/admin/remote"), ("POST", "/admin/remote/tunnel"), ("DELETE", "/admin/remote/tunnel"),
]


def test_route_list_covers_every_admin_route(backend):
    app = make_app(backend)
    declared = {
        (m, r.path) for r in app.routes if r.path.startswith("/admin/") and not r.path.startswith("/admin/schema")
        for m in getattr(r, "methods", ()) if m not in ("HEAD", "OPTIONS")
    }
    assert len(declared) == len(_ADMIN_ROUTES)


@pytest.mark.parametrize(("method", "path"), _ADMIN_ROUTES)
@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer wrong"}, {"x-admin-token": TOKEN + "x"},
                                     {"authorization": f"Basic {TOKEN}"}, {"x-admin-token": TOKEN[:-1]}])
async def test_every_route_refuses_a_missing_or_wrong_token(client, backend, method, path, headers):
    body = {"entries": [{"provider": "openai", "model": "m"}]} if method in ("PUT", "POST", "PATCH") else None
    resp = await client.request(method, path, headers=headers, json=body)
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"].startswith("Bearer")
    err = error_of(resp)
    assert err.code == "unauthorized" and "admin token" in err.message
    # never any data, and nothing changed
    assert b"codex" not in resp.content and b"gpt" not in resp.content
    assert b"laptop" not in resp.content and b"trycloudflare" not in resp.content
    assert not [c for c in backend.calls if c[0] in ("create_key", "revoke_key", "update_key", "start_tunnel",
                                                     "stop_tunnel", "update_remote")]
    assert backend.calls == [] and backend.status_calls == 0


async def test_bearer_and_x_admin_token_are_both_accepted(client):
    assert (await client.get("/admin/status", headers=AUTH)).status_code == 200
    assert (await client.get("/admin/status", headers={"x-admin-token": TOKEN})).status_code == 200
    assert (await client.get("/admin/status", headers={"authorization": f"bearer  {TOKEN} "})).status_code == 200


def test_an_empty_token_is_refused_at_construction(backend):
    with pytest.raises(ValueError):
        admin_router(backend, "")


async def test_401_stays_admin_json_inside_the_real_gateway_app(backend):
    """The gateway renders HTTPException in the OpenAI error shape; the admin router keeps its own."""
    from antiapi.server.app import create_app

    app = create_app(types.SimpleNamespace(data_dir=None), providers={}, store=False)
    app.register(admin_router(backend, TOKEN))
    async with AsyncTestClient(app) as c:
        resp = await c.get("/admin/quotas")
        assert resp.status_code == 401 and error_of(resp).code == "unauthorized"
        bad = await c.patch("/admin/settings", headers=AUTH, json={"nope": 1})
        assert bad.status_code == 400 and error_of(bad).details == ["data: Object contains unknown field `nope`"]
        ok = await c.get("/admin/quotas", headers=AUTH)
        assert ok.status_code == 200 and ok.json()[0]["account"] == "codex:me@example.com"


def test_backend_fake_satisfies_the_protocol(backend):
    assert isinstance(backend, AdminBackend)


# ---------------------------------------------------------------------------------------- token file


def test_load_or_create_token_writes_a_private_file_once(tmp_path):
    t1 = load_or_create_token(tmp_path)
    path = tmp_path / "admin_token"
    assert len(t1) >= 40 and path.read_text().strip() == t1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_token(tmp_path) == t1
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_load_or_create_token_fixes_loose_permissions_and_replaces_an_empty_file(tmp_path):
    path = tmp_path / "admin_token"
    path.write_text("mine\n")
    os.chmod(path, 0o644)
    assert load_or_create_token(tmp_path) == "mine"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("  \n")
    new = load_or_create_token(tmp_path)
    assert new and new != "mine" and path.read_text().strip() == new


# ---------------------------------------------------------------------------------------- resources


async def test_status_providers_models(client):
    st = msgspec.json.decode((await client.get("/admin/status", headers=AUTH)).content, type=w.Status)
    assert (st.version, st.requests_per_min, st.errors_per_min, st.accounts) == ("0.1.0", 12.0, 1.0, 3)
    assert st.uptime_s == 7380.0
    health = await client.get("/admin/health", headers=AUTH)
    assert health.json()["version"] == "0.1.0"
    prov = msgspec.json.decode((await client.get("/admin/providers", headers=AUTH)).content, type=list[w.ProviderType])
    assert {p.type: (p.sign_in, p.api_key) for p in prov}["copilot"] == (True, False)
    models = (await client.get("/admin/models", headers=AUTH)).json()
    assert models[2] == {"name": "coding", "kind": "flow", "accounts": ["codex:me@example.com", "copilot:octo", "openai"]}


async def test_accounts_enable_disable_remove(client, backend):
    accts = (await client.get("/admin/accounts", headers=AUTH)).json()
    assert [a["name"] for a in accts] == ["codex:me@example.com", "copilot:octo", "openai"]
    r = await client.patch("/admin/accounts/copilot:octo", headers=AUTH, json={"enabled": False})
    assert r.status_code == 200 and r.json()["enabled"] is False and r.json()["status"] == "disabled"
    assert backend.calls[-1] == ("set_account_enabled", "copilot:octo", False)
    r = await client.patch("/admin/accounts/nobody", headers=AUTH, json={"enabled": True})
    assert r.status_code == 404 and "nobody" in error_of(r).message
    r = await client.patch("/admin/accounts/openai", headers=AUTH, json={"enabled": "yes"})
    assert r.status_code == 400
    r = await client.delete("/admin/accounts/codex:me@example.com", headers=AUTH)
    assert r.status_code == 204 and r.content == b""
    assert backend.calls[-1] == ("remove_account", "codex:me@example.com")
    r = await client.delete("/admin/accounts/openai", headers=AUTH)
    assert r.status_code == 422 and "config file" in error_of(r).message


async def test_api_key_accounts_unsupported_note_and_validation(client, backend):
    r = await client.post("/admin/accounts/apikey", headers=AUTH, json={"type": "openai", "name": "work", "api_key": "sk-1"})
    assert r.status_code == 501
    err = error_of(r)
    assert err.code == "unsupported" and "config file" in err.message
    assert b"sk-1" not in r.content
    r = await client.post("/admin/accounts/apikey", headers=AUTH, json={"type": "openai", "name": " ", "api_key": ""})
    assert r.status_code == 422 and error_of(r).details == ["name: required"]
    assert "***" in repr(w.ApiKeyAccount(type="openai", name="x", api_key="sk-secret"))
    assert "sk-secret" not in repr(w.ApiKeyAccount(type="openai", name="x", api_key="sk-secret"))


async def test_signin_device_code_then_done(client, backend):
    r = await client.post("/admin/accounts/signin", headers=AUTH, json={"provider": "copilot"})
    assert r.status_code == 201
    flow = msgspec.json.decode(r.content, type=w.SignInFlow)
    assert (flow.status, flow.user_code, flow.verification_uri) == ("pending", "ABCD-1234", "https://github.com/login/device")
    assert flow.expires_at == T0 + 900 and flow.url is None
    got = msgspec.json.decode((await client.get(f"/admin/accounts/signin/{flow.flow_id}", headers=AUTH)).content, type=w.SignInFlow)
    assert got.status == "pending"
    backend.approve_signin()
    for _ in range(100):
        got = msgspec.json.decode((await client.get(f"/admin/accounts/signin/{flow.flow_id}", headers=AUTH)).content, type=w.SignInFlow)
        if got.status != "pending":
            break
        await asyncio.sleep(0.01)
    assert (got.status, got.label) == ("done", "octocat")
    assert ("signed_in", "copilot", "octocat") in backend.calls
    assert any(a.name == "copilot:octocat" for a in backend.account_list)


async def test_signin_browser_url_paste_and_cancel(client, backend):
    r = await client.post("/admin/accounts/signin", headers=AUTH, json={"provider": "codex", "mode": "browser"})
    flow = msgspec.json.decode(r.content, type=w.SignInFlow)
    assert flow.url == "https://auth.example.com/authorize?state=s1" and flow.user_code is None
    assert "paste" in (flow.message or "")
    bad = await client.post(f"/admin/accounts/signin/{flow.flow_id}/complete", headers=AUTH, json={"pasted": "http://x/cb"})
    assert bad.status_code == 422 and "code=" in error_of(bad).message
    ok = await client.post(f"/admin/accounts/signin/{flow.flow_id}/complete", headers=AUTH,
                           json={"pasted": "http://localhost:1455/auth/callback?code=abc&state=s1"})
    assert ok.status_code == 200 and ok.json()["status"] == "done" and ok.json()["label"] == "new@example.com"
    # a second flow, cancelled
    flow2 = msgspec.json.decode((await client.post("/admin/accounts/signin", headers=AUTH, json={"provider": "codex"})).content, type=w.SignInFlow)
    c = await client.delete(f"/admin/accounts/signin/{flow2.flow_id}", headers=AUTH)
    assert c.status_code == 200 and c.json()["status"] == "cancelled"
    assert backend.flow_objects[-1].cancelled
    assert (await client.get("/admin/accounts/signin/nope", headers=AUTH)).status_code == 404
    r = await client.post("/admin/accounts/signin", headers=AUTH, json={"provider": "gemini"})
    assert r.status_code == 404 and "codex, copilot" in error_of(r).message
    r = await client.post("/admin/accounts/signin", headers=AUTH, json={"provider": "codex", "mode": "carrier-pigeon"})
    assert r.status_code == 400


async def test_routing_flows_chains_switches(client, backend):
    view = msgspec.json.decode((await client.get("/admin/routing", headers=AUTH)).content, type=w.RoutingView)
    assert view.smart_switch is True and view.strategy == "ordered"
    assert [f.name for f in view.flows] == ["coding"] and [c.model for c in view.chains] == ["gpt-4.1"]
    assert "codex" in view.targets and "copilot:octo" in view.targets
    # reorder = PUT with the entries in the new order
    entries = [{"provider": "openai", "model": "gpt-4.1"}, {"provider": "codex", "model": "gpt-5", "account": "me@example.com"}]
    r = await client.put("/admin/routing/flows/coding", headers=AUTH, json={"entries": entries, "strategy": "round_robin"})
    assert r.status_code == 200 and r.json()["entries"] == entries
    assert backend.calls[-1] == ("put_flow", "coding", [w.Entry("openai", "gpt-4.1"), w.Entry("codex", "gpt-5", "me@example.com")], "round_robin")
    # validated before the backend sees it
    n = len(backend.calls)
    r = await client.put("/admin/routing/flows/bad name", headers=AUTH, json={"entries": [{"provider": "nowhere"}]})
    assert r.status_code == 422
    assert error_of(r).details == [
        "flow name 'bad name': use letters, digits and . _ - : @ + (no spaces, no 'route:' prefix)",
        "entry 1: 'nowhere' is neither an account nor a provider type here",
        "entry 1: name the upstream model (flows have no default model)",
    ]
    r = await client.put("/admin/routing/flows/x", headers=AUTH, json={"entries": [], "strategy": "random"})
    assert r.status_code == 400  # not one of the strategies: msgspec refuses the body
    assert len(backend.calls) == n
    # chains: model ids may contain "/"; entries may omit the model; no entries = Smart Switch
    r = await client.put("/admin/routing/chains/meta-llama/Llama-3.3-70B", headers=AUTH, json={"entries": [{"provider": "openai"}]})
    assert r.status_code == 200 and r.json()["model"] == "meta-llama/Llama-3.3-70B"
    assert backend.calls[-1] == ("put_chain", "meta-llama/Llama-3.3-70B", [w.Entry("openai")], None)
    assert (await client.put("/admin/routing/chains/gpt-5", headers=AUTH, json={})).status_code == 200
    assert (await client.delete("/admin/routing/chains/meta-llama/Llama-3.3-70B", headers=AUTH)).status_code == 204
    assert backend.calls[-1] == ("delete_chain", "meta-llama/Llama-3.3-70B")
    assert (await client.delete("/admin/routing/flows/coding", headers=AUTH)).status_code == 204
    assert (await client.delete("/admin/routing/flows/coding", headers=AUTH)).status_code == 404
    r = await client.patch("/admin/routing", headers=AUTH, json={"smart_switch": False})
    assert r.json()["smart_switch"] is False and r.json()["strategy"] == "ordered"
    assert backend.calls[-1] == ("update_routing", {"smart_switch": False})
    r = await client.patch("/admin/routing", headers=AUTH, json={"strategy": "least_used"})
    assert r.json()["strategy"] == "least_used" and backend.calls[-1] == ("update_routing", {"strategy": "least_used"})
    assert (await client.patch("/admin/routing", headers=AUTH, json={"strategy": "fastest"})).status_code == 400


async def test_settings_patch_semantics(client, backend):
    s = (await client.get("/admin/settings", headers=AUTH)).json()
    assert s == {"default_model": "gpt-4.1", "background_model": "gpt-4.1-mini", "background_patterns": ["*haiku*"],
                 "auto_start_tunnel": False, "auto_open": False}
    r = await client.patch("/admin/settings", headers=AUTH, json={"background_model": None, "auto_start_tunnel": True})
    assert r.status_code == 200
    assert backend.calls[-1] == ("update_settings", {"background_model": None, "auto_start_tunnel": True})
    assert r.json()["background_model"] is None and r.json()["default_model"] == "gpt-4.1"
    assert (await client.patch("/admin/settings", headers=AUTH, json={"auto_open": "sometimes"})).status_code == 400


async def test_quotas(client):
    qs = msgspec.json.decode((await client.get("/admin/quotas", headers=AUTH)).content, type=list[w.AccountQuota])
    codex = qs[0]
    assert codex.used_percent == 42.0 and [x.name for x in codex.windows] == ["5h", "weekly"]
    assert qs[1].cooldowns[0].reason == "429 rate_limit" and qs[1].status == "cooling_down"


async def test_usage_aggregates(client, backend):
    rows = (await client.get("/admin/usage", headers=AUTH, params={"by": "model", "since": T0 - 60})).json()
    assert {r["key"]: (r["requests"], r["errors"], r["input_tokens"]) for r in rows} == {
        "claude-sonnet-4": (1, 0, 1200), "gpt-4.1": (1, 1, 0)}
    assert backend.calls[-1] == ("usage", "model", T0 - 60, None)
    r = await client.get("/admin/usage", headers=AUTH, params={"by": "color"})
    assert r.status_code == 400 and "account, model, upstream_model, day" in error_of(r).message


async def test_request_log_filters_and_detail(client):
    async def ids(**params):
        r = await client.get("/admin/requests", headers=AUTH, params=params)
        assert r.status_code == 200, r.text
        return [x["request_id"] for x in r.json()]

    assert await ids() == ["req_b2", "req_a1"]  # newest first
    assert await ids(status="error") == ["req_b2"]
    assert await ids(status="ok") == ["req_a1"]
    assert await ids(status="4xx") == ["req_b2"]
    assert await ids(status="429") == ["req_b2"]
    assert await ids(model="gpt-5") == ["req_a1"]  # the upstream model matches too
    assert await ids(account="me@example.com") == ["req_a1"]
    assert await ids(since=T0 - 20) == ["req_b2"]
    assert await ids(limit=1) == ["req_b2"]
    r = await client.get("/admin/requests", headers=AUTH, params={"status": "meh"})
    assert r.status_code == 400 and "ok, error" in error_of(r).message
    assert (await client.get("/admin/requests", headers=AUTH, params={"limit": 0})).status_code == 400
    assert (await client.get("/admin/requests", headers=AUTH, params={"limit": 5000})).status_code == 400
    d = msgspec.json.decode((await client.get("/admin/requests/req_b2", headers=AUTH)).content, type=w.RequestRecord)
    assert d.route == ["openai/gpt-4.1: 429 rate_limit", "copilot:octo/gpt-4.1: cooling down for 30 s"]
    assert d.error == "rate limited by every account"
    assert (await client.get("/admin/requests/nope", headers=AUTH)).status_code == 404


async def test_openapi_schema_documents_every_admin_operation(client):
    r = await client.get("/admin/schema/openapi.json")
    assert r.status_code == 200
    schema = r.json()
    assert schema["components"]["securitySchemes"]["AdminToken"] == {
        "type": "http", "scheme": "bearer",
        "description": "The admin token from the data directory's admin_token file (or X-Admin-Token).",
    }
    paths = schema["paths"]
    for method, path in _ADMIN_ROUTES:
        if path == "/admin/health":
            continue  # an alias, hidden from the schema
        templated = {"/admin/accounts/openai": "/admin/accounts/{name}", "/admin/accounts/signin/f1": "/admin/accounts/signin/{flow_id}",
                     "/admin/accounts/signin/f1/complete": "/admin/accounts/signin/{flow_id}/complete",
                     "/admin/routing/flows/coding": "/admin/routing/flows/{name}", "/admin/routing/chains/gpt-4.1": "/admin/routing/chains/{model}",
                     "/admin/requests/req_a1": "/admin/requests/{request_id}", "/admin/keys/1": "/admin/keys/{ident}"}.get(path, path)
        op = paths[templated][method.lower()]
        assert op["security"] == [{"AdminToken": []}], (method, path)
        assert op["tags"] == ["admin"]
    assert "AccountQuota" in schema["components"]["schemas"]


async def test_web_paths_redirect_or_explain(backend):
    async with AsyncTestClient(make_app(backend, web_url="http://127.0.0.1:8965")) as c:
        for path, screen in [("/quota", "quota"), ("/routing", "routing"), ("/settings", "settings"), ("/remote-panel", "remote")]:
            r = await c.get(path, follow_redirects=False)
            assert r.status_code == 307 and r.headers["location"] == f"http://127.0.0.1:8965/?screen={screen}"
    async with AsyncTestClient(make_app(backend)) as c:
        r = await c.get("/routing")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "antiapi tui --web" in r.text and "Routing screen" in r.text
    target = {"url": None}
    async with AsyncTestClient(Litestar(web_handlers(lambda: target["url"]))) as c:
        assert (await c.get("/quota", follow_redirects=False)).status_code == 200
        target["url"] = "http://127.0.0.1:9999/"
        assert (await c.get("/quota", follow_redirects=False)).headers["location"] == "http://127.0.0.1:9999/?screen=quota"


# ---------------------------------------------------------------------------------------- helpers


def test_converters_from_gateway_shapes():
    view = {
        "account": "codex:a", "type": "codex", "label": "a", "enabled": True, "order": 1, "status": "cooling_down",
        "used_percent": 97.0,
        "quota": {"status": "ok", "source": "headers", "updated_at": 5.0, "limited_until": None, "plan": "pro", "detail": None,
                  "windows": [{"name": "5h", "used_percent": 97.0, "remaining": None, "entitlement": None, "window_minutes": 300, "resets_at": 99.0}]},
        "cooldowns": [{"model": None, "until": 50.0, "reason": "429", "category": "limit", "hard": True, "failures": 2}],
        "cooldown": None,
    }
    q = quota_from_view(view)
    assert (q.account, q.plan, q.source, q.windows[0].resets_at, q.cooldowns[0].failures) == ("codex:a", "pro", "headers", 99.0, 2)
    assert quota_from_view({"account": "x", "type": "openai", "quota": None, "cooldowns": []}).windows == []
    rec = UsageRecord(time=1.0, request_id="r", endpoint="/v1/messages", client_dialect="anthropic", model="m", status=200,
                      latency_ms=3.0, provider="p", attempts=["a: 429"], route=["a: 429", "p/m: served"])
    rr = record_from_usage(rec)
    assert (rr.request_id, rr.route, rr.provider) == ("r", ["a: 429", "p/m: served"], "p")
    row = {"id": 7, **msgspec.structs.asdict(rec), "stream": 0}
    assert record_from_usage(row).stream is False
    agg = aggregate_from_row({"day": "2025-10-09", "requests": 3, "errors": None, "input_tokens": 10, "output_tokens": 2,
                              "cached_tokens": None, "reasoning_tokens": 0, "avg_latency_ms": 5.5, "avg_ttft_ms": None}, "day")
    assert (agg.key, agg.requests, agg.errors, agg.cached_tokens, agg.avg_latency_ms) == ("2025-10-09", 3, 0, 0, 5.5)


async def test_event_hub_fans_out_and_drops_oldest_when_a_subscriber_lags():
    hub = EventHub(size=2)
    a, b = hub.subscribe(), hub.subscribe()
    assert hub.subscribers == 2
    st = w.Status(version="v", url="u", started_at=0, uptime_s=1)
    for n in range(3):
        hub.publish(w.StatusEvent(msgspec.structs.replace(st, uptime_s=n)))
    assert [(await a.__anext__()).status.uptime_s for _ in range(2)] == [1, 2]
    assert (await b.__anext__()).status.uptime_s == 1
    await a.aclose()
    assert hub.subscribers == 1


async def test_signin_manager_reports_failures():
    class Failing:
        async def start(self):
            return {"user_code": "X", "verification_uri": "https://v"}

        async def wait(self):
            raise RuntimeError("the device code expired before the sign-in was approved")

    class Refusing:
        async def start(self):
            raise RuntimeError("GitHub refused to start the sign-in")

        async def wait(self):
            raise AssertionError

    seen: list[w.AdminEvent] = []
    m = SignInManager({"copilot": lambda mode: Failing(), "codex": lambda mode: Refusing()}, publish=seen.append, clock=lambda: 0.0)
    flow = await m.start("copilot")
    for _ in range(50):
        if m.get(flow.flow_id).status != "pending":
            break
        await asyncio.sleep(0.01)
    got = m.get(flow.flow_id)
    assert got.status == "failed" and got.error == "the device code expired before the sign-in was approved"
    assert [e.flow.status for e in seen] == ["pending", "failed"]
    with pytest.raises(AdminError) as e:
        await m.start("codex")
    assert e.value.status == 502 and "GitHub refused" in e.value.message


# ---------------------------------------------------------------------------------------- SSE (real server)


@pytest.fixture
def sse_server():
    server = AdminServer(status_interval=0.3).start()
    yield server
    server.stop()


async def _next_event(lines, decoder: SSEDecoder, pending: list) -> w.AdminEvent:
    while not pending:
        chunk = await lines.__anext__()
        for frame in decoder.feed(chunk):
            ev = w.decode_event(frame.event, frame.data)
            if ev is not None:
                pending.append(ev)
    return pending.pop(0)


async def test_event_stream_delivers_status_requests_and_quota_live(sse_server):
    backend = sse_server.backend
    async with httpx.AsyncClient(base_url=sse_server.url, headers={"x-admin-token": sse_server.token}, trust_env=False) as http:
        refused = await http.get("/admin/events", headers={"x-admin-token": "nope"})
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
        async with http.stream("GET", "/admin/events", timeout=httpx.Timeout(5.0)) as resp:
            assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
            chunks = resp.aiter_bytes()
            dec, pending = SSEDecoder(), []
            first = await _next_event(chunks, dec, pending)
            assert isinstance(first, w.StatusEvent) and first.status.version == "0.1.0"
            assert backend.hub.subscribers == 1
            t0 = time.monotonic()
            rec = w.RequestRecord(time=T0, request_id="req_live", model="gpt-4.1", status=200, provider="openai")
            backend.add_record(rec)
            backend.set_quota("codex:me@example.com", 77.0)
            got: list[w.AdminEvent] = []
            while len([e for e in got if not isinstance(e, w.StatusEvent)]) < 2:
                got.append(await asyncio.wait_for(_next_event(chunks, dec, pending), 5))
            assert time.monotonic() - t0 < 1.0
            live = [e for e in got if not isinstance(e, w.StatusEvent)]
            assert live[0] == w.RequestEvent(rec)
            assert isinstance(live[1], w.QuotaEvent) and live[1].quota.used_percent == 77.0
            assert live[1].quota.windows[0].used_percent == 77.0
            # periodic status ticks keep coming while idle
            tick = await asyncio.wait_for(_next_event(chunks, dec, pending), 2)
            assert isinstance(tick, w.StatusEvent)
    # the subscription ends with the client
    for _ in range(100):
        if backend.hub.subscribers == 0:
            break
        await asyncio.sleep(0.02)
    assert backend.hub.subscribers == 0


def test_decode_event_ignores_unknown_types_and_reads_untyped_frames():
    name, data = w.encode_event(w.SettingsEvent(w.Settings(default_model="m")))
    assert name == "settings"
    assert w.decode_event(None, data) == w.SettingsEvent(w.Settings(default_model="m"))
    assert w.decode_event("tunnel", b'{"type":"tunnel","up":true}') is None
    assert w.decode_event(None, b'{"type":"tunnel"}') is None
    assert w.decode_event(None, b"not json") is None
    with pytest.raises(msgspec.ValidationError):
        w.decode_event("quota", b'{"type":"quota","quota":{"account":1}}')
