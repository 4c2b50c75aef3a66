"""The dashboard's screens with fixed data, for snapshot tests and the docs' screenshots.

``python -m tests.tui.screenshots`` rewrites ``docs/img/tui-*.svg`` from the same scenarios the
snapshot tests check (``tests/tui/test_snapshots.py``).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input

from antiapi.tui.app import AntiapiApp
from antiapi.tui.screens.accounts import SignInScreen
from antiapi.tui.screens.remote import KeyShownScreen, RemotePane
from antiapi.tui.screens.usage import UsagePane
from antiapi.tui.screens.requests import RequestDetailScreen
from antiapi.tui.screens.routing import ChainEditorScreen
from antiapi.tui.widgets.quota import QuotaList
from tests.tui.fakes import T0, FakeClient


def make_app() -> AntiapiApp:
    return AntiapiApp(FakeClient(), clock=lambda: T0, tz=dt.timezone.utc, quota_tick=0)


async def _until(pilot: Pilot, cond: Callable[[], bool], timeout: float = 5.0) -> None:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("screen did not settle")
        await pilot.pause(0.02)


async def _ready(pilot: Pilot) -> None:
    app = pilot.app
    await _until(pilot, lambda: app.connected and app.query_one(QuotaList).bar("openai") is not None  # type: ignore[attr-defined]
                 and app.request_table().row_count == 2)  # type: ignore[attr-defined]
    for inp in app.query(Input):
        inp.cursor_blink = False
    await pilot.pause()


def _show(screen: str, *keys: str, until: Callable[[AntiapiApp], bool] | None = None) -> Callable[[Pilot], Awaitable[None]]:
    async def run_before(pilot: Pilot) -> None:
        await _ready(pilot)
        pilot.app.action_show(screen)  # type: ignore[attr-defined]
        await pilot.pause()
        if keys:
            await pilot.press(*keys)
        if until is not None:
            await _until(pilot, lambda: until(pilot.app))  # type: ignore[arg-type]
        for inp in pilot.app.screen.query(Input):
            inp.cursor_blink = False
        await pilot.pause(0.1)

    return run_before


#: name -> (terminal size, run_before)
SCENARIOS: dict[str, tuple[tuple[int, int], Callable[[Pilot], Awaitable[None]]]] = {
    "quota": ((80, 24), _show("quota")),
    "requests": ((80, 24), _show("requests")),
    "routing": ((80, 24), _show("routing")),
    "accounts": ((80, 24), _show("accounts")),
    "settings": ((80, 24), _show("settings")),
    "request-detail": ((100, 30), _show("requests", "enter", until=lambda a: isinstance(a.screen, RequestDetailScreen))),
    "routing-editor": ((100, 30), _show("routing", "e", until=lambda a: isinstance(a.screen, ChainEditorScreen))),
    "signin": ((100, 30), _show("accounts", "g", until=lambda a: isinstance(a.screen, SignInScreen) and a.screen.flow is not None)),
    "remote": ((80, 24), _show("remote", until=lambda a: a.query_one(RemotePane).view is not None
                              and a.query_one("#keys-table").row_count == 3)),  # type: ignore[attr-defined]
    "key-created": ((100, 30), _show("remote", "n", *"tablet", "ctrl+s", until=lambda a: isinstance(a.screen, KeyShownScreen))),
    "usage": ((80, 24), _show("usage", until=lambda a: bool(a.query_one(UsagePane).rows))),
}


def main() -> None:
    from textual._doc import take_svg_screenshot

    out = Path(__file__).resolve().parents[2] / "docs" / "img"
    out.mkdir(parents=True, exist_ok=True)
    for name, (size, run_before) in SCENARIOS.items():
        svg = take_svg_screenshot(app=make_app(), terminal_size=size, run_before=run_before)
        (out / f"tui-{name}.svg").write_text(svg)
        print(out / f"tui-{name}.svg")


if __name__ == "__main__":
    main()
