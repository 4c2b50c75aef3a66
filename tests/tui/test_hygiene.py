"""Import boundaries of the dashboard and the admin contract, checked in fresh interpreters."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _loaded(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}; import sys; print(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())


@pytest.mark.parametrize("module", ["antiapi.tui.app", "antiapi.tui.cli", "antiapi.tui.web", "antiapi.tui.client"])
def test_the_tui_never_loads_the_server_side(module):
    loaded = _loaded(f"import {module}")
    forbidden = [m for m in loaded if m == "litestar" or m.startswith(("antiapi.server", "antiapi.providers", "antiapi.routing", "antiapi.store"))]
    assert forbidden == []


def test_the_admin_contract_is_pure():
    loaded = _loaded("import antiapi.wire.admin")
    assert not [m for m in ("httpx", "litestar", "textual", "anyio", "uvicorn") if m in loaded]


def test_the_admin_api_never_loads_textual():
    loaded = _loaded("import antiapi.server.admin")
    assert "textual" not in loaded and "antiapi.tui" not in loaded


def test_tui_cli_without_a_token_explains_where_it_is(tmp_path):
    out = subprocess.run([sys.executable, "-m", "antiapi.tui", "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert f"{tmp_path}/admin_token is missing or empty" in out.stderr


def test_tui_cli_reports_an_unreachable_gateway(tmp_path):
    (tmp_path / "admin_token").write_text("t\n")
    out = subprocess.run([sys.executable, "-m", "antiapi.tui", "--data-dir", str(tmp_path), "--url", "http://127.0.0.1:9"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and "cannot reach the gateway at http://127.0.0.1:9" in out.stderr and "antiapi serve" in out.stderr
