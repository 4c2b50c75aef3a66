"""API-key providers added through the admin API (``POST /admin/accounts/apikey``): validation,
conflicts, the model-list check against mock upstreams, the saved file, removal, and what
``build_providers`` makes of saved providers at the next start.

The real gateway app (``create_app`` + ``build_providers`` from a config file) runs in Litestar's
test client; the upstreams are the mocks of tests/mocks on 127.0.0.1.
"""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from antiapi.config import load_config
from antiapi.providers import stored
from antiapi.providers.registry import build_providers
from antiapi.server.admin import AdminError
from antiapi.server.app import create_app
from antiapi.wire import admin as w
from tests.harness import free_port
from tests.mocks import Raw

TOKEN = "apikey-test-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
SECRET = "sk-SECRET-7f3a9c1e5b"  # never to be seen in an answer, a message or a log line
HI = [{"role": "user", "content": "hi"}]


def config_text(extra: str = "") -> str:
    return "providers:\n  work:\n    type: openai\n    base_url: http://127.0.0.1:9/v1\n    api_key: k\n" + extra


class Gateway:
    """The gateway app over a data dir; ``client`` is its test client (lifespan running)."""

    def __init__(self, data_dir: Path, text: str = config_text()) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "config.yaml").write_text(text)
        self.config = load_config(data_dir / "config.yaml", data_dir=data_dir, env={})
        self.providers = build_providers(self.config)
        self.app = create_app(self.config, providers=self.providers, store=False, admin_token=TOKEN)
        self.client: AsyncTestClient | None = None

    @property
    def backend(self):
        return self.app.state.admin

    async def __aenter__(self) -> Gateway:
        self.client = AsyncTestClient(self.app, base_url="http://127.0.0.1:8964")  # a local Host, as clients send
        await self.client.__aenter__()
        return self

    async def __aexit__(self, *exc) -> None:
        assert self.client is not None
        await self.client.__aexit__(*exc)

    async def add(self, **body):
        return await self.client.post("/admin/accounts/apikey", headers=AUTH, json=body)

    async def chat(self, model: str):
        return await self.client.post("/v1/chat/completions", json={"model": model, "messages": HI})


def error_of(resp) -> w.ErrorDetail:
    return msgspec.json.decode(resp.content, type=w.ErrorBody).error


@pytest.fixture
def everything_logged(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


# ---------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"type": "bedrock", "name": "x", "api_key": SECRET}, 422, ["type:", "openai, anthropic, gemini", "'bedrock'"]),
    ({"type": "codex", "name": "x", "api_key": SECRET}, 422, ["signed in instead"]),
    ({"type": "openai", "name": "me:work", "api_key": SECRET, "models": ["m"]}, 422, ["name:", "':' is kept"]),
    ({"type": "openai", "name": "-dash", "api_key": SECRET, "models": ["m"]}, 422, ["name:", "start with a letter"]),
    ({"type": "openai", "name": "codex", "api_key": SECRET, "models": ["m"]}, 422, ["provider type"]),
    ({"type": "openai", "name": "x", "api_key": SECRET, "base_url": "ftp://host/v1", "models": ["m"]}, 422,
     ["base_url:", "http:// or https://"]),
    ({"type": "openai", "name": "x", "api_key": SECRET, "base_url": "localhost:11434", "models": ["m"]}, 422,
     ["base_url:"]),
    ({"type": "openai", "name": "x", "api_key": SECRET, "base_url": "http://h/v1?x=1", "models": ["m"]}, 422,
     ["base_url:", "query"]),
    ({"type": "openai", "name": "x", "api_key": "sk with space", "models": ["m"]}, 422, ["api_key:", "spaces"]),
    ({"type": "openai", "name": "x", "api_key": SECRET, "models": ["two words"]}, 422, ["models:", "not a model id"]),
    ({"type": "openai", "name": "work", "api_key": SECRET, "models": ["m"]}, 409, ["'work'", "config file"]),
    ({"type": "anthropic", "name": "WORK", "api_key": SECRET, "models": ["m"]}, 409, ["'work'", "another name"]),
])
async def test_bad_requests_say_what_to_fix_and_never_echo_the_key(tmp_path, body, status, words, everything_logged):
    async with Gateway(tmp_path / "d") as gw:
        r = await gw.add(**body)
        assert r.status_code == status, r.text
        err = error_of(r)
        assert err.code == ("conflict" if status == 409 else "invalid_value")
        for word in words:
            assert word in err.message
        assert SECRET.encode() not in r.content and b"sk with space" not in r.content
        assert not (tmp_path / "d" / "accounts" / "apikey").exists() or not list((tmp_path / "d" / "accounts" / "apikey").iterdir())
        assert [a.name for a in await gw.backend.accounts()] == ["work"]
    assert SECRET not in everything_logged.text


async def test_a_key_is_required_except_for_an_openai_compatible_server(tmp_path, mock_upstream_factory):
    local = mock_upstream_factory("openai_chat", api_key=None, models=["llama3.2"])  # like a local Ollama
    async with Gateway(tmp_path / "d") as gw:
        for ptype in ("anthropic", "gemini", "openai"):
            with pytest.raises(ValueError, match="api_key: required"):
                await gw.backend.add_api_key(w.ApiKeyAccount(type=ptype, name="nokey", models=["m"]))
        with pytest.raises(ValueError, match="api_key: required for the official OpenAI API"):
            await gw.backend.add_api_key(w.ApiKeyAccount(type="openai", name="nokey", base_url="https://api.openai.com/v1/"))
        info = await gw.backend.add_api_key(w.ApiKeyAccount(type="openai", name="ollama", base_url=local.openai_base_url))
        assert (info.name, info.source, info.removable, info.models) == ("ollama", "admin", True, 1)
        assert "authorization" not in local.requests[-1].headers  # no key: no Authorization header
        r = await gw.chat("llama3.2")
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "mock reply: hi"
        assert "authorization" not in local.requests[-1].headers
        saved = json.loads((tmp_path / "d" / "accounts" / "apikey" / "ollama.json").read_text())
        assert saved["api_key"] is None and saved["models"] == ["llama3.2"] and saved["listed"] is True


# ---------------------------------------------------------------------------------------- the model-list check


async def test_models_listed_by_the_upstream_are_served_at_once_and_saved_privately(tmp_path, mock_upstream_factory,
                                                                                    everything_logged):
    up = mock_upstream_factory("openai_chat", api_key=SECRET, models=["llama3.2:3b", "qwen3"])
    async with Gateway(tmp_path / "d") as gw:
        assert (await gw.chat("qwen3")).status_code == 400  # not served yet
        r = await gw.add(type="openai", name="ollama", api_key=SECRET, base_url=up.openai_base_url + "/")
        assert r.status_code == 201, r.text
        info = msgspec.json.decode(r.content, type=w.AccountInfo)
        assert (info.name, info.type, info.source, info.removable, info.enabled, info.models) == (
            "ollama", "openai", "admin", True, True, 2)
        assert SECRET.encode() not in r.content
        listing = up.requests[0]
        assert (listing.method, listing.path, listing.headers["authorization"]) == ("GET", "/v1/models", f"Bearer {SECRET}")
        # served now: the ids as the upstream lists them
        r = await gw.chat("llama3.2:3b")
        assert r.status_code == 200 and up.requests[-1].json["model"] == "llama3.2:3b"
        models = (await gw.client.get("/v1/models")).json()["data"]
        assert {"llama3.2:3b", "qwen3"} <= {m["id"] for m in models}
        admin_models = (await gw.client.get("/admin/models", headers=AUTH)).json()
        assert {"name": "qwen3", "kind": "model", "accounts": ["ollama"]} in admin_models
        for path in ("/admin/accounts", "/admin/providers", "/admin/routing", "/admin/quotas", "/admin/models"):
            assert SECRET.encode() not in (await gw.client.get(path, headers=AUTH)).content
        # the file: 0600 in a 0700 directory, with what a restart needs
        path = tmp_path / "d" / "accounts" / "apikey" / "ollama.json"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        saved = json.loads(path.read_text())
        assert saved == {**saved, "name": "ollama", "type": "openai", "base_url": up.openai_base_url,
                         "api_key": SECRET, "models": ["llama3.2:3b", "qwen3"], "listed": True}
        assert not [p for p in path.parent.iterdir() if p.suffix != ".json"]  # no temp files left
        # a second one of the same name: 409, without asking the upstream
        n = len(up.requests)
        r = await gw.add(type="openai", name="Ollama", api_key=SECRET, base_url=up.openai_base_url)
        assert r.status_code == 409 and "'ollama' exists already" in error_of(r).message
        assert len(up.requests) == n
    assert SECRET not in everything_logged.text
    assert SECRET not in repr(stored.ApiKeyStore(tmp_path / "d").load("ollama"))


async def test_given_models_skip_the_upstream(tmp_path, mock_upstream_factory):
    up = mock_upstream_factory("anthropic", api_key=SECRET)
    async with Gateway(tmp_path / "d") as gw:
        r = await gw.add(type="anthropic", name="claude", api_key=f" {SECRET}\n", base_url=up.root_url,
                         models=["claude-x", " claude-y ", "claude-x", ""])
        assert r.status_code == 201 and r.json()["models"] == 2
        assert up.requests == []  # nothing was asked
        r = await gw.client.post("/v1/messages", json={"model": "claude-y", "max_tokens": 10, "messages": HI})
        assert r.status_code == 200
        q = up.requests[-1]
        assert (q.path, q.headers["x-api-key"], q.json["model"]) == ("/v1/messages", SECRET, "claude-y")
        saved = stored.ApiKeyStore(tmp_path / "d").load("claude")
        assert saved is not None and saved.models == ("claude-x", "claude-y") and saved.listed is False


@pytest.mark.parametrize("dialect", ["openai_chat", "anthropic", "gemini"])
async def test_a_wrong_key_is_refused_by_the_upstream(tmp_path, mock_upstream_factory, dialect):
    up = mock_upstream_factory(dialect, api_key="the-right-key")
    ptype, base = {"openai_chat": ("openai", up.openai_base_url), "anthropic": ("anthropic", up.root_url),
                   "gemini": ("gemini", up.root_url)}[dialect]
    async with Gateway(tmp_path / "d") as gw:
        r = await gw.add(type=ptype, name="mine", api_key=SECRET, base_url=base)
        assert r.status_code == 422
        err = error_of(r)
        assert err.message.startswith("the upstream refused the key (HTTP 401 from") and "check api_key" in err.message
        assert SECRET.encode() not in r.content and SECRET[-4:].encode() not in r.content
        assert up.requests[0].method == "GET" and up.requests[0].path.endswith("/models")
        assert not stored.ApiKeyStore(tmp_path / "d").names()
        assert [a.name for a in await gw.backend.accounts()] == ["work"]
        # the right key works, and Gemini's ids come without "models/"
        r = await gw.add(type=ptype, name="mine", api_key="the-right-key", base_url=base)
        assert r.status_code == 201, r.text
        expected = {"openai_chat": "gpt-4.1", "anthropic": "claude-sonnet-4-6", "gemini": "gemini-2.5-flash"}[dialect]
        assert {"name": expected, "kind": "model", "accounts": ["mine"]} in (
            await gw.client.get("/admin/models", headers=AUTH)).json()


async def test_an_unreachable_empty_or_odd_upstream_is_a_422_that_says_what_to_do(tmp_path, mock_upstream_factory):
    port = free_port()
    empty = mock_upstream_factory("openai_chat", models=[])
    html = mock_upstream_factory("openai_chat")
    html.handler = lambda req: Raw(body="<html>hello</html>", content_type="text/html") if req.endpoint == "models" else None
    gone = mock_upstream_factory("openai_chat")
    gone.handler = lambda req: Raw(status=404, body={"error": {"message": "no such path for test-key"}}) if req.endpoint == "models" else None
    async with Gateway(tmp_path / "d") as gw:
        r = await gw.add(type="openai", name="a", api_key=SECRET, base_url=f"http://127.0.0.1:{port}/v1")
        msg = error_of(r).message
        assert r.status_code == 422 and msg.startswith(f"could not reach http://127.0.0.1:{port}/v1")
        assert "list the model ids in models to skip this check" in msg
        r = await gw.add(type="openai", name="a", api_key="test-key", base_url=empty.openai_base_url)
        assert r.status_code == 422 and "lists no models; give the model ids to serve in models" in error_of(r).message
        r = await gw.add(type="openai", name="a", api_key="test-key", base_url=html.openai_base_url)
        assert r.status_code == 422 and "did not answer the model list request with a model list" in error_of(r).message
        r = await gw.add(type="openai", name="a", api_key="test-key", base_url=gone.openai_base_url)
        assert r.status_code == 422 and "answered the model list request with HTTP 404" in error_of(r).message
        assert "no such path for ***" in error_of(r).message and b"test-key" not in r.content  # the key is redacted
        assert not stored.ApiKeyStore(tmp_path / "d").names()
        # listing the models explicitly skips the check: served even though nothing answers yet
        r = await gw.add(type="openai", name="a", api_key=SECRET, base_url=f"http://127.0.0.1:{port}/v1", models=["later"])
        assert r.status_code == 201 and r.json()["models"] == 1


# ---------------------------------------------------------------------------------------- removal, restart


async def test_remove_deletes_the_file_stops_routing_and_closes_the_provider(tmp_path, mock_upstream_factory):
    up = mock_upstream_factory("openai_chat", models=["qwen3"])
    async with Gateway(tmp_path / "d") as gw:
        assert (await gw.add(type="openai", name="ollama", api_key="test-key", base_url=up.openai_base_url)).status_code == 201
        provider = gw.app.state.routing.providers["ollama"]
        assert (await gw.chat("qwen3")).status_code == 200
        r = await gw.client.delete("/admin/accounts/ollama", headers=AUTH)
        assert r.status_code == 204
        assert not (tmp_path / "d" / "accounts" / "apikey" / "ollama.json").exists()
        assert provider.client.is_closed
        assert "ollama" not in gw.app.state.routing.providers
        r = await gw.chat("qwen3")
        assert r.status_code == 400 and r.json()["error"]["code"] == "model_not_found"
        assert [a.name for a in await gw.backend.accounts()] == ["work"]
        assert (await gw.client.delete("/admin/accounts/ollama", headers=AUTH)).status_code == 404
        # config-file entries stay where they are
        r = await gw.client.delete("/admin/accounts/work", headers=AUTH)
        assert r.status_code == 422 and "config file" in error_of(r).message
        # the name is free again
        assert (await gw.add(type="openai", name="ollama", api_key="test-key", base_url=up.openai_base_url)).status_code == 201


async def test_saved_providers_are_served_at_the_next_start(tmp_path, mock_upstream_factory):
    up = mock_upstream_factory("openai_chat", models=["qwen3"])
    ant = mock_upstream_factory("anthropic", models=["claude-x"])
    async with Gateway(tmp_path / "d") as gw:
        assert (await gw.add(type="openai", name="ollama", api_key="test-key", base_url=up.openai_base_url)).status_code == 201
        assert (await gw.add(type="anthropic", name="claude", api_key="test-key", base_url=ant.root_url,
                             models=["claude-x", "claude-old"])).status_code == 201
    up.models = ["qwen3", "qwen3-coder"]  # the upstream's list changed meanwhile
    async with Gateway(tmp_path / "d") as gw2:
        accounts = await gw2.backend.accounts()
        assert [(a.name, a.source, a.removable) for a in accounts] == [
            ("work", "config", False), ("ollama", "admin", True), ("claude", "admin", True)]
        names = set(gw2.app.state.routing.names())
        # listed models are asked again; given ones stay as given
        assert {"qwen3", "qwen3-coder", "claude-x", "claude-old"} <= names
        assert (await gw2.chat("qwen3-coder")).status_code == 200
        r = await gw2.client.post("/v1/messages", json={"model": "claude-x", "max_tokens": 10, "messages": HI})
        assert r.status_code == 200
    up.stop()  # the upstream is down at the next start: the saved list still routes
    async with Gateway(tmp_path / "d") as gw3:
        assert {"qwen3", "claude-x"} <= set(gw3.app.state.routing.names())


def test_a_config_entry_of_the_same_name_wins(tmp_path, caplog):
    data = tmp_path / "d"
    data.mkdir()
    store = stored.ApiKeyStore(data)
    store.save(stored.new_entry(type="anthropic", name="work", api_key=SECRET, models=["claude-x"]))
    store.save(stored.new_entry(type="openai", name="extra", api_key=SECRET, base_url="http://127.0.0.1:9/v1",
                                models=["m"]))
    (store.root / "broken.json").write_text("{not json")
    (data / "config.yaml").write_text(config_text())
    cfg = load_config(data / "config.yaml", data_dir=data, env={})
    with caplog.at_level(logging.WARNING):
        providers = build_providers(cfg)
    assert list(providers) == ["work", "extra"]
    assert providers["work"].type == "openai" and not getattr(providers["work"], "stored", False)
    assert providers["extra"].stored and providers["extra"].dynamic_models
    assert "work is in the config file and was also added from the dashboard" in caplog.text
    assert "broken.json: skipped" in caplog.text
    assert SECRET not in caplog.text


# ---------------------------------------------------------------------------------------- providers, units


async def test_providers_say_keys_can_be_added_here(tmp_path):
    async with Gateway(tmp_path / "d") as gw:
        prov = {p.type: p for p in await gw.backend.providers()}
        for t in ("openai", "anthropic", "gemini"):
            assert prov[t].api_key and not prov[t].sign_in
            assert prov[t].note.startswith("Add one here, served at once") and str(gw.config.path) in prov[t].note
        assert "OpenAI-compatible" in prov["openai"].note
        assert prov["codex"].sign_in and not prov["codex"].api_key


async def test_concurrent_adds_of_one_name_conflict(tmp_path, mock_upstream_factory):
    import asyncio

    up = mock_upstream_factory("openai_chat", models=["qwen3"])
    async with Gateway(tmp_path / "d") as gw:
        acct = w.ApiKeyAccount(type="openai", name="twin", api_key="test-key", base_url=up.openai_base_url)
        results = await asyncio.gather(gw.backend.add_api_key(acct), gw.backend.add_api_key(acct), return_exceptions=True)
        assert sum(isinstance(r, w.AccountInfo) for r in results) == 1
        errors = [r for r in results if isinstance(r, AdminError)]
        assert len(errors) == 1 and errors[0].status == 409


def test_new_entry_normalises_and_the_store_round_trips(tmp_path):
    e = stored.new_entry(type=" OpenAI ", name=" lab.gpu@home ", api_key=None, base_url=" http://10.0.0.2:8000/v1/ ",
                         models=["a", "a", " b "], now=5.0)
    assert (e.type, e.name, e.api_key, e.base_url, e.models, e.created_at) == (
        "openai", "lab.gpu@home", None, "http://10.0.0.2:8000/v1", ("a", "b"), 5.0)
    pc = e.provider_config()
    assert (pc.name, pc.type, pc.base_url, pc.api_key, pc.models, pc.api) == (
        "lab.gpu@home", "openai", "http://10.0.0.2:8000/v1", None, ("a", "b"), None)
    official = stored.new_entry(type="gemini", name="g", api_key=SECRET, models=["x"])
    assert official.base_url is None and official.url == "https://generativelanguage.googleapis.com"
    assert SECRET not in repr(official)
    s = stored.ApiKeyStore(tmp_path)
    s.save(official)
    s.save(e)
    assert [x.name for x in s.entries()] == ["lab.gpu@home", "g"]  # oldest first (created_at 5.0), not by name
    assert s.load("g") == official and s.remove("g") and not s.remove("g")
    with pytest.raises(ValueError):
        s.path("../escape")
    with pytest.raises(ValueError, match="base_url: 'http://h:bad/v1' is not a valid URL") as exc:
        stored.new_entry(type="openai", name="x", base_url="http://user:pw@h:bad/v1")
    assert "pw" not in str(exc.value)  # never the password of a URL with credentials
