"""The Usage pane: requests, errors, tokens and latency grouped by account, model, upstream model,
day or client key, over a chosen period (``GET /admin/usage``)."""

from __future__ import annotations

from collections.abc import Callable

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from antiapi.tui import viewmodels as vm
from antiapi.tui.client import AdminAPIError
from antiapi.wire import admin as w

#: (label, seconds back; None: everything kept)
PERIODS: tuple[tuple[str, float | None], ...] = (("last 24 h", 86400.0), ("last 7 days", 7 * 86400.0),
                                                 ("last 30 days", 30 * 86400.0), ("all kept", None))
_GROUP_LABELS = {"account": "account", "model": "model", "upstream_model": "upstream model", "day": "day (UTC)",
                 "client_key": "client key"}


class UsagePane(Vertical):
    BINDINGS = [
        Binding("g", "next_group", "Group by"),
        Binding("p", "next_period", "Period"),
    ]

    def __init__(self, clock: Callable[[], float], *, refresh_every: float = 2.0, **kw) -> None:
        super().__init__(**kw)
        self.clock = clock
        self.group = "account"
        self.period = 0
        self.rows: list[w.UsageAggregate] = []
        self.refresh_every = refresh_every
        self._stale = False

    def compose(self) -> ComposeResult:
        yield Static("", id="usage-title")
        yield DataTable(id="usage-table", cursor_type="row", zebra_stripes=True)
        yield Static("g: group by account / model / upstream model / day / client key · p: period", classes="hint")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for col in vm.USAGE_COLUMNS:
            table.add_column(col, key=col)
        self._title()
        self.set_interval(self.refresh_every, self._refresh_if_stale)

    def _title(self, note: str = "") -> None:
        label, _ = PERIODS[self.period]
        total = sum(r.requests for r in self.rows)
        text = f"Usage by {_GROUP_LABELS.get(self.group, self.group)}, {label}: {total} requests"
        self.query_one("#usage-title", Static).update(text + (f" · {note}" if note else ""))

    def since(self) -> float | None:
        back = PERIODS[self.period][1]
        return None if back is None else self.clock() - back

    def set_usage(self, rows: list[w.UsageAggregate]) -> None:
        self.rows = list(rows)
        table = self.query_one(DataTable)
        table.clear()
        for r in rows:
            table.add_row(*vm.usage_row(r))
        self._title()

    def mark_stale(self) -> None:
        """A request finished: reload at the next tick (at most every ``refresh_every`` s)."""
        self._stale = True

    def _refresh_if_stale(self) -> None:
        if self._stale and self.display:
            self._stale = False
            self.load()

    @work(exclusive=True, group="usage")
    async def load(self) -> None:
        try:
            rows = await self.app.client.usage(self.group, self.since())  # type: ignore[attr-defined]
        except AdminAPIError as e:
            rows, error = None, str(e)
        try:
            if rows is None:
                self._title(f"✗ {error}")
            else:
                self.set_usage(rows)
        except NoMatches:  # the answer came while the app was closing
            self.log.debug("usage snapshot dropped: the app is closing")

    def action_next_group(self) -> None:
        groups = list(w.USAGE_GROUPS)
        self.group = groups[(groups.index(self.group) + 1) % len(groups)] if self.group in groups else groups[0]
        self.load()

    def action_next_period(self) -> None:
        self.period = (self.period + 1) % len(PERIODS)
        self.load()
