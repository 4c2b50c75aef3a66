"""The dashboard's Quota screen against a real gateway serving a signed-in Codex account (the
faithful Codex mock): the bar follows the backend's usage headers live, without a reload."""

from __future__ import annotations

import asyncio

import pytest

from antiapi.tui.app import AntiapiApp
from antiapi.tui.client import HttpAdminClient
from antiapi.tui.widgets.quota import QuotaList
from tests.e2e.clients import ChatClient
from tests.providers.codex.conftest import A, codex_config, signed_in
from tests.tui.test_app import text_of, until

pytestmark = pytest.mark.e2e


async def test_quota_bar_moves_when_the_backend_reports_more_usage(codex_mock, gateway_factory):
    codex_mock.accounts[A].primary_used = 30.0
    codex_mock.accounts[A].secondary_used = 10.0
    gw = gateway_factory(codex_config(codex_mock), prepare=signed_in(codex_mock, A))
    account = f"codex:{A}"
    token = (gw.data_dir / "admin_token").read_text().strip()
    app = AntiapiApp(HttpAdminClient(gw.url, token), close_client=True)
    async with app.run_test(size=(100, 30)) as pilot:
        quotas = app.query_one(QuotaList)
        await until(pilot, lambda: app.connected and quotas.bar(account) is not None, timeout=10)
        bar = quotas.bar(account)
        await until(pilot, lambda: bar.row.percent_text == "30%", timeout=10)  # from the usage endpoint
        assert bar.row.level == "ok" and "30%" in text_of(bar)

        # the account is used elsewhere too: the next answer's headers say 80 % (+1.5 for this one)
        codex_mock.accounts[A].primary_used = 80.0
        await asyncio.to_thread(lambda: ChatClient(gw.url).send("gpt-5.5", [{"role": "user", "content": "hi"}], stream=True))
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await until(pilot, lambda: bar.row.percent_text == "82%", timeout=5)  # 81.5 rounded
        assert loop.time() - t0 < 1.5
        assert quotas.bar(account) is bar  # updated in place
        assert bar.row.level == "warn"
        await until(pilot, lambda: "82%" in text_of(bar), timeout=5)
