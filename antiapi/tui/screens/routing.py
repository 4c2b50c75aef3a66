"""The Routing pane (flows, account chains, Smart Switch, default strategy) and the editor dialog."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import DataTable, Footer, Input, Label, Static

from antiapi.tui import viewmodels as vm
from antiapi.tui.client import AdminAPIError
from antiapi.tui.screens.common import ConfirmScreen
from antiapi.wire import admin as w


class EntryScreen(ModalScreen["w.Entry | None"]):
    """Add or edit one entry: account/provider type, upstream model, optional account label."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "ok", "OK")]

    def __init__(self, entry: w.Entry | None, targets: list[str], need_model: bool) -> None:
        super().__init__()
        self.entry = entry
        self.targets = targets
        self.need_model = need_model

    def compose(self) -> ComposeResult:
        e = self.entry
        with Vertical(classes="dialog", id="entry-box"):
            yield Static("Entry", classes="dialog-title")
            yield Label("Account or provider type")
            yield Input(e.provider if e else "", id="entry-provider", suggester=SuggestFromList(self.targets, case_sensitive=False),
                        placeholder=", ".join(self.targets[:4]) + ("…" if len(self.targets) > 4 else ""))
            yield Label("Upstream model" + ("" if self.need_model else " (empty: the chain's model)"))
            yield Input((e.model or "") if e else "", id="entry-model", placeholder="e.g. gpt-4.1")
            yield Label("Account label (optional: one account of a type)")
            yield Input((e.account or "") if e else "", id="entry-account")
            yield Static("", id="entry-error", classes="error")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#entry-provider", Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        order = ["entry-provider", "entry-model", "entry-account"]
        i = order.index(event.input.id or "entry-provider")
        if i < len(order) - 1:
            self.query_one(f"#{order[i + 1]}", Input).focus()
        else:
            self.action_ok()

    def action_ok(self) -> None:
        provider = self.query_one("#entry-provider", Input).value.strip()
        model = self.query_one("#entry-model", Input).value.strip() or None
        account = self.query_one("#entry-account", Input).value.strip() or None
        problems = w.validate_chain("flow" if self.need_model else "chain", "x", [w.Entry(provider, model, account)], None, self.targets or None)
        if problems:
            err = self.query_one("#entry-error", Static)
            err.update("\n".join(p.replace("entry 1: ", "") for p in problems))
            return
        self.dismiss(w.Entry(provider=provider, model=model, account=account))

    def action_cancel(self) -> None:
        self.dismiss(None)


class ChainEditorScreen(ModalScreen[bool]):
    """Edit a flow or a model's chain: add, edit, remove, reorder entries; strategy; save.

    The edit is validated (``validate_chain``) before it is sent; the server's answer (422 with
    details) is shown the same way.
    """

    BINDINGS = [
        Binding("a", "add", "Add"),
        Binding("e", "edit", "Edit"),
        Binding("x,delete", "remove", "Remove"),
        Binding("K,shift+up", "move(-1)", "Up"),
        Binding("J,shift+down", "move(1)", "Down"),
        Binding("t", "strategy", "Strategy"),
        Binding("ctrl+s", "save", "Save"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, kind: str, name: str | None, entries: list[w.Entry], strategy: str | None, targets: list[str]) -> None:
        super().__init__()
        self.kind = kind
        self.new = name is None
        self.route_name = name or ""
        self.entries = list(entries)
        self.strategy = strategy
        self.targets = targets

    def compose(self) -> ComposeResult:
        what = "flow" if self.kind == "flow" else "chain"
        title = f"New {what}" if self.new else f"Edit {what} {self.route_name}"
        with Vertical(classes="dialog", id="editor-box"):
            yield Static(title, classes="dialog-title")
            if self.new:
                yield Label("Flow name (clients ask for route:<name>)" if self.kind == "flow" else "Model id")
                yield Input(id="editor-name", placeholder="coding" if self.kind == "flow" else "gpt-4.1")
            yield Static("", id="editor-strategy")
            yield DataTable(id="editor-entries", cursor_type="row")
            yield Static("", id="editor-error", classes="error")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#editor-entries", DataTable)
        table.add_columns("#", "Account / type", "Model", "Label")
        self._refresh(0)
        if self.new:
            self.query_one("#editor-name", Input).focus()
        else:
            table.focus()

    def _refresh(self, cursor: int) -> None:
        table = self.query_one("#editor-entries", DataTable)
        table.clear()
        for i, e in enumerate(self.entries, 1):
            table.add_row(str(i), e.provider, e.model or "(chain model)", e.account or "")
        if self.entries:
            table.move_cursor(row=max(0, min(cursor, len(self.entries) - 1)), animate=False)
        s = self.strategy or "default"
        hint = "" if self.entries or self.kind == "flow" else "  (no entries: Smart Switch serves it from every account)"
        self.query_one("#editor-strategy", Static).update(Text.assemble(("Strategy: ", "bold"), s, (hint, "dim")))

    @property
    def cursor(self) -> int:
        return self.query_one("#editor-entries", DataTable).cursor_row

    @on(Input.Submitted, "#editor-name")
    def _name_done(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one("#editor-entries", DataTable).focus()

    def action_add(self) -> None:
        def added(entry: w.Entry | None) -> None:
            if entry is not None:
                self.entries.append(entry)
                self._refresh(len(self.entries) - 1)

        self.app.push_screen(EntryScreen(None, self.targets, self.kind == "flow"), added)

    def action_edit(self) -> None:
        if not self.entries:
            return
        i = self.cursor

        def edited(entry: w.Entry | None) -> None:
            if entry is not None:
                self.entries[i] = entry
                self._refresh(i)

        self.app.push_screen(EntryScreen(self.entries[i], self.targets, self.kind == "flow"), edited)

    @on(DataTable.RowSelected, "#editor-entries")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_edit()

    def action_remove(self) -> None:
        if self.entries:
            i = self.cursor
            del self.entries[i]
            self._refresh(i)

    def action_move(self, delta: int) -> None:
        self.entries, new = vm.move(self.entries, self.cursor, delta)
        self._refresh(new)

    def action_strategy(self) -> None:
        order = [None, *w.STRATEGIES]
        self.strategy = order[(order.index(self.strategy) + 1) % len(order)]  # type: ignore[arg-type]
        self._refresh(self.cursor)

    def action_cancel(self) -> None:
        self.dismiss(False)

    def action_save(self) -> None:
        name = self.query_one("#editor-name", Input).value.strip() if self.new else self.route_name
        problems = w.validate_chain(self.kind, name, self.entries, self.strategy, self.targets or None)  # type: ignore[arg-type]
        if problems:
            self._show_error("Not saved:\n" + "\n".join(f"• {p}" for p in problems))
            return
        self._save(name)

    def _show_error(self, text: str) -> None:
        self.query_one("#editor-error", Static).update(text)

    @work(exclusive=True, group="save")
    async def _save(self, name: str) -> None:
        edit = w.ChainEdit(entries=list(self.entries), strategy=self.strategy)  # type: ignore[arg-type]
        client = self.app.client  # type: ignore[attr-defined]
        try:
            if self.kind == "flow":
                await client.put_flow(name, edit)
            else:
                await client.put_chain(name, edit)
        except AdminAPIError as e:
            self._show_error("Not saved: " + str(e))
            return
        self.app.notify(f"Saved {self.kind} {name}")
        self.dismiss(True)


class RoutingPane(Vertical):
    BINDINGS = [
        Binding("e", "edit", "Edit"),
        Binding("n", "new_flow", "New flow"),
        Binding("c", "new_chain", "New chain"),
        Binding("d,delete", "delete", "Delete"),
        Binding("s", "smart_switch", "Smart Switch"),
        Binding("t", "strategy", "Strategy"),
    ]

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.view: w.RoutingView | None = None
        self._keys: list[tuple[str, str]] = []

    def compose(self) -> ComposeResult:
        yield Static("", id="routing-switches")
        with Horizontal(id="routing-body"):
            yield DataTable(id="routing-table", cursor_type="row")
            yield Static("", id="routing-entries")

    def on_mount(self) -> None:
        self.query_one("#routing-table", DataTable).add_columns("Kind", "Name", "Strategy", "Entries")

    def set_routing(self, view: w.RoutingView) -> None:
        self.view = view
        table = self.query_one("#routing-table", DataTable)
        keep = table.cursor_row
        table.clear()
        self._keys = []
        for key, kind, cells in vm.route_rows(view):
            table.add_row(*cells, key=key)
            self._keys.append((kind, key.split(":", 1)[1]))
        if self._keys:
            table.move_cursor(row=max(0, min(keep, len(self._keys) - 1)), animate=False)
        sw = Text.assemble(
            ("Smart Switch ", "bold"), ("ON" if view.smart_switch else "OFF", "bold green" if view.smart_switch else "bold red"),
            ("  (s)   ", "dim"), ("Default strategy ", "bold"), view.strategy, ("  (t)", "dim"),
        )
        self.query_one("#routing-switches", Static).update(sw)
        self._show_entries()

    def _current(self) -> tuple[str, str, list[w.Entry], str | None] | None:
        if self.view is None or not self._keys:
            return None
        row = self.query_one("#routing-table", DataTable).cursor_row
        if not 0 <= row < len(self._keys):
            return None
        kind, name = self._keys[row]
        if kind == "flow":
            f = next((f for f in self.view.flows if f.name == name), None)
            return (kind, name, list(f.entries), f.strategy) if f else None
        c = next((c for c in self.view.chains if c.model == name), None)
        return (kind, name, list(c.entries), c.strategy) if c else None

    @on(DataTable.RowHighlighted, "#routing-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_entries()

    def _show_entries(self) -> None:
        cur = self._current()
        out = Text()
        if cur is None:
            out.append("No flows or chains yet.\n", "dim")
            out.append("n: new flow (route:<name>)\nc: account chain for a model", "dim")
        else:
            kind, name, entries, _ = cur
            out.append(("route:" if kind == "flow" else "") + name + "\n", "bold")
            if not entries:
                out.append("Smart Switch: every account serving it\n", "dim")
            for i, e in enumerate(entries, 1):
                out.append(f"{i}. {vm.entry_text(e)}\n")
        self.query_one("#routing-entries", Static).update(out)

    def _targets(self) -> list[str]:
        return list(self.view.targets) if self.view else []

    def _open(self, kind: str, name: str | None, entries: list[w.Entry], strategy: str | None) -> None:
        def done(saved: bool | None) -> None:
            if saved:
                self.app.reload_routing()  # type: ignore[attr-defined]

        self.app.push_screen(ChainEditorScreen(kind, name, entries, strategy, self._targets()), done)

    def action_edit(self) -> None:
        cur = self._current()
        if cur is not None:
            self._open(*cur)

    @on(DataTable.RowSelected, "#routing-table")
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_edit()

    def action_new_flow(self) -> None:
        self._open("flow", None, [], None)

    def action_new_chain(self) -> None:
        self._open("chain", None, [], None)

    def action_delete(self) -> None:
        cur = self._current()
        if cur is None:
            return
        kind, name, _, _ = cur

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._delete(kind, name)

        self.app.push_screen(ConfirmScreen(f"Delete the {kind} {name}?"), confirmed)

    @work(group="routing-edit")
    async def _delete(self, kind: str, name: str) -> None:
        client = self.app.client  # type: ignore[attr-defined]
        try:
            await (client.delete_flow(name) if kind == "flow" else client.delete_chain(name))
        except AdminAPIError as e:
            self.app.notify(str(e), severity="error")
            return
        self.app.notify(f"Deleted {kind} {name}")
        self.app.reload_routing()  # type: ignore[attr-defined]

    @work(group="routing-edit")
    async def action_smart_switch(self) -> None:
        if self.view is None:
            return
        await self._patch(w.RoutingPatch(smart_switch=not self.view.smart_switch))

    @work(group="routing-edit")
    async def action_strategy(self) -> None:
        if self.view is None:
            return
        order = list(w.STRATEGIES)
        nxt = order[(order.index(self.view.strategy) + 1) % len(order)] if self.view.strategy in order else order[0]
        await self._patch(w.RoutingPatch(strategy=nxt))  # type: ignore[arg-type]

    async def _patch(self, patch: w.RoutingPatch) -> None:
        try:
            view = await self.app.client.update_routing(patch)  # type: ignore[attr-defined]
        except AdminAPIError as e:
            self.app.notify(str(e), severity="error")
            return
        self.set_routing(view)
