"""Clients that ask for more output than the upstream model gives (Claude Code asks for a large
``max_tokens``; OpenAI answers 400 "max_tokens is too large: N. This model supports at most M
completion tokens"): antiapi learns M from that answer, sends the request again with M before
anything reached the client, and clamps later requests to M at once."""

from __future__ import annotations

import anthropic
import pytest

from tests.e2e.cli_helpers import run_claude
from tests.harness import provider_config
from tests.mocks import Reply, Text

pytestmark = pytest.mark.e2e

MSGS = [{"role": "user", "content": "hi"}]


def _config(root: str) -> str:
    return provider_config("openai", f"{root}/v1", ["gpt-4.1"], name="oa")


@pytest.fixture
def limited(mock_upstream_factory, gateway_factory):
    mock = mock_upstream_factory("openai_chat", max_output_tokens=32768)
    mock.default = Reply([Text("within the limit")])
    return gateway_factory(_config(mock.root_url)), mock


def _asked(req) -> int | None:
    return req.json.get("max_completion_tokens", req.json.get("max_tokens"))


@pytest.mark.parametrize("stream", [False, True])
def test_too_many_output_tokens_are_retried_with_the_models_limit(limited, stream):
    gw, mock = limited
    c = anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0, timeout=60)  # (else the SDK wants a stream)
    if stream:
        with c.messages.stream(model="gpt-4.1", max_tokens=128000, messages=MSGS) as s:
            assert s.get_final_text() == "within the limit"
    else:
        assert c.messages.create(model="gpt-4.1", max_tokens=128000, messages=MSGS).content[0].text == "within the limit"
    assert [_asked(r) for r in mock.requests] == [128000, 32768]
    rec = gw.records(1)[-1]
    assert rec.status == 200 and any("at most 32768 output tokens; retried" in x for x in rec.route)
    # learnt: the next request goes out clamped at once; smaller asks are left alone
    c.messages.create(model="gpt-4.1", max_tokens=100000, messages=MSGS)
    c.messages.create(model="gpt-4.1", max_tokens=512, messages=MSGS)
    assert [_asked(r) for r in mock.requests][2:] == [32768, 512]


def test_an_openai_client_sending_its_own_max_tokens_gets_the_upstream_error(limited):
    """Same dialect, passed through unchanged: the client chose the number, so it hears the answer."""
    import openai

    gw, mock = limited
    c = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.BadRequestError) as e:
        c.chat.completions.create(model="gpt-4.1", max_tokens=128000, messages=MSGS)
    assert "supports at most 32768 completion tokens" in e.value.body["message"]
    assert len(mock.requests) == 1


@pytest.mark.cli
def test_claude_code_on_a_model_with_a_smaller_output_limit(mock_upstream_factory, gateway_factory, tmp_path):
    mock = mock_upstream_factory("openai_chat", max_output_tokens=4096)
    mock.default = Reply([Text("hello from a small model")])
    gw = gateway_factory(_config(mock.root_url))
    run = run_claude(gw.url, "Say hi.", tmp_path, model="gpt-4.1", allowed_tools=None)
    assert run.returncode == 0, run.describe()
    assert run.json["result"] == "hello from a small model"
    asked = [_asked(r) for r in mock.requests if r.path.endswith("/chat/completions")]
    assert asked and max(a or 0 for a in asked) > 4096  # Claude Code asked for more at first
    assert asked[-1] <= 4096
