"""Config files as users write them, served end to end."""

from __future__ import annotations

import anthropic
import openai
import pytest

from tests.mocks import Reply, Text

pytestmark = pytest.mark.e2e

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def test_a_litellm_config_works_unchanged(mock_upstream, gateway_factory):
    root = mock_upstream.root_url
    gw = gateway_factory(
        f"""
model_list:
  - model_name: fast
    litellm_params:
      model: openai/gpt-4.1-mini
      api_base: {root}/v1
      api_key: os.environ/MY_OPENAI_KEY
  - model_name: smart
    litellm_params:
      model: anthropic/claude-sonnet-4-5
      api_base: {root}
      api_key: os.environ/MY_ANTHROPIC_KEY
litellm_settings:
  drop_params: true
router_settings:
  routing_strategy: simple-shuffle
""",
        env={"MY_OPENAI_KEY": "test-key", "MY_ANTHROPIC_KEY": "test-key"},
    )
    assert any("litellm_settings" in w for w in gw.config.warnings)
    mock_upstream.enqueue(Reply([Text("fast answer")]), Reply([Text("smart answer")]))
    oc = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
    assert oc.chat.completions.create(model="fast", messages=[{"role": "user", "content": "q"}]).choices[0].message.content == "fast answer"
    ac = anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0)
    msg = ac.messages.create(model="smart", max_tokens=64, messages=[{"role": "user", "content": "q"}])
    assert msg.content[0].text == "smart answer"
    paths = [r.path for r in mock_upstream.requests]
    assert paths == ["/v1/chat/completions", "/v1/messages"]
    assert mock_upstream.requests[0].json["model"] == "gpt-4.1-mini"
    assert mock_upstream.requests[1].headers["x-api-key"] == "test-key"


def test_declared_capabilities_fail_fast_with_a_clear_400(mock_upstream, gateway_factory):
    gw = gateway_factory(
        f"providers:\n  local: {{type: openai, base_url: '{mock_upstream.root_url}/v1', api_key: test-key}}\n"
        "models:\n  - {name: tiny, provider: local, model: tiny-1b, capabilities: {images: false, tools: false}}\n"
    )
    ac = anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as e:
        ac.messages.create(model="tiny", max_tokens=64, messages=[{"role": "user", "content": [
            {"type": "text", "text": "what is it"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        ]}])
    assert "does not accept images" in e.value.body["error"]["message"]
    oc = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.BadRequestError) as e2:
        oc.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "q"}], tools=[
            {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}])
    assert "does not support tools" in e2.value.body["message"]
    assert mock_upstream.requests == []
