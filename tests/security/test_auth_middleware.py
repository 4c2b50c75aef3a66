"""The client-key middleware in front of a small Litestar app, driven by the real OpenAI and
Anthropic SDKs over HTTP (uvicorn on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import anthropic
import httpx
import openai
import pytest
import uvicorn
from litestar import Litestar, Request, Response, get, head, post

from antiapi.security import KeyStore, KeyVerifier, client_auth_middleware
from antiapi.store import Store

CHAT = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}
MSG = {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": [{"type": "text", "text": "hi"}],
    "stop_reason": "end_turn", "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1},
}


def _who(request: Request) -> dict[str, str]:
    st = request.scope.get("state", {})
    return {"x-client-key": str(st.get("client_key")), "x-client-key-id": str(st.get("client_key_id"))}


@post("/v1/chat/completions")
async def chat(request: Request) -> Response:
    return Response(CHAT, status_code=200, headers=_who(request))


@post("/v1/messages")
async def messages(request: Request) -> Response:
    return Response(MSG, status_code=200, headers=_who(request))


@get("/health")
async def health() -> dict:
    return {"status": "ok"}


@head("/")
async def probe() -> None:
    return None


class Server:
    def __init__(self, verifier: KeyVerifier, required) -> None:
        app = Litestar([chat, messages, health, probe], middleware=[client_auth_middleware(verifier, required=required)])
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve(sockets=[self.sock])), daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.02)
        raise RuntimeError("server did not start")

    def __exit__(self, *a):
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def env(tmp_path):
    store = Store(tmp_path / "antiapi.db")
    store.open()
    verifier = KeyVerifier(store)
    keys = KeyStore(store, verifier=verifier)
    yield store, verifier, keys
    store.close()


def oai(url: str, key: str, **kw) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=url + "/v1", max_retries=0, **kw)


def ant(url: str, key: str | None = None, **kw) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=key, base_url=url, max_retries=0, **kw)


def chat_call(c: openai.OpenAI):
    return c.chat.completions.with_raw_response.create(model="m", messages=[{"role": "user", "content": "hi"}])


def msg_call(c: anthropic.Anthropic):
    return c.messages.with_raw_response.create(model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}])


def test_valid_keys_are_served_and_named_in_scope_state(env):
    _, verifier, keys = env
    info, key = keys.create("laptop")
    with Server(verifier, required=True) as s:
        r = chat_call(oai(s.url, key))  # Authorization: Bearer
        assert r.parse().choices[0].message.content == "hi"
        assert r.headers["x-client-key"] == "laptop" and r.headers["x-client-key-id"] == str(info.id)
        r = msg_call(ant(s.url, key))
        assert r.parse().content[0].text == "hi" and r.headers["x-client-key"] == "laptop"
        # only x-api-key (what older Anthropic SDKs and Claude Code send)
        import httpx2

        def to_x_api_key(req):
            req.headers["x-api-key"] = req.headers.pop("authorization")[len("Bearer "):]

        r = msg_call(ant(s.url, key, http_client=httpx2.Client(event_hooks={"request": [to_x_api_key]})))
        assert r.http_request.headers.get("authorization") is None and r.http_request.headers["x-api-key"] == key
        assert r.parse().content[0].text == "hi" and r.headers["x-client-key"] == "laptop"
        raw = httpx.post(s.url + "/v1/messages", headers={"x-api-key": key}, json={})
        assert raw.status_code == 200 and raw.headers["x-client-key"] == "laptop"
        r = msg_call(anthropic.Anthropic(auth_token=key, base_url=s.url, max_retries=0))  # Bearer from the Anthropic SDK
        assert r.headers["x-client-key"] == "laptop"
        # a placeholder Bearer with the real key in x-api-key is accepted too
        r = chat_call(oai(s.url, "placeholder", default_headers={"x-api-key": key}))
        assert r.headers["x-client-key"] == "laptop"


def test_missing_key_is_401_in_each_callers_format(env):
    _, verifier, keys = env
    keys.create("laptop")
    with Server(verifier, required=True) as s:
        with pytest.raises(openai.AuthenticationError) as e:
            strip = httpx.Client(event_hooks={"request": [lambda r: r.headers.pop("authorization", None)]})
            chat_call(oai(s.url, "unused", http_client=strip))  # sends no key at all
        body = e.value.response.json()
        assert e.value.status_code == 401 and set(body) == {"error"}
        assert body["error"]["code"] == "missing_api_key" and body["error"]["param"] is None
        assert "antiapi keys create --name laptop" in body["error"]["message"]
        assert e.value.response.headers["www-authenticate"] == 'Bearer realm="antiapi"'

        import httpx2  # the Anthropic SDK's HTTP client

        def strip_keys(r):
            r.headers.pop("x-api-key", None)
            r.headers.pop("authorization", None)  # this SDK version sends api_key as a Bearer token

        strip_a = httpx2.Client(event_hooks={"request": [strip_keys]})
        with pytest.raises(anthropic.AuthenticationError) as e2:
            msg_call(ant(s.url, "unused", http_client=strip_a))  # sends no key at all
        assert e2.value.status_code == 401
        b = e2.value.body
        assert b["type"] == "error" and b["error"]["type"] == "authentication_error"
        assert "antiapi keys create --name laptop" in b["error"]["message"]
        assert b["error"]["message"].startswith("This antiapi gateway requires a client key.")


def test_invalid_and_revoked_keys_are_401(env):
    _, verifier, keys = env
    info, key = keys.create("laptop")
    with Server(verifier, required=True) as s:
        with pytest.raises(openai.AuthenticationError) as e:
            chat_call(oai(s.url, "aa-wrong"))
        assert e.value.response.json()["error"]["code"] == "invalid_api_key"
        with pytest.raises(anthropic.AuthenticationError) as e2:
            msg_call(ant(s.url, "aa-wrong"))
        assert e2.value.body["error"]["type"] == "authentication_error"
        assert "not valid" in e2.value.body["error"]["message"]

        msg_call(ant(s.url, key))
        keys.revoke(info.id)
        with pytest.raises(anthropic.AuthenticationError):
            msg_call(ant(s.url, key))
        with pytest.raises(openai.AuthenticationError):
            chat_call(oai(s.url, key))


def test_key_created_elsewhere_is_picked_up_without_restart(env):
    store, verifier, _ = env
    verifier.reload()
    with Server(verifier, required=True) as s:
        _, key = KeyStore(store).create("cli-made")  # like `antiapi keys create` in another process
        time.sleep(1.05)  # the verifier refreshes on an unknown key at most once a second
        assert chat_call(oai(s.url, key)).headers["x-client-key"] == "cli-made"


def test_per_key_rate_limit_is_429_with_retry_after(env):
    _, verifier, keys = env
    _, key = keys.create("laptop", rpm_limit=2)
    with Server(verifier, required=True) as s:
        chat_call(oai(s.url, key))
        msg_call(ant(s.url, key))
        with pytest.raises(openai.RateLimitError) as e:
            chat_call(oai(s.url, key))
        assert e.value.response.json()["error"]["code"] == "client_key_rate_limit"
        assert 1 <= int(e.value.response.headers["retry-after"]) <= 60
        with pytest.raises(anthropic.RateLimitError) as e2:
            msg_call(ant(s.url, key))
        assert e2.value.body["error"]["type"] == "rate_limit_error"


def test_exempt_paths_need_no_key(env):
    _, verifier, keys = env
    keys.create("laptop")
    with Server(verifier, required=True) as s:
        assert httpx.get(s.url + "/health").status_code == 200
        assert httpx.head(s.url + "/").status_code == 200


def test_not_required_and_no_keys_serves_everyone(env):
    _, verifier, keys = env
    with Server(verifier, required=False) as s:
        r = chat_call(oai(s.url, "anything"))
        assert r.headers["x-client-key"] == "None"
        keys.create("laptop")  # once a key exists, keys are required even on loopback
        with pytest.raises(openai.AuthenticationError):
            chat_call(oai(s.url, "anything"))


def test_required_can_be_switched_at_run_time(env):
    _, verifier, _ = env
    flag = {"on": False}
    with Server(verifier, required=lambda: flag["on"]) as s:
        chat_call(oai(s.url, "x"))
        flag["on"] = True  # e.g. a tunnel was started from the admin API
        with pytest.raises(openai.AuthenticationError) as e:
            chat_call(oai(s.url, "x"))
        assert e.value.response.json()["error"]["code"] == "invalid_api_key"
