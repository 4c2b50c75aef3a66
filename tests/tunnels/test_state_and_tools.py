"""``on_state`` events and ``tool_status`` (with the stand-in tools of standins.py: the real tunnel
services cannot be reached from the test machines)."""

from __future__ import annotations

import asyncio
import logging
import os

import pytest

from antiapi.tunnels import TOOLS, Tunnel, TunnelError, tool_status
from tests.tunnels.standins import make_bindir


def env(tmp_path, mode) -> dict[str, str]:
    return {"STANDIN_MODE": mode, "STANDIN_LOG": str(tmp_path / "runs.jsonl")}


async def wait_for(pred, seconds=5.0):
    for _ in range(int(seconds / 0.05)):
        if pred():
            return
        await asyncio.sleep(0.05)


async def test_on_state_start_crash_restart_stop(bindir, tmp_path):
    events: list[tuple] = []
    urls: list[str] = []
    t = Tunnel(
        "cloudflared",
        8964,
        start_timeout=5.0,
        backoff_initial=0.1,
        env=env(tmp_path, "crash_once"),
        on_url=urls.append,
        on_state=lambda tun: events.append((tun.state, tun.url, tun.error)),
    )
    u1, u2 = "https://run1-calm-words.trycloudflare.com", "https://run2-calm-words.trycloudflare.com"
    try:
        assert await t.start() == u1
        await wait_for(lambda: t.url == u2)
    finally:
        await t.stop()
    assert events == [
        ("starting", None, None),
        ("running", u1, None),
        ("restarting", u1, "cloudflared exited (status 3); restarting"),
        ("running", u2, None),
        ("stopped", None, None),
    ]
    assert urls == [u1, u2]


async def test_on_state_failed_start_and_give_up(bindir, tmp_path):
    events: list[tuple] = []
    t = Tunnel("ngrok", 8964, start_timeout=5.0, env=env(tmp_path, "fail"),
               on_state=lambda tun: events.append((tun.state, tun.error)))
    with pytest.raises(TunnelError) as e:
        await t.start()
    assert events == [("starting", None), ("failed", str(e.value))]

    events.clear()
    t = Tunnel("localtunnel", 8964, start_timeout=5.0, backoff_initial=0.1, max_restarts=1, env=env(tmp_path / "x", "crash"),
               on_state=lambda tun: events.append(tun.state))
    (tmp_path / "x").mkdir()
    try:
        await t.start()
        await wait_for(lambda: t.state == "failed")
    finally:
        await t.stop()
    assert events == ["starting", "running", "restarting", "running", "restarting", "failed", "stopped"]


async def test_on_state_errors_are_logged_and_coroutines_run(bindir, tmp_path, caplog):
    got: list[str] = []

    def boom(tun):
        raise RuntimeError("listener broke")

    t = Tunnel("localtunnel", 8964, start_timeout=5.0, env=env(tmp_path, "ok"), on_state=boom)
    with caplog.at_level(logging.ERROR, logger="antiapi.tunnels"):
        try:
            assert await t.start() == "https://run1.loca.lt"
            assert t.state == "running"
        finally:
            await t.stop()
    assert "on_state callback failed" in caplog.text and "listener broke" in caplog.text

    async def publish(tun):
        await asyncio.sleep(0)
        got.append(tun.state)

    t = Tunnel("localtunnel", 8964, start_timeout=5.0, env=env(tmp_path, "ok"), on_state=publish)
    try:
        await t.start()
        await wait_for(lambda: "running" in got, 2)
    finally:
        await t.stop()
    await asyncio.sleep(0.05)
    # one scheduled coroutine per change (starting, running, stopped); each sees the state it runs in
    assert len(got) == 3 and got[-1] == "stopped"


def _only(tmp_path, *names):
    d = make_bindir(tmp_path / "all")
    only = tmp_path / "only"
    only.mkdir()
    for n in names:
        os.link(d / n, only / n)
    return d, only


def test_tool_status_installed_and_missing(tmp_path, monkeypatch):
    alld, only = _only(tmp_path, "ngrok")
    monkeypatch.setenv("PATH", str(only))
    st = {s["kind"]: s for s in tool_status()}
    assert list(st) == ["ngrok", "cloudflared", "localtunnel"]
    assert st["ngrok"] == {"kind": "ngrok", "installed": True, "path": str(only / "ngrok"),
                           "install": TOOLS["ngrok"].install, "exposes": TOOLS["ngrok"].exposes}
    for kind in ("cloudflared", "localtunnel"):
        assert st[kind] == {"kind": kind, "installed": False, "path": None,
                            "install": TOOLS[kind].install, "exposes": TOOLS[kind].exposes}


def test_tool_status_configured_binaries(tmp_path, monkeypatch):
    alld, only = _only(tmp_path, "ngrok")
    monkeypatch.setenv("PATH", str(only))
    st = {s["kind"]: s for s in tool_status({"cloudflared": str(alld / "cloudflared"), "lt": str(alld / "lt"),
                                              "ngrok": str(tmp_path / "missing" / "ngrok")})}
    assert st["cloudflared"]["installed"] and st["cloudflared"]["path"] == str(alld / "cloudflared")
    assert st["localtunnel"]["installed"] and st["localtunnel"]["path"] == str(alld / "lt")
    # a configured path that does not exist is "not installed", even though ngrok is on PATH
    assert st["ngrok"]["installed"] is False and st["ngrok"]["path"] is None
    st = {s["kind"]: s for s in tool_status({"ngrok": None, "localtunnel": None})}
    assert st["ngrok"]["path"] == str(only / "ngrok") and st["localtunnel"]["installed"] is False
