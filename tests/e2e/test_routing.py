"""Flow and account routing through a real server: several providers pointing at separate mock
upstreams act as accounts; the official SDKs are the clients."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import sqlite3
import time

import anthropic
import httpx
import openai
import pytest
import uvicorn

from antiapi.errors import LimitReached
from antiapi.server.app import create_app
from antiapi.server.context import RequestContextFilter
from tests.harness import GatewayServer
from tests.mocks import DropAfter, Error, MidStreamError, Reply, Text, Usage

pytestmark = pytest.mark.e2e

HI = [{"role": "user", "content": "hi"}]


def accounts_config(mocks: dict, models: str = "", extra: str = "") -> str:
    """``mocks``: provider name -> (MockUpstream, type). Returns the providers section plus ``models``/``extra``."""
    lines = ["providers:"]
    for name, (mock, kind) in mocks.items():
        base = f"{mock.root_url}/v1" if kind == "openai" else mock.root_url
        lines.append(f"  {name}: {{type: {kind}, base_url: '{base}', api_key: test-key}}")
    return "\n".join(lines) + "\n" + models + extra


def chat(gw, model="m", **kw):
    return openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0, **kw)


def claude(gw, **kw):
    return anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0, **kw)


def text_of(r) -> str:
    return r.choices[0].message.content


def sse_text(raw: str) -> str:
    """The text of an Anthropic or Chat Completions SSE stream."""
    out = ""
    for line in raw.splitlines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        d = json.loads(line[6:])
        if d.get("type") == "content_block_delta":
            out += d["delta"].get("text", "")
        for ch in d.get("choices") or []:
            out += ch["delta"].get("content") or ""
    return out


class WrappedGateway(GatewayServer):
    """A GatewayServer whose providers pass through ``wrap`` (to inject provider-level failures)."""

    def __init__(self, config_text, tmp, wrap) -> None:
        super().__init__(config_text, tmp)
        self.providers = wrap(self.providers)
        self.app = create_app(self.config, providers=self.providers, usage=self.usage)
        self._server = uvicorn.Server(
            uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="on", loop="asyncio")
        )


class LimitOnce:
    """Wraps a provider: the next ``armed`` calls raise LimitReached (resets in ``reset_in`` s)."""

    def __init__(self, inner, reset_in: float) -> None:
        self.inner, self.reset_in, self.armed, self.calls = inner, reset_in, 0, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def send(self, call):
        self.calls += 1
        if self.armed:
            self.armed -= 1
            raise LimitReached("The usage limit has been reached", resets_at=time.time() + self.reset_in,
                               provider=self.inner.name)
        return await self.inner.send(call)


# --------------------------------------------------------------------------- failover + cooldown


def test_429_fails_over_then_the_account_is_skipped_until_its_reset_then_used_again(mock_upstream_factory, gateway_factory):
    a, b = mock_upstream_factory("openai_chat"), mock_upstream_factory("anthropic")
    gw = gateway_factory(accounts_config(
        {"a": (a, "openai"), "b": (b, "anthropic")},
        "models:\n  - {name: m, provider: a, model: gpt-4.1}\n  - {name: m, provider: b, model: claude-x}\n",
    ))
    a.default = Reply([Text("from a")])
    b.default = Reply([Text("from b")])
    a.enqueue(Error.rate_limit(retry_after=1))
    assert text_of(chat(gw).chat.completions.create(model="m", messages=HI)) == "from b"
    rec = gw.records(1)[-1]
    assert rec.attempts == ["a/gpt-4.1: 429 rate_limit"]
    assert rec.route == ["a/gpt-4.1: 429 rate_limit", "b/claude-x: served"]
    # while A cools down it is not even asked (anthropic SDK, streamed)
    with claude(gw).messages.stream(model="m", max_tokens=50, messages=HI) as s:
        assert s.get_final_text() == "from b"
    assert len(a.requests) == 1
    rec = gw.records(2)[-1]
    assert rec.attempts == [] and rec.provider == "b"
    assert rec.route[0].startswith("a/gpt-4.1: skipped (cooling down for 1 s: 429 rate_limit")
    time.sleep(1.1)  # the reset passed: A serves again by itself
    assert text_of(chat(gw).chat.completions.create(model="m", messages=HI)) == "from a"
    assert len(a.requests) == 2 and gw.records(3)[-1].route == ["a/gpt-4.1: served"]


def test_limit_reached_moves_to_the_next_flow_entry_and_shows_in_the_quota_view(mock_upstream_factory, tmp_path):
    a, b = mock_upstream_factory("openai_chat"), mock_upstream_factory("anthropic")
    a.default, b.default = Reply([Text("from a")]), Reply([Text("from b")])
    cfg = accounts_config({"a": (a, "openai"), "b": (b, "anthropic")}, extra=(
        "flows:\n  fast:\n    - {provider: a, model: gpt-4.1}\n    - {provider: b, model: claude-x}\n"
    ))
    wrapped: dict = {}

    def wrap(providers):
        wrapped["a"] = providers["a"] = LimitOnce(providers["a"], reset_in=1.5)
        return providers

    gw = WrappedGateway(cfg, tmp_path, wrap).start()
    try:
        wrapped["a"].armed = 1
        assert text_of(chat(gw).chat.completions.create(model="route:fast", messages=HI)) == "from b"
        assert gw.records(1)[-1].attempts == ["a/gpt-4.1: 429 rate_limit"]
        view = {v["account"]: v for v in gw.app.state.routing.quota_view()}
        assert view["a"]["status"] == "cooling_down" and view["b"]["status"] == "ok"
        cd = view["a"]["cooldown"]
        assert cd["category"] == "limit" and cd["model"] is None and "usage limit" in cd["reason"]
        assert 0 < cd["until"] - time.time() <= 1.5
        # the whole account is skipped (any model), by its bare flow name too
        with claude(gw).messages.stream(model="fast", max_tokens=50, messages=HI) as s:
            assert s.get_final_text() == "from b"
        assert wrapped["a"].calls == 1
        time.sleep(1.6)
        assert text_of(chat(gw).chat.completions.create(model="fast", messages=HI)) == "from a"
        assert wrapped["a"].calls == 2
    finally:
        gw.stop()
    # the quota view was snapshotted into the store (cooldown included)
    conn = sqlite3.connect(gw.data_dir / "antiapi.db")
    rows = {r[0]: r for r in conn.execute("SELECT account, status, data FROM quota_snapshots")}
    assert set(rows) == {"a", "b"}
    assert json.loads(rows["b"][2])["status"] == "ok"


def test_every_entry_exhausted_is_429_with_the_soonest_reset_then_fails_fast(mock_upstream_factory, gateway_factory):
    a, b = mock_upstream_factory("openai_chat"), mock_upstream_factory("openai_chat")
    gw = gateway_factory(accounts_config(
        {"a": (a, "openai"), "b": (b, "openai")},
        "models:\n  - {name: m, provider: a, model: gpt-4.1}\n  - {name: m, provider: b, model: gpt-4.1}\n",
    ))
    a.enqueue(Error.rate_limit(retry_after=30))
    b.enqueue(Error.rate_limit(retry_after=5))
    with pytest.raises(openai.RateLimitError) as e:
        chat(gw).chat.completions.create(model="m", messages=HI)
    assert e.value.response.headers["retry-after"] == "5"
    msg = e.value.body["message"]
    assert "a/gpt-4.1: 429 rate_limit" in msg and "b/gpt-4.1: 429 rate_limit" in msg and "Try again in 5 s" in msg
    # both cooling: the next request fails at once, no upstream call, in the Anthropic format
    with pytest.raises(anthropic.RateLimitError) as e2:
        claude(gw).messages.create(model="m", max_tokens=10, messages=HI)
    assert e2.value.body["error"]["type"] == "rate_limit_error"
    assert e2.value.response.headers["retry-after"] in ("4", "5")
    assert "cooling down" in e2.value.body["error"]["message"]
    assert (len(a.requests), len(b.requests)) == (1, 1)
    recs = gw.records(2)
    assert [r.status for r in recs] == [429, 429] and recs[-1].attempts == []


def test_every_entry_down_is_503(mock_upstream_factory, gateway_factory):
    a, b = mock_upstream_factory("openai_chat"), mock_upstream_factory("anthropic")
    gw = gateway_factory(accounts_config(
        {"a": (a, "openai"), "b": (b, "anthropic")},
        "models:\n  - {name: m, provider: a, model: gpt-4.1}\n  - {name: m, provider: b, model: claude-x}\n",
    ))
    a.enqueue(Error(500, message="boom"))
    b.enqueue(Error.overloaded())
    with pytest.raises(openai.InternalServerError) as e:
        chat(gw).chat.completions.create(model="m", messages=HI)
    assert e.value.status_code == 503 and e.value.response.headers["retry-after"] == "5"
    assert "unavailable" in e.value.body["message"]
    # outages cool down softly: with nothing healthy left they are still tried (and now answer)
    assert text_of(chat(gw).chat.completions.create(model="m", messages=HI)).startswith("mock reply")


# --------------------------------------------------------------------------- first byte


@pytest.mark.parametrize("endpoint", ["anthropic", "openai_chat"])
def test_after_the_first_byte_never_switch_the_stream_ends_with_an_error_event(mock_upstream_factory, gateway_factory, endpoint):
    a, b = mock_upstream_factory("anthropic"), mock_upstream_factory("anthropic")
    gw = gateway_factory(accounts_config(
        {"a": (a, "anthropic"), "b": (b, "anthropic")},
        "models:\n  - {name: m, provider: a, model: claude-x}\n  - {name: m, provider: b, model: claude-x}\n",
    ))
    a.enqueue(DropAfter(4, reply=Reply([Text("one two three four five six", chunks=6)])))
    if endpoint == "anthropic":
        with httpx.stream("POST", gw.url + "/v1/messages", json={"model": "m", "max_tokens": 50, "messages": HI, "stream": True}) as r:
            assert r.status_code == 200
            raw = r.read().decode()
        events = [line[7:] for line in raw.splitlines() if line.startswith("event: ")]
        assert events[0] == "message_start" and events[-1] == "error" and "message_stop" not in events
    else:
        got = ""
        with pytest.raises(openai.APIError):
            for c in chat(gw).chat.completions.create(model="m", messages=HI, stream=True):
                got += "".join(ch.delta.content or "" for ch in c.choices)
        assert got.startswith("one")
    assert b.requests == []
    rec = gw.records(1)[-1]
    assert rec.provider == "a" and rec.status >= 500 and rec.route == ["a/claude-x: served"]


@pytest.mark.parametrize("endpoint", ["/v1/messages", "/v1/chat/completions"])
def test_an_error_as_the_first_stream_event_still_fails_over(mock_upstream_factory, gateway_factory, endpoint):
    a, b = mock_upstream_factory("anthropic"), mock_upstream_factory("anthropic")
    gw = gateway_factory(accounts_config(
        {"a": (a, "anthropic"), "b": (b, "anthropic")},
        "models:\n  - {name: m, provider: a, model: claude-x}\n  - {name: m, provider: b, model: claude-x}\n",
    ))
    a.enqueue(MidStreamError(after_events=0, reply=Reply([Text("never")])))
    b.enqueue(Reply([Text("served by b")]))
    body = {"model": "m", "max_tokens": 50, "messages": HI, "stream": True}
    with httpx.stream("POST", gw.url + endpoint, json=body) as r:
        assert r.status_code == 200
        raw = r.read().decode()
    assert sse_text(raw) == "served by b" and "error" not in raw
    rec = gw.records(1)[-1]
    assert rec.provider == "b" and rec.attempts == ["a/claude-x: 529 overloaded"] and rec.status == 200


# --------------------------------------------------------------------------- concurrency


def test_200_concurrent_requests_while_accounts_flip_between_healthy_and_limited(mock_upstream_factory, tmp_path):
    mocks = {f"acct{i}": mock_upstream_factory("openai_chat" if i % 2 else "anthropic") for i in range(3)}
    rng = random.Random(7)

    def flaky(req):
        r = rng.random()
        if r < 0.3:
            return Error.rate_limit(retry_after=0.2)
        if r < 0.4:
            return Error(503, message="busy")
        return Reply([Text("complete answer", chunks=4)], usage=Usage(input_tokens=10, output_tokens=3))

    for m in mocks.values():
        m.handler = flaky
    cfg = accounts_config(
        {n: (m, "openai" if i % 2 else "anthropic") for i, (n, m) in enumerate(mocks.items())},
        "models:\n" + "".join(f"  - {{name: m, provider: {n}, model: up-{n}}}\n" for n in mocks),
        "routing: {strategy: round_robin}\n",
    )
    gw = GatewayServer(cfg, tmp_path).start()
    results = []

    async def one(client: httpx.AsyncClient, i: int):
        stream = i % 2 == 0
        if i % 3 == 0:
            r = await client.post("/v1/messages", json={"model": "m", "max_tokens": 20, "messages": HI, "stream": stream})
        else:
            r = await client.post("/v1/chat/completions", json={"model": "m", "messages": HI, "stream": stream})
        results.append((i, stream, r))

    async def main():
        async with httpx.AsyncClient(base_url=gw.url, timeout=30, limits=httpx.Limits(max_connections=200)) as client:
            await asyncio.gather(*(one(client, i) for i in range(200)))

    try:
        asyncio.run(main())
        recs = gw.records(200)
    finally:
        gw.stop()
    ok = errors = 0
    for i, stream, r in results:
        anth = i % 3 == 0
        if r.status_code == 200:
            ok += 1
            if not stream:
                body = r.json()
                text = body["content"][0]["text"] if anth else body["choices"][0]["message"]["content"]
                assert text == "complete answer"
            elif anth:
                assert r.text.endswith('event: message_stop\ndata: {"type":"message_stop"}\n\n')
                assert "event: error" not in r.text and sse_text(r.text) == "complete answer"
            else:
                assert r.text.endswith("data: [DONE]\n\n") and sse_text(r.text) == "complete answer"
        else:
            errors += 1
            assert r.status_code in (429, 503), r.text
            assert r.headers["content-type"].startswith("application/json")
            err = r.json()["error"]
            assert err["message"] and err["type"]
            assert int(r.headers["retry-after"]) >= 1
    assert ok + errors == 200 and ok > 100
    assert len(recs) == 200 and len({r.request_id for r in recs}) == 200
    conn = sqlite3.connect(gw.data_dir / "antiapi.db")
    assert conn.execute("SELECT count(*), count(DISTINCT request_id) FROM usage").fetchone() == (200, 200)
    assert conn.execute("SELECT count(*) FROM usage WHERE status = 200").fetchone()[0] == ok


# --------------------------------------------------------------------------- persistence


def test_restart_keeps_routing_settings_accounts_and_usage(mock_upstream_factory, tmp_path):
    a, b = mock_upstream_factory("openai_chat"), mock_upstream_factory("anthropic")
    a.default, b.default = Reply([Text("from a")]), Reply([Text("from b")])
    cfg = accounts_config({"a": (a, "openai"), "b": (b, "anthropic")}, extra=(
        "flows:\n  fast:\n    - {provider: a, model: gpt-4.1}\n    - {provider: b, model: claude-x}\n"
    ))
    gw = GatewayServer(cfg, tmp_path).start()
    try:
        assert text_of(chat(gw).chat.completions.create(model="fast", messages=HI)) == "from a"
        routing = gw.app.state.routing
        routing.put_flow("slow", [{"provider": "b", "model": "claude-x"}, {"provider": "a", "model": "gpt-4.1"}])
        routing.update_settings(default_model="route:slow", smart_switch=False)
        routing.set_account_enabled("a", False)
        r = httpx.post(gw.url + "/v1/chat/completions", json={"messages": HI})  # no model: the default
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "from b"
    finally:
        gw.stop()

    gw2 = GatewayServer(cfg, tmp_path).start()
    try:
        routing = gw2.app.state.routing
        assert routing.table.flow_names() == ["fast", "slow"]
        assert (routing.settings.default_model, routing.settings.smart_switch) == ("route:slow", False)
        assert [(x["name"], x["order"], x["enabled"]) for x in routing.accounts_view()] == [("a", 1, False), ("b", 2, True)]
        r = httpx.post(gw2.url + "/v1/chat/completions", json={"messages": HI})
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "from b"
        assert text_of(chat(gw2).chat.completions.create(model="fast", messages=HI)) == "from b"
        assert gw2.records(1)[-1].route == ["a/gpt-4.1: skipped (disabled)", "b/claude-x: served"]
    finally:
        gw2.stop()
    conn = sqlite3.connect(gw2.data_dir / "antiapi.db")
    rows = conn.execute("SELECT model, target, provider, status FROM usage ORDER BY id").fetchall()
    assert rows == [("fast", None, "a", 200), ("", "route:slow", "b", 200), ("", "route:slow", "b", 200), ("fast", None, "b", 200)]

    # editing the file's routing sections takes effect once (the file's new values win)
    cfg3 = cfg.replace("    - {provider: b, model: claude-x}\n", "") + "routing: {default_model: fast}\n"
    gw3 = GatewayServer(cfg3, tmp_path).start()
    try:
        routing = gw3.app.state.routing
        assert routing.settings.default_model == "fast" and routing.settings.smart_switch is False
        assert [e.provider for e in routing.table.flows["fast"].entries] == ["a"]
        assert "slow" in routing.table.flows  # made through the admin API: kept
    finally:
        gw3.stop()


# --------------------------------------------------------------------------- affinity


def test_two_interleaved_sessions_each_stay_on_their_account_and_move_after_a_429(mock_upstream_factory, gateway_factory):
    a, b = mock_upstream_factory("anthropic"), mock_upstream_factory("anthropic")
    a.default, b.default = Reply([Text("from a")]), Reply([Text("from b")])
    gw = gateway_factory(accounts_config(
        {"a": (a, "anthropic"), "b": (b, "anthropic")},
        extra="flows:\n  rr:\n    strategy: round_robin\n    entries:\n"
              "      - {provider: anthropic, model: claude-x}\n",
    ))
    s1 = claude(gw, default_headers={"X-Claude-Code-Session-Id": "session-one"})
    s2 = claude(gw, default_headers={"X-Claude-Code-Session-Id": "session-two"})

    def ask(client):
        return client.messages.create(model="route:rr", max_tokens=10, messages=HI).content[0].text

    first1, first2 = ask(s1), ask(s2)
    assert {first1, first2} == {"from a", "from b"}  # round robin put them on different accounts
    for _ in range(4):
        assert ask(s1) == first1
        assert ask(s2) == first2
    # without a session the round robin alternates
    anon = [ask(claude(gw)) for _ in range(4)]
    assert set(anon) == {"from a", "from b"}
    # session one's account answers 429: the session moves and stays moved
    mock1 = a if first1 == "from a" else b
    mock1.enqueue(Error.rate_limit(retry_after=1))
    assert ask(s1) == first2
    time.sleep(1.1)
    assert [ask(s1) for _ in range(3)] == [first2] * 3
    assert ask(s2) == first2


def test_codex_and_openai_session_keys(mock_upstream_factory, gateway_factory):
    a, b = mock_upstream_factory("openai_responses"), mock_upstream_factory("openai_responses")
    a.default, b.default = Reply([Text("from a")]), Reply([Text("from b")])
    gw = gateway_factory(
        "providers:\n"
        f"  a: {{type: openai, base_url: '{a.root_url}/v1', api_key: test-key, api: responses}}\n"
        f"  b: {{type: openai, base_url: '{b.root_url}/v1', api_key: test-key, api: responses}}\n"
        "flows:\n  rr: {strategy: round_robin, entries: [{provider: openai, model: gpt-5.2}]}\n"
    )
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
    by_cache = {client.responses.create(model="rr", input="hi", prompt_cache_key=k).output_text for k in ("k1", "k1", "k1")}
    assert len(by_cache) == 1
    by_header = {
        client.responses.create(model="rr", input="hi", extra_headers={"session_id": "codex-1"}).output_text for _ in range(3)
    }
    assert len(by_header) == 1
    by_user = {client.responses.create(model="rr", input="hi", user="alice").output_text for _ in range(3)}
    assert len(by_user) == 1
    # without a key the round robin alternates
    assert len({client.responses.create(model="rr", input="hi").output_text for _ in range(2)}) == 2


# --------------------------------------------------------------------------- mapping, names, logs


def test_background_and_default_model_mapping(mock_upstream_factory, gateway_factory):
    main, cheap = mock_upstream_factory("anthropic"), mock_upstream_factory("openai_chat")
    main.default, cheap.default = Reply([Text("main")]), Reply([Text("cheap")])
    gw = gateway_factory(accounts_config(
        {"main": (main, "anthropic"), "cheap": (cheap, "openai")},
        "models:\n  - {name: main-model, provider: main}\n",
        "flows:\n  background: [{provider: cheap, model: gpt-4.1-mini}]\n"
        "routing: {background_model: route:background, default_model: main-model}\n",
    ))
    r = claude(gw).messages.create(model="claude-3-5-haiku-20241022", max_tokens=10, messages=HI)
    assert r.content[0].text == "cheap" and r.model == "claude-3-5-haiku-20241022"
    assert cheap.requests[-1].json["model"] == "gpt-4.1-mini"
    rec = gw.records(1)[-1]
    assert (rec.model, rec.target, rec.provider) == ("claude-3-5-haiku-20241022", "route:background", "cheap")
    assert claude(gw).messages.create(model="main-model", max_tokens=10, messages=HI).content[0].text == "main"
    r = httpx.post(gw.url + "/v1/messages", json={"max_tokens": 10, "messages": HI})
    assert r.status_code == 200 and r.json()["content"][0]["text"] == "main"
    assert r.json()["model"] == "main-model"
    assert gw.records(3)[-1].target == "main-model"


def test_unknown_model_is_400_listing_flows_and_models_and_models_list_shows_flows(mock_upstream, gateway_factory):
    gw = gateway_factory(accounts_config(
        {"a": (mock_upstream, "openai")}, "models:\n  - {name: m, provider: a}\n",
        "flows:\n  fast: [{provider: a, model: gpt-4.1}]\n  cheap: [{provider: openai, model: gpt-4.1-mini}]\n",
    ))
    with pytest.raises(openai.BadRequestError) as e:
        chat(gw).chat.completions.create(model="nope", messages=HI)
    assert e.value.body["code"] == "model_not_found" and e.value.body["param"] == "model"
    assert "Flows: fast, cheap" in e.value.body["message"] and "Models available: m" in e.value.body["message"]
    with pytest.raises(anthropic.BadRequestError) as e2:
        claude(gw).messages.create(model="route:nope", max_tokens=5, messages=HI)
    assert "route:nope" in e2.value.body["error"]["message"]
    assert [m.id for m in chat(gw).models.list()] == ["m", "fast", "cheap"]


def test_every_log_line_carries_its_own_request_context_under_concurrency(mock_upstream_factory, gateway_factory):
    mocks = {n: mock_upstream_factory("openai_chat") for n in ("a1", "b1", "a2", "b2")}
    for n, m in mocks.items():
        m.default = Error(500, message="down") if n.startswith("a") else Reply([Text(f"from {n}")])
    gw = gateway_factory(accounts_config(
        {n: (m, "openai") for n, m in mocks.items()},
        "models:\n" + "".join(f"  - {{name: m{n[1]}, provider: {n}, model: up-{n}}}\n" for n in ("a1", "b1", "a2", "b2")),
    ))
    captured: list[logging.LogRecord] = []

    class Capture(logging.Handler):
        def emit(self, record):
            captured.append(record)

    handler = Capture(logging.DEBUG)
    handler.addFilter(RequestContextFilter())
    logger = logging.getLogger("antiapi.pipeline")
    old = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    sent: dict[str, str] = {}

    async def main():
        async with httpx.AsyncClient(base_url=gw.url, timeout=30) as c:
            async def one(i):
                model = f"m{1 + i % 2}"
                r = await c.post("/v1/chat/completions", json={"model": model, "messages": HI})
                assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == f"from b{model[1]}"
                sent[r.headers["request-id"]] = model
            await asyncio.gather(*(one(i) for i in range(60)))

    try:
        asyncio.run(main())
        gw.records(60)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    served = [r for r in captured if r.getMessage().startswith("served by")]
    failovers = [r for r in captured if r.getMessage().startswith("failing over")]
    assert len(served) == 60 and failovers
    for r in served + failovers:
        rid, model, account = r.request.split(" ")
        acct = account.removeprefix("account=")
        assert model == f"model={sent[rid]}"
        assert acct in r.getMessage() and acct[1] == sent[rid][1]


def test_the_request_path_never_runs_sqlite_on_the_event_loop_thread(mock_upstream_factory, tmp_path, monkeypatch):
    import threading

    import antiapi.store.store as store_mod

    seen: list[threading.Thread] = []
    real_connect = sqlite3.connect

    class Traced(sqlite3.Connection):
        def execute(self, *a, **kw):
            seen.append(threading.current_thread())
            return super().execute(*a, **kw)

        def executemany(self, *a, **kw):
            seen.append(threading.current_thread())
            return super().executemany(*a, **kw)

    monkeypatch.setattr(store_mod.sqlite3, "connect", lambda *a, **kw: real_connect(*a, factory=Traced, **kw))
    a, b = mock_upstream_factory("openai_chat"), mock_upstream_factory("openai_chat")
    a.enqueue(Error.rate_limit(retry_after=30))
    cfg = accounts_config({"a": (a, "openai"), "b": (b, "openai")},
                          "models:\n  - {name: m, provider: a}\n  - {name: m, provider: b}\n")
    gw = GatewayServer(cfg, tmp_path).start()
    try:
        seen.clear()
        for _ in range(20):
            chat(gw).chat.completions.create(model="m", messages=HI)
        gw.records(20)
        view = gw.app.state.routing.quota_view()[0]
        assert view["account"] == "a" and view["cooldowns"][0]["model"] == "m" and view["cooldowns"][0]["hard"]
    finally:
        gw.stop()
    assert seen, "the store wrote nothing"
    assert gw._thread not in seen  # the server's event loop thread never touched SQLite
    assert {t.name for t in seen} <= {"antiapi-store-writer"} | {t.name for t in seen if t.name.startswith("asyncio_")}


def test_kill_9_of_a_busy_server_leaves_a_readable_database_with_its_usage(mock_upstream, tmp_path):
    import os
    import signal
    import socket
    import subprocess
    import sys

    data = tmp_path / "data"
    data.mkdir()
    (data / "config.yaml").write_text(accounts_config({"a": (mock_upstream, "openai")}, "models:\n  - {name: m, provider: a}\n"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "antiapi", "serve", "--headless", "--port", str(port), "--data-dir", str(data)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/health", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        done = 0

        async def hammer():
            nonlocal done
            async with httpx.AsyncClient(base_url=url, timeout=10) as c:
                async def loop():
                    nonlocal done
                    while True:
                        r = await c.post("/v1/chat/completions", json={"model": "m", "messages": HI})
                        assert r.status_code == 200
                        done += 1
                try:
                    await asyncio.wait_for(asyncio.gather(*(loop() for _ in range(16))), timeout=1.5)
                except asyncio.TimeoutError:
                    pass

        asyncio.run(hammer())
        assert done > 50
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # mid-load: requests in flight, the writer busy
        proc.wait(10)
    conn = sqlite3.connect(data / "antiapi.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    n = conn.execute("SELECT count(*) FROM usage WHERE status = 200").fetchone()[0]
    assert 0 < n <= done + 16
    assert conn.execute("SELECT name, seq FROM accounts").fetchall() == [("a", 1)]
