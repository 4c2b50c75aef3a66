"""Locate (and on first use install) the real Claude Code and Codex CLIs from npm.

They are installed into ``<repo>/.clients`` with the exact versions pinned in
``tests/clients/package.json``; ``.ci/run`` does this up front, the fixture does it for a
developer who runs the README's test command on a fresh machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PREFIX = Path(os.environ.get("ANTIAPI_TEST_CLIENTS", REPO / ".clients"))
_lock = threading.Lock()


def _bin(name: str) -> Path:
    return PREFIX / "node_modules" / ".bin" / name


def ensure_cli(name: str) -> Path:
    """Path of the CLI ``name`` ("claude" or "codex"), installing the pinned versions if needed."""
    with _lock:
        path = _bin(name)
        if path.exists():
            return path
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is not installed: install Node.js (>= 20) to run the CLI tests")
        PREFIX.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(__file__).with_name("package.json"), PREFIX / "package.json")
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=PREFIX, check=True, timeout=600,
        )
        if not path.exists():
            raise RuntimeError(f"npm install did not provide {path}")
        return path
