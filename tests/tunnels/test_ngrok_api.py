"""ngrok's URL from its local agent API (``/api/tunnels``) when its log has no ``"started tunnel"``
line. The ngrok here is a stand-in (standins.py, mode ``ngrok_api``) serving that API on an
ephemeral 127.0.0.1 port; the real ngrok service cannot be reached from the test machines."""

from __future__ import annotations

import asyncio

import pytest

from antiapi.tunnels import Tunnel, TunnelError
from antiapi.tunnels import supervisor as sup


def env(tmp_path, mode, **extra) -> dict[str, str]:
    return {"STANDIN_MODE": mode, "STANDIN_LOG": str(tmp_path / "runs.jsonl"), **extra}


async def test_url_is_read_from_the_agent_api_when_the_log_has_none(bindir, tmp_path):
    t = Tunnel("ngrok", 8964, start_timeout=5.0, env=env(tmp_path, "ngrok_api"))
    try:
        # the stand-in's API first lists no tunnel, then someone else's (port 1), http and https ones
        assert await t.start() == "https://run1.ngrok-free.app"
        out = "\n".join(t.status()["last_output"])
        assert '"msg": "starting web service"' in out and "started tunnel" not in out
        assert t.status()["state"] == "running"
    finally:
        await t.stop()


async def test_agent_api_is_used_again_after_a_restart(bindir, tmp_path):
    seen: list[str] = []
    t = Tunnel(
        "ngrok",
        8964,
        start_timeout=5.0,
        backoff_initial=0.1,
        on_url=seen.append,
        env=env(tmp_path, "ngrok_api,crash_once", STANDIN_API_EMPTY="0", STANDIN_CRASH_AFTER="1.0"),
    )
    try:
        assert await t.start() == "https://run1.ngrok-free.app"
        for _ in range(100):
            if t.status()["url"] == "https://run2.ngrok-free.app":
                break
            await asyncio.sleep(0.05)
        st = t.status()
        # the second run's API is on a new ephemeral port: its address was rediscovered
        assert st["url"] == "https://run2.ngrok-free.app" and st["state"] == "running" and st["restarts"] == 1
        assert seen == ["https://run1.ngrok-free.app", "https://run2.ngrok-free.app"]
    finally:
        await t.stop()


def _recording_api(monkeypatch) -> list[tuple[str, int, str]]:
    """Replace the HTTP fetch: record where it would go, answer with a URL naming that address."""
    calls: list[tuple[str, int, str]] = []

    async def fake(host, port, path, timeout=1.0):
        calls.append((host, port, path))
        return {"tunnels": [{"public_url": f"https://via-{host}-{port}.example", "proto": "https",
                             "config": {"addr": "http://127.0.0.1:8964"}}]}

    monkeypatch.setattr(sup, "_http_get_json", fake)
    monkeypatch.setattr(sup, "NGROK_API_POLL", 0.1)
    return calls


@pytest.mark.parametrize(
    "logged,polled",
    [
        ("http://192.0.2.7:4041", ("127.0.0.1", 4040)),  # not loopback: ignored, default used
        ("http://example.com:4041", ("127.0.0.1", 4040)),
        ("https://127.0.0.1:4041", ("127.0.0.1", 4040)),
        ("http://127.0.0.1:4041", ("127.0.0.1", 4041)),  # 4040 was busy: the logged one is used
        ("http://localhost:4042", ("127.0.0.1", 4042)),
    ],
)
async def test_only_a_loopback_web_addr_is_polled(bindir, tmp_path, monkeypatch, logged, polled):
    calls = _recording_api(monkeypatch)
    t = Tunnel("ngrok", 8964, start_timeout=3.0, env=env(tmp_path, "hang", STANDIN_NGROK_WEB_ADDR=logged))
    try:
        assert await t.start() == f"https://via-{polled[0]}-{polled[1]}.example"
        assert calls and set(calls) == {(*polled, "/api/tunnels")}
    finally:
        await t.stop()


async def test_no_web_service_line_polls_the_default(bindir, tmp_path, monkeypatch):
    calls = _recording_api(monkeypatch)
    t = Tunnel("ngrok", 8964, start_timeout=3.0, env=env(tmp_path, "hang"))
    try:
        assert await t.start() == "https://via-127.0.0.1-4040.example"
        assert set(calls) == {("127.0.0.1", 4040, "/api/tunnels")}
    finally:
        await t.stop()


async def test_other_tools_do_not_poll(bindir, tmp_path, monkeypatch):
    calls = _recording_api(monkeypatch)
    t = Tunnel("cloudflared", 8964, start_timeout=0.6, env=env(tmp_path, "hang"))
    with pytest.raises(TunnelError, match="without printing a public URL"):
        await t.start()
    assert calls == []


async def test_ngrok_api_override(bindir, tmp_path, local_server):
    tunnels = {"tunnels": [
        {"name": "x", "public_url": "https://mine-other.ngrok-free.app", "proto": "https", "config": {"addr": "http://127.0.0.1:9"}},
        {"name": "command_line", "public_url": "https://mine.ngrok-free.app", "proto": "https",
         "config": {"addr": "http://127.0.0.1:8964"}},
    ], "uri": "/api/tunnels"}
    srv = local_server(lambda method, path, body: (200, tunnels) if path == "/api/tunnels" else (404, {}))
    t = Tunnel("ngrok", 8964, start_timeout=5.0, ngrok_api=f"http://127.0.0.1:{srv.port}", env=env(tmp_path, "hang"))
    try:
        assert await t.start() == "https://mine.ngrok-free.app"
        assert srv.requests[0]["method"] == "GET" and srv.requests[0]["path"] == "/api/tunnels"
    finally:
        await t.stop()


async def test_api_listing_only_other_ports_gives_no_url(bindir, tmp_path, local_server):
    other = {"tunnels": [{"public_url": "https://other.ngrok-free.app", "proto": "https", "config": {"addr": "localhost:3000"}}]}
    srv = local_server(lambda method, path, body: (200, other))
    t = Tunnel("ngrok", 8964, start_timeout=1.2, ngrok_api=f"http://127.0.0.1:{srv.port}", env=env(tmp_path, "hang"))
    with pytest.raises(TunnelError, match="without printing a public URL"):
        await t.start()
    assert len(srv.requests) >= 1 and t.status()["url"] is None


@pytest.mark.parametrize("addr", ["http://10.0.0.1:4040", "http://example.com:4040", "https://127.0.0.1:4040", "ftp://127.0.0.1"])
def test_ngrok_api_override_must_be_loopback(addr):
    with pytest.raises(TunnelError, match="loopback"):
        Tunnel("ngrok", 8964, ngrok_api=addr)


def test_loopback_api_and_url_choice():
    assert sup._loopback_api("http://127.0.0.1:4041") == ("127.0.0.1", 4041)
    assert sup._loopback_api("127.0.0.2:4040") == ("127.0.0.2", 4040)
    assert sup._loopback_api("http://[::1]:4040") == ("::1", 4040)
    assert sup._loopback_api("http://0.0.0.0:4040") == ("127.0.0.1", 4040)
    for bad in ("http://192.168.1.2:4040", "http://user:pw@127.0.0.1:4040", "http://localhost.evil.com:4040", "nonsense:port"):
        assert sup._loopback_api(bad) is None, bad
    data = {"tunnels": [
        {"public_url": "http://a.ngrok-free.app", "config": {"addr": "http://localhost:8964"}},
        {"public_url": "https://a.ngrok-free.app", "config": {"addr": "http://localhost:8964"}},
    ]}
    assert sup._ngrok_api_url(data, 8964) == "https://a.ngrok-free.app"
    assert sup._ngrok_api_url(data, 8965) is None
    assert sup._ngrok_api_url({"tunnels": []}, 8964) is None
    assert sup._ngrok_api_url("garbage", 8964) is None
    line = '{"addr":"http://127.0.0.1:4041","lvl":"info","msg":"starting web service","obj":"web"}'
    assert sup._ngrok_web_addr(line) == "http://127.0.0.1:4041"
    assert sup._ngrok_web_addr('t=x lvl=info msg="starting web service" obj=web addr=127.0.0.1:4040 allow_hosts=[]') == "127.0.0.1:4040"
    assert sup._ngrok_web_addr('{"msg":"started tunnel","url":"https://x"}') is None
