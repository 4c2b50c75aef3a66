"""The Requests pane (live log with filters) and the request detail dialog."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Input, Static

from antiapi.tui import viewmodels as vm
from antiapi.wire import admin as w

MAX_ROWS = 500


class RequestDetailScreen(ModalScreen[None]):
    """Everything about one request: the route tried step by step, account, upstream, timing."""

    BINDINGS = [Binding("escape,q,enter", "dismiss_detail", "Close")]

    def __init__(self, record: w.RequestRecord, tz: _dt.tzinfo | None = None) -> None:
        super().__init__()
        self.record = record
        self.tz = tz

    def compose(self) -> ComposeResult:
        fields, steps = vm.request_detail(self.record, self.tz)
        body = Text()
        for key, value in fields:
            body.append(f"{key:<11}", "bold")
            body.append(value + "\n", "red" if key == "Error" else "")
        body.append("\nRoute\n", "bold underline")
        for i, step in enumerate(steps, 1):
            served = step.endswith("served")
            body.append(f" {i}. ", "dim")
            body.append(step + "\n", "green" if served else ("yellow" if "cooling" in step or "skip" in step else ""))
        if not steps:
            body.append(" (no route recorded)\n", "dim")
        with Vertical(id="detail-box", classes="dialog"):
            yield Static(f"Request {self.record.request_id}", classes="dialog-title")
            with VerticalScroll():
                yield Static(body, id="detail-body")
        yield Footer()

    def action_dismiss_detail(self) -> None:
        self.dismiss(None)


class RequestsPane(Vertical):
    BINDINGS = [
        Binding("slash,f", "filter", "Filter"),
        Binding("enter", "open", "Details", show=True),
        Binding("end,G", "follow", "Follow", show=False),
    ]

    def __init__(self, clock: Callable[[], float], tz: _dt.tzinfo | None = None, **kw) -> None:
        super().__init__(**kw)
        self.clock = clock
        self.tz = tz
        self.records: dict[str, w.RequestRecord] = {}
        self.query_filter = w.RequestQuery()
        self.follow = True

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter: model=… account=… status=error since=10m (enter to apply, esc to close)", id="req-filter")
        yield Static("", id="req-filter-error", classes="error")
        table: DataTable = DataTable(id="req-table", cursor_type="row", zebra_stripes=True)
        yield table

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for col in vm.REQUEST_COLUMNS:
            table.add_column(col, key=col)
        self.query_one("#req-filter").display = False
        self.query_one("#req-filter-error").display = False

    @property
    def table(self) -> DataTable:
        return self.query_one(DataTable)

    def _styled(self, row: vm.RequestRow) -> list[Text | str]:
        cells: list[Text | str] = list(row.cells)
        cells[1] = Text(row.cells[1], style="green" if row.ok else "bold red")
        return cells

    def set_records(self, records: list[w.RequestRecord]) -> None:
        """A snapshot, newest first (as the API returns it)."""
        table = self.table
        table.clear()
        self.records.clear()
        for rec in reversed(records[:MAX_ROWS]):
            self._add(rec)
        if self.follow and table.row_count:
            table.move_cursor(row=table.row_count - 1, animate=False)

    def add_record(self, rec: w.RequestRecord) -> None:
        if rec.request_id in self.records:
            return
        q = self.query_filter
        if q.since is not None and q.since < 0:
            q = w.RequestQuery(model=q.model, account=q.account, status=q.status, since=self.clock() + q.since)
        if not w.request_matches(rec, q):
            return
        table = self.table
        at_end = table.row_count == 0 or table.cursor_row >= table.row_count - 1
        self._add(rec)
        while table.row_count > MAX_ROWS:
            oldest = next(iter(self.records))
            self.records.pop(oldest)
            table.remove_row(oldest)
        if self.follow and at_end:
            table.move_cursor(row=table.row_count - 1, animate=False)

    def _add(self, rec: w.RequestRecord) -> None:
        row = vm.request_row(rec, self.tz)
        self.records[rec.request_id] = rec
        self.table.add_row(*self._styled(row), key=rec.request_id)

    def selected(self) -> w.RequestRecord | None:
        table = self.table
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        return self.records.get(key) if key is not None else None

    def action_open(self) -> None:
        rec = self.selected()
        if rec is not None:
            self.app.push_screen(RequestDetailScreen(rec, self.tz))

    @on(DataTable.RowSelected, "#req-table")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_follow(self) -> None:
        self.follow = True
        if self.table.row_count:
            self.table.move_cursor(row=self.table.row_count - 1)

    def action_filter(self) -> None:
        box = self.query_one("#req-filter", Input)
        box.display = True
        box.focus()

    @on(Input.Submitted, "#req-filter")
    def _apply_filter(self, event: Input.Submitted) -> None:
        event.stop()
        err = self.query_one("#req-filter-error", Static)
        try:
            q = vm.parse_filter(event.value)
        except ValueError as e:
            err.update(str(e))
            err.display = True
            return
        err.display = False
        self.query_filter = q
        if not event.value.strip():
            event.input.display = False
        self.table.focus()
        self.app.reload_requests()  # type: ignore[attr-defined]

    def on_key(self, event) -> None:
        box = self.query_one("#req-filter", Input)
        if event.key == "escape" and box.has_focus:
            event.stop()
            box.display = bool(box.value.strip())
            self.table.focus()

    def api_query(self) -> w.RequestQuery:
        """The filter as sent to the server (relative ``since`` made absolute)."""
        q = self.query_filter
        since = self.clock() + q.since if q.since is not None and q.since < 0 else q.since
        return w.RequestQuery(model=q.model, account=q.account, status=q.status, since=since, limit=q.limit)
