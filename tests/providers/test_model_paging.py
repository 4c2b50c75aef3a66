"""Model lists longer than one page (Anthropic: 20 by default, 1000 at most; Gemini: 50 by default,
1000 at most) are read whole, as a dashboard-added key needs every model its account has."""

from __future__ import annotations

import pytest

from antiapi.config.schema import ProviderConfig
from antiapi.providers.http import Timeouts
from antiapi.providers.registry import provider_class

pytestmark = pytest.mark.e2e

IDS = [f"model-{i:04d}" for i in range(1205)]


@pytest.mark.parametrize(("kind", "root"), [("anthropic", ""), ("gemini", "")])
async def test_every_page_of_the_model_list_is_read(mock_upstream_factory, tmp_path, kind, root):
    mock = mock_upstream_factory(kind, models=IDS)
    pc = ProviderConfig(name=kind, type=kind, base_url=mock.root_url + root, api_key="test-key")
    p = provider_class(kind)(pc, timeouts=Timeouts(connect=5, first_byte=5, idle=5), transport=None, data_dir=tmp_path, env={})
    try:
        assert await p.list_models() == IDS
    finally:
        await p.aclose()
    pages = [r for r in mock.requests if r.method == "GET"]
    assert len(pages) == 2  # 1000 + 205
    if kind == "anthropic":
        assert pages[0].query["limit"] == "1000" and pages[1].query["after_id"] == "model-0999"
    else:
        assert pages[0].query["pageSize"] == "1000" and pages[1].query["pageToken"]
