"""Shared fixtures: mock upstreams (tests/mocks) and a real antiapi server (tests/harness)."""

from __future__ import annotations

import pytest

from tests.harness import GatewayServer, provider_config
from tests.mocks.fixtures import *  # noqa: F401,F403  (mock upstream fixtures)


@pytest.fixture
def gateway_factory(tmp_path):
    """Start antiapi from config text; stopped at the end of the test."""
    started: list[GatewayServer] = []

    def make(config_text: str, env: dict[str, str] | None = None, prepare=None) -> GatewayServer:
        gw = GatewayServer(config_text, tmp_path / f"gw{len(started)}", env=env, prepare=prepare).start()
        started.append(gw)
        return gw

    yield make
    for gw in started:
        gw.stop()


__all__ = ["provider_config"]
