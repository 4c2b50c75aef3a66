"""The real terminal: ``python -m antiapi.tui --url … --token …`` (what ``antiapi tui`` runs)
inside tmux; keys via ``send-keys``, the screen via ``capture-pane``."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from antiapi.wire import admin as w

ROOT = str(Path(__file__).resolve().parents[2])

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install -y tmux)")


class Tmux:
    def __init__(self, command: str, width: int = 80, height: int = 24) -> None:
        self.name = f"antiapi-test-{uuid.uuid4().hex[:8]}"
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height), command], check=True)

    def screen(self) -> str:
        out = subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True)
        return out.stdout

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def wait_for(self, text: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not on screen after {timeout}s:\n{screen}")

    def alive(self) -> bool:
        return subprocess.run(["tmux", "has-session", "-t", self.name], capture_output=True).returncode == 0

    def kill(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


def test_tui_in_a_real_terminal(admin_server, tmp_path):
    cmd = " ".join(shlex.quote(p) for p in [
        sys.executable, "-m", "antiapi.tui", "--url", admin_server.url, "--token", admin_server.token,
    ])
    # keep the pane after exit so the exit code can be read
    term = Tmux(f"cd {shlex.quote(str(tmp_path))} && PYTHONPATH={shlex.quote(ROOT)} {cmd}; echo EXIT=$?; sleep 30")
    try:
        screen = term.wait_for("● live", timeout=15)
        assert "1 Quota" in screen and "codex:me@example.com" in screen and "42%" in screen
        assert "12 req/min" in screen
        admin_server.backend.set_quota("codex:me@example.com", 64.0)
        term.wait_for("64%")
        term.keys("2")
        screen = term.wait_for("claude-sonnet-4")
        assert "429" in screen
        admin_server.backend.add_record(w.RequestRecord(time=time.time(), request_id="req_tmux", model="gpt-tmux", status=200, provider="openai"))
        term.wait_for("gpt-tmux", timeout=3)
        term.keys("3")
        screen = term.wait_for("Smart Switch")
        assert "route:coding" in screen and "1. codex → gpt-5" in screen
        term.keys("s")
        term.wait_for("Smart Switch OFF")
        assert ("update_routing", {"smart_switch": False}) in admin_server.backend.calls
        term.keys("q")
        term.wait_for("EXIT=0")
    finally:
        term.kill()


def test_tui_refuses_a_wrong_token_before_drawing(admin_server, tmp_path):
    cmd = " ".join(shlex.quote(p) for p in [sys.executable, "-m", "antiapi.tui", "--url", admin_server.url, "--token", "nope"])
    term = Tmux(f"PYTHONPATH={shlex.quote(ROOT)} {cmd}; echo EXIT=$?; sleep 30", width=120)
    try:
        screen = term.wait_for("EXIT=1", timeout=15)
        assert "refused the admin token" in screen
    finally:
        term.kill()
