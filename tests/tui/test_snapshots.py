"""SVG snapshots of every screen (pytest-textual-snapshot). Update with ``--snapshot-update``
after checking the difference report; the scenarios live in ``tests/tui/screenshots.py``."""

from __future__ import annotations

import pytest

pytest.importorskip("pytest_textual_snapshot")

from tests.tui.screenshots import SCENARIOS, make_app  # noqa: E402


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_screen_snapshot(snap_compare, name):
    size, run_before = SCENARIOS[name]
    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)
