"""The Accounts pane: enable/disable, remove, sign in to Codex / Copilot, add API-key providers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Input, Label, Static

from antiapi.tui import viewmodels as vm
from antiapi.tui.client import AdminAPIError
from antiapi.tui.screens.common import ConfirmScreen
from antiapi.wire import admin as w


class SignInScreen(ModalScreen[str | None]):
    """Starts a sign-in and follows it: shows the URL or the device code, then the result.

    Progress arrives as ``signin`` events (the app forwards them) and, as a fallback, by polling
    ``GET /admin/accounts/signin/{id}`` every ``poll`` seconds.
    """

    BINDINGS = [Binding("escape", "close", "Close / cancel")]

    def __init__(self, provider: str, clock: Callable[[], float], *, mode: str | None = None, poll: float = 2.0) -> None:
        super().__init__()
        self.provider = provider
        self.mode = mode
        self.clock = clock
        self.poll = poll
        self.flow: w.SignInFlow | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="signin-box"):
            yield Static(f"Sign in to {self.provider.capitalize()}", classes="dialog-title")
            yield Static(f"Starting the {self.provider} sign-in…", id="signin-body")
            yield Label("Browser could not come back here? Paste the address it ended on:", id="signin-paste-label")
            yield Input(id="signin-paste", placeholder="http://localhost:1455/auth/callback?code=…")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#signin-paste-label").display = False
        self.query_one("#signin-paste").display = False
        self._start()
        self.set_interval(1.0, self._redraw)

    @work(exclusive=True, group="signin")
    async def _start(self) -> None:
        client = self.app.client  # type: ignore[attr-defined]
        try:
            flow = await client.start_signin(self.provider, self.mode)
        except AdminAPIError as e:
            self.query_one("#signin-body", Static).update(Text(f"✗ {e}", "red"))
            return
        self.update_flow(flow)
        while self.flow is not None and self.flow.status == "pending":
            await asyncio.sleep(self.poll)
            try:
                self.update_flow(await client.signin(flow.flow_id))
            except AdminAPIError:
                continue  # the event stream may still tell us; try again

    def update_flow(self, flow: w.SignInFlow) -> None:
        if self.flow is not None and flow.flow_id != self.flow.flow_id:
            return
        self.flow = flow
        # the dialog may be closing while a late event or poll arrives: query(), not query_one()
        for node in self.query("#signin-paste-label, #signin-paste"):
            node.display = bool(flow.url) and flow.status == "pending"
        self._redraw()

    def _redraw(self) -> None:
        if self.flow is None:
            return
        text = Text()
        for line in vm.signin_lines(self.flow, self.clock()):
            style = ""
            if line.startswith("Code"):
                style = "bold reverse"
            elif line.startswith("✓"):
                style = "bold green"
            elif line.startswith("✗"):
                style = "bold red"
            text.append(line + "\n", style)
        if self.flow.status != "pending":
            text.append("\nesc: close", "dim")
        for body in self.query("#signin-body").results(Static):
            body.update(text)

    @on(Input.Submitted, "#signin-paste")
    def _pasted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.flow is not None and event.value.strip():
            self._complete(self.flow.flow_id, event.value.strip())

    @work(group="signin-complete")
    async def _complete(self, flow_id: str, pasted: str) -> None:
        try:
            self.update_flow(await self.app.client.complete_signin(flow_id, pasted))  # type: ignore[attr-defined]
        except AdminAPIError as e:
            self.app.notify(str(e), severity="error")

    async def action_close(self) -> None:
        flow = self.flow
        if flow is not None and flow.status == "pending":
            try:
                await self.app.client.cancel_signin(flow.flow_id)  # type: ignore[attr-defined]
            except AdminAPIError:
                pass  # it ends on its own when the code expires
        self.dismiss(flow.label if flow is not None and flow.status == "done" else None)


class ApiKeyScreen(ModalScreen[bool]):
    """Add an API-key provider; shows the server's note when it does not support that."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "save", "Add")]

    def __init__(self, types: list[str]) -> None:
        super().__init__()
        self.types = types

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="apikey-box"):
            yield Static("Add an API-key provider", classes="dialog-title")
            yield Label(f"Type ({', '.join(self.types)})")
            yield Input(self.types[0] if self.types else "", id="key-type")
            yield Label("Name (how routes refer to it)")
            yield Input(id="key-name", placeholder="openai")
            yield Label("API key")
            yield Input(id="key-value", password=True)
            yield Label("Base URL (optional)")
            yield Input(id="key-base", placeholder="https://api.openai.com/v1")
            yield Static("", id="key-error", classes="error")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#key-name", Input).focus()

    @on(Input.Submitted)
    def _next(self, event: Input.Submitted) -> None:
        event.stop()
        order = ["key-type", "key-name", "key-value", "key-base"]
        i = order.index(event.input.id or "key-type")
        if i < len(order) - 1:
            self.query_one(f"#{order[i + 1]}", Input).focus()
        else:
            self.action_save()

    def action_cancel(self) -> None:
        self.dismiss(False)

    @work(exclusive=True, group="apikey")
    async def action_save(self) -> None:
        val = {k: self.query_one(f"#key-{k}", Input).value.strip() for k in ("type", "name", "value", "base")}
        missing = [k for k in ("type", "name", "value") if not val[k]]
        err = self.query_one("#key-error", Static)
        if missing:
            err.update("Fill in: " + ", ".join("API key" if k == "value" else k for k in missing))
            return
        acct = w.ApiKeyAccount(type=val["type"], name=val["name"], api_key=val["value"], base_url=val["base"] or None)
        try:
            await self.app.client.add_api_key(acct)  # type: ignore[attr-defined]
        except AdminAPIError as e:
            err.update(str(e))
            return
        self.app.notify(f"Added {acct.name}")
        self.dismiss(True)


class AccountsPane(Vertical):
    BINDINGS = [
        Binding("space,e", "toggle", "On/off"),
        Binding("c", "signin('codex')", "Codex"),
        Binding("g", "signin('copilot')", "Copilot"),
        Binding("k", "add_key", "API key"),
        Binding("x,delete", "remove", "Remove"),
    ]

    def __init__(self, clock: Callable[[], float], **kw) -> None:
        super().__init__(**kw)
        self.clock = clock
        self.accounts: list[w.AccountInfo] = []
        self.providers: list[w.ProviderType] = []

    def compose(self) -> ComposeResult:
        yield DataTable(id="accounts-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="accounts-hint", classes="hint")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for col in vm.ACCOUNT_COLUMNS:
            table.add_column(col, key=col)

    def set_accounts(self, accounts: list[w.AccountInfo]) -> None:
        self.accounts = list(accounts)
        table = self.query_one(DataTable)
        keep = table.cursor_row
        table.clear()
        for a in accounts:
            cells = list(vm.account_row(a))
            table.add_row(*cells[:3], Text(cells[3], "green" if a.enabled else "red"), cells[4], key=a.name)
        if accounts:
            table.move_cursor(row=max(0, min(keep, len(accounts) - 1)), animate=False)
        self._hint()

    def set_providers(self, providers: list[w.ProviderType]) -> None:
        self.providers = list(providers)
        self._hint()

    def _hint(self) -> None:
        notes = [f"{p.type}: {p.note}" for p in self.providers if p.note]
        text = "Sign in: c Codex (ChatGPT) · g Copilot (GitHub) · k add an API-key provider"
        if notes:
            text += "\n" + "\n".join(notes)
        self.query_one("#accounts-hint", Static).update(text)

    def selected(self) -> w.AccountInfo | None:
        table = self.query_one(DataTable)
        if not self.accounts or not 0 <= table.cursor_row < len(self.accounts):
            return None
        return self.accounts[table.cursor_row]

    @work(group="accounts")
    async def action_toggle(self) -> None:
        a = self.selected()
        if a is None:
            return
        try:
            await self.app.client.set_account_enabled(a.name, not a.enabled)  # type: ignore[attr-defined]
        except AdminAPIError as e:
            self.app.notify(str(e), severity="error")
            return
        self.app.notify(f"{a.name} {'disabled' if a.enabled else 'enabled'}")
        self.app.reload_accounts()  # type: ignore[attr-defined]

    def action_signin(self, provider: str) -> None:
        def done(label: str | None) -> None:
            if label:
                self.app.notify(f"Signed in to {provider} as {label}")
                self.app.reload_accounts()  # type: ignore[attr-defined]

        self.app.push_screen(SignInScreen(provider, self.clock), done)

    def action_add_key(self) -> None:
        types = [p.type for p in self.providers if p.api_key] or ["openai", "anthropic", "gemini"]

        def done(added: bool | None) -> None:
            if added:
                self.app.reload_accounts()  # type: ignore[attr-defined]

        self.app.push_screen(ApiKeyScreen(types), done)

    def action_remove(self) -> None:
        a = self.selected()
        if a is None:
            return
        if not a.removable:
            self.app.notify(f"{a.name} comes from the config file: remove it there.", severity="warning")
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._remove(a.name)

        self.app.push_screen(ConfirmScreen(f"Remove the account {a.name}? Its sign-in is deleted."), confirmed)

    @work(group="accounts")
    async def _remove(self, name: str) -> None:
        try:
            await self.app.client.remove_account(name)  # type: ignore[attr-defined]
        except AdminAPIError as e:
            self.app.notify(str(e), severity="error")
            return
        self.app.notify(f"Removed {name}")
        self.app.reload_accounts()  # type: ignore[attr-defined]
