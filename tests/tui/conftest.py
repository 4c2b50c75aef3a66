from __future__ import annotations

import pytest

from tests.tui.server import AdminServer


@pytest.fixture
def admin_server():
    server = AdminServer().start()
    yield server
    server.stop()
