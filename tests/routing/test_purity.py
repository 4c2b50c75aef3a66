"""antiapi.routing is pure (stdlib, msgspec, antiapi.errors, antiapi.translate.ir); the store
needs nothing but the standard library and msgspec."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _loaded(module: str) -> set[str]:
    code = f"import sys, {module}; print(' '.join(sys.modules))"
    return set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split())


@pytest.mark.parametrize("module", ["antiapi.routing"])
def test_routing_does_no_io(module):
    loaded = _loaded(module)
    banned = ["httpx", "litestar", "anyio", "uvicorn", "sqlite3", "asyncio", "yaml", "antiapi.providers",
              "antiapi.server", "antiapi.store", "antiapi.config"]
    assert not [m for m in banned if m in loaded], sorted(m for m in loaded if m.startswith("antiapi"))


def test_store_imports_no_web_stack():
    loaded = _loaded("antiapi.store")
    assert not [m for m in ("httpx", "litestar", "anyio", "uvicorn", "antiapi.server", "antiapi.providers") if m in loaded]
