"""The Quota pane: one live bar per account."""

from __future__ import annotations

from collections.abc import Callable

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from antiapi.tui.widgets.quota import QuotaList
from antiapi.wire import admin as w


class QuotaPane(Vertical):
    def __init__(self, clock: Callable[[], float], *, tick: float = 1.0, **kw) -> None:
        super().__init__(**kw)
        self.clock = clock
        self._tick = tick

    def compose(self) -> ComposeResult:
        yield Static("Loading quotas…", id="quota-empty", classes="hint")
        yield QuotaList(self.clock, id="quota-list")

    def on_mount(self) -> None:
        if self._tick > 0:
            self.set_interval(self._tick, self.query_one(QuotaList).tick)

    def set_quotas(self, quotas: list[w.AccountQuota]) -> None:
        hint = self.query_one("#quota-empty", Static)
        hint.display = not quotas
        hint.update("No accounts yet: add one in the Accounts tab (4).")
        self.query_one(QuotaList).set_quotas(quotas)

    def update_quota(self, quota: w.AccountQuota) -> None:
        self.query_one("#quota-empty", Static).display = False
        self.query_one(QuotaList).update_quota(quota)
