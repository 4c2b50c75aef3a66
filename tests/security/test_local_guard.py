"""While no client key is required (loopback, no key), the gateway serves only requests that come
straight from a program on this machine: no forwarding headers (a proxy or a tunnel started by
hand), a Host naming this machine (DNS rebinding), no browser Origin unless configured (CORS)."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from antiapi.errors import ErrorKind
from antiapi.security.auth import local_problem
from tests.mocks import Reply, Text

MSGS = [{"role": "user", "content": "hi"}]


def _h(**kw: str) -> list[tuple[bytes, bytes]]:
    return [(k.replace("_", "-").encode(), v.encode()) for k, v in kw.items()]


@pytest.mark.parametrize("host", ["127.0.0.1:8964", "localhost:8964", "LOCALHOST", "[::1]:8964", "127.8.9.10", "localhost."])
def test_local_hosts_pass(host):
    assert local_problem(_h(host=host, user_agent="x")) is None


@pytest.mark.parametrize("host", ["evil.example:8964", "192.168.1.5:8964", "0.0.0.0:8964", "127.0.0.1.nip.io", "[fe80::1]:8964"])
def test_other_hosts_are_refused_unless_allowed(host):
    err = local_problem(_h(host=host))
    assert err is not None and err.kind is ErrorKind.PERMISSION and err.status == 403 and err.code == "host_not_allowed"
    assert "server.allowed_hosts" in err.message
    name = host.rsplit(":", 1)[0].strip("[]") if host.count(":") == 1 or host.startswith("[") else host
    assert local_problem(_h(host=host), allowed_hosts=frozenset({name.lower()})) is None


@pytest.mark.parametrize("header", ["x-forwarded-for", "forwarded", "x-real-ip", "cf-connecting-ip", "x-forwarded-host",
                                    "true-client-ip"])
def test_forwarding_headers_mean_a_key_is_needed(header):
    err = local_problem([(b"host", b"127.0.0.1:8964"), (header.upper().encode(), b"203.0.113.9")])
    assert err is not None and err.status == 401 and err.code == "client_key_required"
    assert header in err.message and "antiapi keys create" in err.message


def test_browser_origins_need_configuring():
    err = local_problem(_h(host="127.0.0.1:8964", origin="https://evil.example"))
    assert err is not None and err.status == 403 and "server.cors_origins" in err.message
    assert local_problem(_h(host="127.0.0.1", origin="null")) is not None  # file:// pages too
    ok = frozenset({"http://localhost:3000"})
    assert local_problem(_h(host="127.0.0.1", origin="http://localhost:3000"), cors_origins=ok) is None
    assert local_problem(_h(host="127.0.0.1", origin="http://localhost:3001"), cors_origins=ok) is not None
    assert local_problem(_h(host="127.0.0.1", origin="https://x"), cors_origins=frozenset({"*"})) is None


def _config(root: str, server: str = "") -> str:
    return (
        (f"server:\n{server}" if server else "")
        + f"providers:\n  up: {{type: openai, base_url: '{root}/v1', api_key: test-key}}\n"
        "models:\n  - {name: m, provider: up, model: gpt-4.1}\n"
    )


@pytest.fixture
def open_gw(mock_upstream, gateway_factory):
    mock_upstream.default = Reply([Text("local")])
    return gateway_factory(_config(mock_upstream.root_url, "  allowed_hosts: [antiapi.test]\n"
                                                         "  cors_origins: ['http://localhost:3000']\n"))


@pytest.mark.e2e
def test_sdks_through_a_hand_made_proxy_are_refused_in_their_own_format(open_gw, mock_upstream):
    fwd = {"x-forwarded-for": "203.0.113.9"}
    with pytest.raises(openai.AuthenticationError) as e:
        openai.OpenAI(base_url=open_gw.url + "/v1", api_key="x", max_retries=0, default_headers=fwd).chat.completions.create(
            model="m", messages=MSGS)
    assert e.value.body["code"] == "client_key_required" and "proxy or tunnel" in e.value.body["message"]
    with pytest.raises(anthropic.AuthenticationError) as e2:
        anthropic.Anthropic(base_url=open_gw.url, api_key="x", max_retries=0, default_headers=fwd).messages.create(
            model="m", max_tokens=5, messages=MSGS)
    assert e2.value.body["error"]["type"] == "authentication_error"
    assert mock_upstream.requests == []
    # straight from this machine: served
    ok = openai.OpenAI(base_url=open_gw.url + "/v1", api_key="x", max_retries=0).chat.completions.create(model="m", messages=MSGS)
    assert ok.choices[0].message.content == "local"


@pytest.mark.e2e
def test_host_and_origin_checks_and_configured_cors(open_gw):
    body = {"model": "m", "messages": MSGS}
    url = open_gw.url + "/v1/chat/completions"
    r = httpx.post(url, json=body, headers={"host": "rebound.example"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "host_not_allowed"
    r = httpx.post(open_gw.url + "/v1/messages", json={**body, "max_tokens": 5}, headers={"host": "rebound.example"})
    assert r.status_code == 403 and r.json()["type"] == "error" and r.json()["error"]["type"] == "permission_error"
    assert httpx.post(url, json=body, headers={"host": "antiapi.test:8964"}).status_code == 200  # server.allowed_hosts
    # a page of some other site: refused, and no CORS header lets it read anything
    r = httpx.post(url, json=body, headers={"origin": "https://evil.example"})
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
    pre = httpx.options(url, headers={"origin": "https://evil.example", "access-control-request-method": "POST"})
    assert "access-control-allow-origin" not in pre.headers
    # the configured browser app: preflight, then the request, with CORS headers
    pre = httpx.options(url, headers={"origin": "http://localhost:3000", "access-control-request-method": "POST",
                                      "access-control-request-headers": "content-type,authorization"})
    assert pre.status_code in (200, 204) and pre.headers["access-control-allow-origin"] == "http://localhost:3000"
    r = httpx.post(url, json=body, headers={"origin": "http://localhost:3000"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "http://localhost:3000"
    # probes stay open
    assert httpx.get(open_gw.url + "/health", headers={"host": "rebound.example"}).status_code == 200


@pytest.mark.e2e
def test_with_a_key_the_key_decides(mock_upstream, gateway_factory):
    from tests.e2e.test_client_keys import _make_key

    box = {}
    gw = gateway_factory(_config(mock_upstream.root_url), prepare=lambda d: box.setdefault("key", _make_key(d)))
    mock_upstream.default = Reply([Text("keyed")])
    h = {"x-forwarded-for": "203.0.113.9", "host": "abc.trycloudflare.com"}
    c = openai.OpenAI(base_url=gw.url + "/v1", api_key=box["key"], max_retries=0, default_headers=h)
    assert c.chat.completions.create(model="m", messages=MSGS).choices[0].message.content == "keyed"


def test_bad_cors_origin_is_a_config_error(tmp_path):
    from antiapi.config import load_config
    from antiapi.errors import ConfigError

    p = tmp_path / "c.yaml"
    p.write_text("server:\n  cors_origins: ['localhost:3000/app']\n")
    with pytest.raises(ConfigError) as e:
        load_config(p, data_dir=tmp_path, env={})
    assert "server.cors_origins[0]" in str(e.value) and "http://localhost:3000" in str(e.value)
