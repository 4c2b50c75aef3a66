"""The HTTP admin client against a real admin server: decoding, errors, the event stream."""

from __future__ import annotations

import asyncio
import socket

import pytest

from antiapi.tui.client import AdminAPIError, AdminUnavailable, HttpAdminClient
from antiapi.wire import admin as w


async def test_resources_round_trip(admin_server):
    c = HttpAdminClient(admin_server.url, admin_server.token)
    try:
        assert (await c.status()).accounts == 3
        assert [a.name for a in await c.accounts()] == ["codex:me@example.com", "copilot:octo", "openai"]
        assert [r.request_id for r in await c.requests(w.RequestQuery(status="error"))] == ["req_b2"]
        assert (await c.request("req_a1")).upstream_model == "gpt-5"
        assert (await c.usage(by="account"))[0].requests == 1
        chain = await c.put_chain("org/model-x", w.ChainEdit(entries=[w.Entry("openai")]))
        assert chain.model == "org/model-x"
        assert admin_server.backend.calls[-1] == ("put_chain", "org/model-x", [w.Entry("openai")], None)
        await c.delete_chain("org/model-x")
        s = await c.update_settings(w.SettingsPatch(default_model=None))
        assert s.default_model is None
        assert admin_server.backend.calls[-1] == ("update_settings", {"default_model": None})
    finally:
        await c.aclose()


async def test_errors_are_typed(admin_server):
    c = HttpAdminClient(admin_server.url, admin_server.token)
    try:
        with pytest.raises(AdminAPIError) as e:
            await c.put_flow("f", w.ChainEdit(entries=[w.Entry("nowhere")]))
        assert e.value.status == 422 and e.value.code == "invalid_value"
        assert "entry 1: 'nowhere' is neither an account nor a provider type here" in e.value.details
        assert "entry 1: 'nowhere'" in str(e.value)
        with pytest.raises(AdminAPIError) as e:
            await c.add_api_key(w.ApiKeyAccount(type="openai", name="n", api_key="k"))
        assert e.value.status == 501 and "config file" in str(e.value)
    finally:
        await c.aclose()
    bad = HttpAdminClient(admin_server.url, "nope")
    try:
        with pytest.raises(AdminAPIError) as e:
            await bad.status()
        assert e.value.status == 401 and e.value.code == "unauthorized"
        with pytest.raises(AdminAPIError) as e:
            async for _ in bad.events():
                pass
        assert e.value.status == 401
    finally:
        await bad.aclose()


async def test_unreachable_gateway():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    c = HttpAdminClient(f"http://127.0.0.1:{port}", "t", timeout=2)
    try:
        with pytest.raises(AdminUnavailable) as e:
            await c.status()
        assert f"127.0.0.1:{port}" in str(e.value)
        with pytest.raises(AdminUnavailable):
            async for _ in c.events():
                pass
    finally:
        await c.aclose()


async def test_event_stream_decodes_and_skips_unknown(admin_server):
    c = HttpAdminClient(admin_server.url, admin_server.token)
    events = c.events()
    try:
        first = await asyncio.wait_for(events.__anext__(), 5)
        assert isinstance(first, w.StatusEvent)
        admin_server.backend.emit(w.SettingsEvent(w.Settings(default_model="x")))
        while True:
            ev = await asyncio.wait_for(events.__anext__(), 5)
            if not isinstance(ev, w.StatusEvent):
                break
        assert ev == w.SettingsEvent(w.Settings(default_model="x"))
    finally:
        await events.aclose()
        await c.aclose()
