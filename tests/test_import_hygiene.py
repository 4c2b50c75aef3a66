"""The architecture rules, checked at run time in fresh interpreters."""

from __future__ import annotations

import subprocess
import sys

import pytest

PURE = [
    "antiapi.translate.ir", "antiapi.translate.common", "antiapi.translate.aggregate", "antiapi.translate.fastpath",
    "antiapi.translate.tokens", "antiapi.translate.anthropic", "antiapi.translate.openai_chat",
    "antiapi.translate.openai_responses", "antiapi.translate.gemini", "antiapi.wire.sse",
    "antiapi.routing.router", "antiapi.routing.policy", "antiapi.routing.table",
]
IO_LIBS = ["httpx", "litestar", "anyio", "uvicorn", "textual", "asyncio.base_events"]


def _loaded_after_import(module: str) -> set[str]:
    code = f"import sys, {module}; print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


@pytest.mark.parametrize("module", PURE)
def test_translation_and_wire_modules_do_no_io(module):
    loaded = _loaded_after_import(module)
    assert not [lib for lib in IO_LIBS if lib in loaded], f"{module} pulls in I/O libraries"


def test_headless_server_never_loads_textual():
    loaded = _loaded_after_import("antiapi.server.app, antiapi.cli")
    assert "textual" not in loaded and "litestar" in loaded
