"""API-key providers added from the admin API, end to end: a REAL gateway (tests/harness: uvicorn
on 127.0.0.1), mock upstreams (tests/mocks), and the official SDKs as callers.

A provider added with ``POST /admin/accounts/apikey`` (its models listed by the upstream) is
served at once, still served after a restart on the same data directory, and gone once removed.
"""

from __future__ import annotations

import stat

import anthropic
import httpx
import openai
import pytest

from tests.harness import GatewayServer
from tests.mocks import Reply, Text

pytestmark = pytest.mark.e2e

HI = [{"role": "user", "content": "hi"}]
CONFIG = "providers: {}\n"
OLLAMA_KEY = "ollama-key-0001"
ANTHROPIC_KEY = "sk-ant-e2e-secret-0002"


def admin(gw: GatewayServer) -> httpx.Client:
    token = (gw.data_dir / "admin_token").read_text().strip()
    return httpx.Client(base_url=gw.url, headers={"authorization": f"Bearer {token}"}, timeout=20)


def chat(gw: GatewayServer, model: str) -> str:
    with openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0) as c:
        return c.chat.completions.create(model=model, messages=HI).choices[0].message.content


def claude(gw: GatewayServer, model: str, stream: bool = False) -> str:
    with anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0) as c:
        if stream:
            with c.messages.stream(model=model, max_tokens=50, messages=HI) as s:
                return s.get_final_text()
        return c.messages.create(model=model, max_tokens=50, messages=HI).content[0].text


def test_api_key_providers_are_served_at_once_survive_a_restart_and_go_when_removed(mock_upstream_factory, tmp_path):
    local = mock_upstream_factory("openai_chat", api_key=OLLAMA_KEY, models=["llama3.2:3b", "qwen3"])
    local.default = Reply([Text("from the local server")])
    ant = mock_upstream_factory("anthropic", api_key=ANTHROPIC_KEY, models=["claude-live-1"])
    ant.default = Reply([Text("from anthropic")])
    servers: list[GatewayServer] = []

    def start() -> GatewayServer:
        gw = GatewayServer(CONFIG, tmp_path).start()  # the same data dir every time
        servers.append(gw)
        return gw

    try:
        gw = start()
        with admin(gw) as a:
            assert a.get("/admin/accounts").json() == []
            with pytest.raises(openai.BadRequestError):
                chat(gw, "qwen3")
            # an OpenAI-compatible server, its models listed by the server itself
            r = a.post("/admin/accounts/apikey", json={"type": "openai", "name": "ollama", "api_key": OLLAMA_KEY,
                                                        "base_url": local.openai_base_url})
            assert r.status_code == 201, r.text
            assert r.json() == {"name": "ollama", "type": "openai", "label": None, "enabled": True, "order": 1,
                                "source": "admin", "status": "ok", "removable": True, "models": 2}
            assert [(q.method, q.path) for q in local.requests] == [("GET", "/v1/models")]
            assert chat(gw, "qwen3") == "from the local server"  # no restart
            q = local.requests[-1]
            assert (q.path, q.json["model"], q.headers["authorization"]) == (
                "/v1/chat/completions", "qwen3", f"Bearer {OLLAMA_KEY}")
            # an Anthropic key, used by the Anthropic SDK (same dialect: passed through)
            r = a.post("/admin/accounts/apikey", json={"type": "anthropic", "name": "claude", "api_key": ANTHROPIC_KEY,
                                                        "base_url": ant.root_url})
            assert r.status_code == 201 and r.json()["models"] == 1
            assert claude(gw, "claude-live-1") == "from anthropic"
            assert claude(gw, "claude-live-1", stream=True) == "from anthropic"
            assert ant.requests[-1].headers["x-api-key"] == ANTHROPIC_KEY
            assert {"ollama", "claude"} <= set(httpx.get(gw.url + "/health").json()["providers"])
            # the key is never shown back
            for path in ("/admin/accounts", "/admin/providers", "/admin/models", "/admin/routing", "/admin/requests"):
                body = a.get(path).content
                assert OLLAMA_KEY.encode() not in body and ANTHROPIC_KEY.encode() not in body
        for name in ("ollama", "claude"):
            path = gw.data_dir / "accounts" / "apikey" / f"{name}.json"
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
        gw.stop()

        # a restart on the same data dir serves both again
        gw = start()
        with admin(gw) as a:
            accounts = [(x["name"], x["source"], x["removable"]) for x in a.get("/admin/accounts").json()]
            assert accounts == [("ollama", "admin", True), ("claude", "admin", True)]
            assert chat(gw, "llama3.2:3b") == "from the local server"
            assert claude(gw, "claude-live-1") == "from anthropic"
            with openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0) as c:
                assert {"llama3.2:3b", "qwen3", "claude-live-1"} <= {m.id for m in c.models.list()}

            # removed: the model is gone, in each caller's own error format
            assert a.delete("/admin/accounts/ollama").status_code == 204
            with pytest.raises(openai.BadRequestError) as e:
                chat(gw, "qwen3")
            assert e.value.status_code == 400 and e.value.body["code"] == "model_not_found"
            assert a.delete("/admin/accounts/claude").status_code == 204
            with pytest.raises(anthropic.BadRequestError) as e2:
                claude(gw, "claude-live-1")
            assert e2.value.body["type"] == "error" and "claude-live-1" in e2.value.body["error"]["message"]
            assert a.get("/admin/accounts").json() == []
            assert a.delete("/admin/accounts/claude").status_code == 404
        assert not list((gw.data_dir / "accounts" / "apikey").iterdir())
        gw.stop()

        # and they stay gone
        gw = start()
        with admin(gw) as a:
            assert a.get("/admin/accounts").json() == []
        with pytest.raises(openai.BadRequestError):
            chat(gw, "qwen3")
    finally:
        for s in servers:
            s.stop()


def test_a_refused_key_is_shown_and_nothing_is_kept(mock_upstream_factory, gateway_factory):
    up = mock_upstream_factory("gemini", api_key="the-right-key", models=["gemini-2.5-flash"])
    gw = gateway_factory(CONFIG)
    with admin(gw) as a:
        r = a.post("/admin/accounts/apikey", json={"type": "gemini", "name": "gem", "api_key": "wrong-key-77",
                                                    "base_url": up.root_url})
        assert r.status_code == 422
        assert r.json()["error"]["message"].startswith("the upstream refused the key (HTTP 401 from")
        assert b"wrong-key-77" not in r.content
        assert a.get("/admin/accounts").json() == []
        r = a.post("/admin/accounts/apikey", json={"type": "gemini", "name": "gem", "api_key": "the-right-key",
                                                    "base_url": up.root_url})
        assert r.status_code == 201
    # Gemini through the OpenAI SDK (translated), with the key the gateway keeps
    assert isinstance(chat(gw, "gemini-2.5-flash"), str)
    assert up.requests[-1].headers["x-goog-api-key"] == "the-right-key"
