"""The ``forward`` stand-in really relays TCP: HTTP sent to "the tunnel" reaches a local server
from 127.0.0.1, as traffic through a real tunnel does (the real services cannot be reached from
the test machines, see standins.py)."""

from __future__ import annotations

import asyncio
import http.client
import json

import pytest

from antiapi.tunnels import Tunnel
from tests.tunnels.standins import forward_port


def _post(port: int, path: str, body: bytes) -> tuple[int, dict]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        return r.status, json.loads(r.read())
    finally:
        c.close()


@pytest.mark.parametrize(
    "kind,url",
    [
        ("ngrok", "https://run1.ngrok-free.app"),
        ("cloudflared", "https://run1-calm-words.trycloudflare.com"),
        ("localtunnel", "https://run1.loca.lt"),
    ],
)
async def test_forward_relays_http_to_the_target_port(bindir, tmp_path, local_server, kind, url):
    srv = local_server(lambda method, path, body: (201, {"echo": body.decode(), "path": path, "secret": "s3cr3t"}))
    fwd = tmp_path / "fwd.port"
    t = Tunnel(kind, srv.port, start_timeout=5.0,
               env={"STANDIN_MODE": "forward", "STANDIN_LOG": str(tmp_path / "runs.jsonl"), "STANDIN_FORWARD_FILE": str(fwd)})
    try:
        assert await t.start() == url  # printed the same way as without forwarding
        port = forward_port(fwd)
        assert port != srv.port
        status, obj = await asyncio.to_thread(_post, port, "/v1/messages?beta=true", b'{"hello": "tunnel"}')
        assert status == 201 and obj == {"echo": '{"hello": "tunnel"}', "path": "/v1/messages?beta=true", "secret": "s3cr3t"}
        assert [(r["method"], r["client"]) for r in srv.requests] == [("POST", "127.0.0.1")]
    finally:
        await t.stop()
    with pytest.raises(OSError):  # the relay was the stand-in: gone with it
        await asyncio.to_thread(_post, port, "/", b"")


async def test_forward_with_ngrok_api(bindir, tmp_path, local_server):
    srv = local_server(lambda method, path, body: (200, {"ok": True}))
    fwd = tmp_path / "fwd.port"
    t = Tunnel("ngrok", srv.port, start_timeout=5.0,
               env={"STANDIN_MODE": "forward,ngrok_api", "STANDIN_FORWARD_FILE": str(fwd)})
    try:
        assert await t.start() == "https://run1.ngrok-free.app"
        assert "started tunnel" not in "\n".join(t.status()["last_output"])
        status, obj = await asyncio.to_thread(_post, forward_port(fwd), "/x", b"{}")
        assert status == 200 and obj == {"ok": True}
    finally:
        await t.stop()
