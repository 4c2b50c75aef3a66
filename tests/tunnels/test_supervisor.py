"""Tunnel supervision with stand-in executables (ngrok, cloudflared, lt; tests/tunnels/standins.py)
written into a temp dir put first on PATH (the ``bindir`` fixture, conftest.py). They print their
public URL the way the real tools do, crash or hang: the real services cannot be reached from here."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from antiapi.tunnels import Tunnel, TunnelError, find_binary


def runs(log) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def make(kind, tmp_path, mode="ok", **kw) -> Tunnel:
    kw.setdefault("start_timeout", 5.0)
    return Tunnel(kind, 8964, env={"STANDIN_MODE": mode, "STANDIN_LOG": str(tmp_path / "runs.jsonl")}, **kw)


@pytest.mark.parametrize(
    "kind,url,argv",
    [
        ("ngrok", "https://run1.ngrok-free.app", ["http", "http://127.0.0.1:8964", "--log", "stdout", "--log-format", "json"]),
        ("cloudflared", "https://run1-calm-words.trycloudflare.com", ["tunnel", "--no-autoupdate", "--url", "http://127.0.0.1:8964"]),
        ("localtunnel", "https://run1.loca.lt", ["--port", "8964", "--local-host", "127.0.0.1"]),
    ],
)
async def test_public_url_is_read_from_the_tools_output(bindir, tmp_path, kind, url, argv):
    seen = []
    t = make(kind, tmp_path, authtoken="tok-123", on_url=seen.append)
    try:
        assert await t.start() == url
        st = t.status()
        assert st["state"] == "running" and st["url"] == url and st["pid"] and st["restarts"] == 0
        assert st["binary"] == str(bindir / ("lt" if kind == "localtunnel" else kind))
        assert seen == [url]
        r = runs(tmp_path / "runs.jsonl")
        assert r[0]["argv"] == argv
        assert r[0]["token"] == ("tok-123" if kind == "ngrok" else None)  # env, never argv
        pid = st["pid"]
    finally:
        await t.stop()
    assert t.status()["state"] == "stopped" and t.status()["url"] is None and t.status()["pid"] is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_crash_is_restarted_and_the_new_url_reported(bindir, tmp_path):
    seen = []
    t = make("cloudflared", tmp_path, mode="crash_once", backoff_initial=0.1, on_url=seen.append)
    try:
        assert await t.start() == "https://run1-calm-words.trycloudflare.com"
        for _ in range(100):
            if t.status()["url"] == "https://run2-calm-words.trycloudflare.com":
                break
            await asyncio.sleep(0.05)
        st = t.status()
        assert st["url"] == "https://run2-calm-words.trycloudflare.com" and st["restarts"] == 1 and st["state"] == "running"
        assert seen == ["https://run1-calm-words.trycloudflare.com", "https://run2-calm-words.trycloudflare.com"]
    finally:
        await t.stop()


async def test_restart_backoff_doubles_and_gives_up(bindir, tmp_path):
    t = make("localtunnel", tmp_path, mode="crash", backoff_initial=0.2, max_restarts=3)
    try:
        await t.start()
        for _ in range(200):
            if t.status()["state"] == "failed":
                break
            await asyncio.sleep(0.05)
        st = t.status()
        assert st["state"] == "failed" and st["restarts"] == 3
        assert st["error"].startswith("localtunnel kept exiting; gave up after 3 restarts.")
        times = [r["t"] for r in runs(tmp_path / "runs.jsonl")]
        assert len(times) == 4
        # each run lives ~0.3 s, then waits 0.2, 0.4, 0.8 s before the next launch
        gaps = [b - a - 0.3 for a, b in zip(times, times[1:])]
        assert gaps[0] == pytest.approx(0.2, abs=0.15)
        assert gaps[1] == pytest.approx(0.4, abs=0.15)
        assert gaps[2] == pytest.approx(0.8, abs=0.15)
    finally:
        await t.stop()


async def test_hang_times_out_with_the_last_output(bindir, tmp_path):
    t = make("ngrok", tmp_path, mode="hang", start_timeout=0.5)
    with pytest.raises(TunnelError) as e:
        await t.start()
    msg = str(e.value)
    assert msg.startswith("ngrok ran for 0.5 s without printing a public URL, so it was stopped")
    assert '"msg": "open config file"' in msg
    assert t.status()["state"] == "failed" and t.status()["pid"] is None


async def test_exit_before_url_reports_its_output(bindir, tmp_path):
    t = make("ngrok", tmp_path, mode="fail")
    with pytest.raises(TunnelError) as e:
        await t.start()
    assert str(e.value).startswith("ngrok exited (status 1) before giving a public URL. Its last output:")
    assert "requires a verified account and authtoken" in str(e.value)
    assert t.status()["state"] == "failed"


@pytest.mark.parametrize(
    "kind,hint",
    [("ngrok", "https://ngrok.com/download"), ("cloudflared", "brew install cloudflared"), ("localtunnel", "npm install -g localtunnel")],
)
async def test_missing_binary_says_how_to_install(tmp_path, monkeypatch, kind, hint):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing there
    t = make(kind, tmp_path)
    with pytest.raises(TunnelError) as e:
        await t.start()
    assert "is not installed" in str(e.value) and hint in str(e.value)
    assert t.status()["state"] == "failed" and t.status()["error"] == str(e.value)


def test_configured_binary_path(bindir, tmp_path):
    assert find_binary("cloudflared", str(bindir / "cloudflared")) == str(bindir / "cloudflared")
    with pytest.raises(TunnelError, match="does not exist or is not executable"):
        find_binary("cloudflared", str(tmp_path / "nope" / "cloudflared"))
    with pytest.raises(TunnelError, match="unknown tunnel 'frp'"):
        find_binary("frp")


