"""Probes, model lists, count_tokens, the fast path's byte fidelity, and the real command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import anthropic
import httpx
import openai
import pytest

from tests.e2e.test_sdk_matrix import matrix_config
from tests.harness import free_port
from tests.mocks import Reply, Text, Thinking

pytestmark = pytest.mark.e2e


@pytest.fixture
def env(mock_upstream, gateway_factory):
    return gateway_factory(matrix_config(mock_upstream.root_url)), mock_upstream


def test_probes_claude_code_uses(env):
    gw, _ = env
    assert httpx.head(gw.url + "/").status_code == 200
    assert httpx.head(gw.url + "/api/hello").status_code == 200
    r = httpx.get(gw.url + "/api/hello")
    assert r.status_code == 200 and r.headers["request-id"].startswith("req_")
    h = httpx.get(gw.url + "/health").json()
    assert h["status"] == "ok" and h["models"] == 4


def test_models_list_in_openai_and_anthropic_shapes(env):
    gw, _ = env
    ids = [m.id for m in openai.OpenAI(base_url=gw.url + "/v1", api_key="x").models.list()]
    assert ids == ["m-anthropic", "m-chat", "m-gemini", "m-resp"]
    page = anthropic.Anthropic(base_url=gw.url, api_key="x").models.list()
    assert [m.id for m in page.data] == ids
    assert all(m.type == "model" for m in page.data)


def test_count_tokens_exact_from_anthropic_and_estimated_elsewhere(env):
    gw, mock = env
    ac = anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0)
    msgs = [{"role": "user", "content": "hello " * 200}]
    exact = ac.messages.count_tokens(model="m-anthropic", messages=msgs)
    assert any(r.path == "/v1/messages/count_tokens" for r in mock.requests)
    assert exact.input_tokens > 0
    est_small = ac.messages.count_tokens(model="m-chat", messages=[{"role": "user", "content": "hi"}]).input_tokens
    est_big = ac.messages.count_tokens(
        model="m-chat", messages=msgs, system="You are terse.",
        tools=[{"name": "t", "description": "d" * 400, "input_schema": {"type": "object", "properties": {}}}],
    ).input_tokens
    assert 0 < est_small < est_big
    assert est_big >= 1200 / 4  # message text + tool description are both counted
    assert not any(r.path.endswith("count_tokens") and "chat" in r.path for r in mock.requests)


def test_same_dialect_fast_path_keeps_bytes_and_thinking_signatures(env):
    gw, mock = env
    sig = "EqQBCkYIBxgCKkB+/sig=="
    mock.enqueue(Reply([Thinking("Reasoning.", signature=sig), Text("Answer.")]))
    ac = anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0)
    msg = ac.messages.create(
        model="m-anthropic", max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 2048},
        messages=[{"role": "user", "content": "Q?"}],
    )
    assert msg.content[0].type == "thinking" and msg.content[0].signature == sig
    assert msg.model == "m-anthropic"  # the name the client asked for
    # the client sends the signed block back; the upstream receives it byte-identical
    history = [
        {"role": "user", "content": "Q?"},
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in msg.content]},
        {"role": "user", "content": "And then? \u00f7"},
    ]
    raw = json.dumps({"model": "m-anthropic", "max_tokens": 4096, "thinking": {"type": "enabled", "budget_tokens": 2048},
                      "messages": history, "context_management": {"edits": []}}).encode()
    mock.enqueue(Reply([Text("More.")]))
    r = httpx.post(gw.url + "/v1/messages", content=raw, headers={"content-type": "application/json", "anthropic-beta": "x-test-beta"})
    assert r.status_code == 200, r.text
    up = mock.requests[-1]
    assert up.body == raw.replace(b'"model": "m-anthropic"', b'"model": "claude-sonnet-4-5"')
    assert up.headers["anthropic-beta"] == "x-test-beta"


def _antiapi(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "antiapi", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})},
    )


def test_zero_config_start_prints_where_the_config_is_and_serves_health(tmp_path):
    port = free_port()
    proc = _antiapi("serve", "--headless", "--port", str(port), env={"ANTI_API_DATA_DIR": str(tmp_path / "data")})
    try:
        deadline = time.monotonic() + 15
        ok = False
        while time.monotonic() < deadline:
            try:
                ok = httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5).status_code == 200
                if ok:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        assert ok
        cfg = tmp_path / "data" / "config.yaml"
        assert cfg.exists() and (cfg.stat().st_mode & 0o777) == 0o600
        # the client gets a clear 400 (model_not_found) listing that nothing is configured yet
        r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json={"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 400 and "none are configured" in r.json()["error"]["message"]
        assert r.json()["error"]["code"] == "model_not_found"
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert str(tmp_path / "data" / "config.yaml") in err
    assert "No provider is configured yet" in err
    assert proc.returncode in (0, -15)  # uvicorn re-raises SIGTERM after a clean shutdown


def test_invalid_config_refuses_to_start_naming_file_and_key(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "config.yaml").write_text("providers:\n  openai:\n    type: openai\n    api_key: env:NOT_SET_ANYWHERE_123\n")
    proc = _antiapi("serve", "--headless", "--port", str(free_port()), "--data-dir", str(data))
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert "config.yaml" in err and "api_key" in err and "NOT_SET_ANYWHERE_123" in err
    assert "Traceback" not in err


def test_refuses_to_listen_beyond_loopback_without_keys(tmp_path):
    proc = _antiapi("serve", "--headless", "--host", "0.0.0.0", "--port", str(free_port()), "--data-dir", str(tmp_path / "d"))
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert "cannot start" in err and "antiapi keys create" in err and "ssh -L" in err
