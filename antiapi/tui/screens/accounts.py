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
    """Add an API-key provider; the gateway serves it at once and keeps it in its data directory.

    With no models given the gateway asks the upstream for its model list, which also checks the
    key; what it answers (a refused key, an unreachable URL, …) is shown in the dialog. A gateway
    that cannot add keys answers with a note (e.g. "add it to the config file"), shown the same way.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "save", "Add")]
    #: one line per field, and one message area under the title, so the dialog fits 80x24
    DEFAULT_CSS = """
    ApiKeyScreen #apikey-box Input { height: 1; border: none; padding: 0 1; background: $boost; }
    ApiKeyScreen #apikey-box Input:focus { background: $primary 30%; }
    ApiKeyScreen #key-note { color: $text-muted; height: auto; max-height: 4; padding: 0 1; }
    ApiKeyScreen #key-status { color: $text-muted; height: auto; padding: 0 1; }
    ApiKeyScreen #key-error { height: auto; max-height: 6; }
    """
    FIELDS = ("type", "name", "value", "base", "models")

    def __init__(self, types: list[str], notes: dict[str, str] | None = None) -> None:
        super().__init__()
        self.types = types
        self.notes = dict(notes or {})

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="apikey-box"):
            yield Static("Add an API-key provider", classes="dialog-title")
            # one of these shows at a time: the server's error, progress, else the type's note
            yield Static("", id="key-error", classes="error")
            yield Static("", id="key-status")
            yield Static("", id="key-note")
            yield Label(f"Type ({', '.join(self.types)})")
            yield Input(self.types[0] if self.types else "", id="key-type")
            yield Label("Name (how routes and the dashboard refer to it)")
            yield Input(id="key-name", placeholder="ollama")
            yield Label("API key (a local OpenAI-compatible server may need none)")
            yield Input(id="key-value", password=True)
            yield Label("Base URL (optional: empty is the type's official API)")
            yield Input(id="key-base", placeholder="http://127.0.0.1:11434/v1")
            yield Label("Models (comma-separated, optional: empty asks the upstream)")
            yield Input(id="key-models", placeholder="llama3.2, qwen3-coder")
        yield Footer()

    def _say(self, *, error: str = "", status: str = "") -> None:
        """Show an error or a progress line instead of the type's note (neither: the note)."""
        for wid, text in (("#key-error", error), ("#key-status", status)):
            widget = self.query_one(wid, Static)
            widget.update(text)
            widget.display = bool(text)
        self.query_one("#key-note").display = self._note_shown()

    def on_mount(self) -> None:
        self._show_note(self.query_one("#key-type", Input).value)
        self._say()
        self.query_one("#key-name", Input).focus()

    def _show_note(self, ptype: str) -> None:
        note = self.query_one("#key-note", Static)
        note.update(self.notes.get(ptype.strip().lower(), ""))
        note.display = self._note_shown()

    def _note_shown(self) -> bool:
        typed = self.query_one("#key-type", Input).value.strip().lower()
        return bool(self.notes.get(typed)) and not any(
            self.query_one(wid).display for wid in ("#key-error", "#key-status"))

    @on(Input.Changed, "#key-type")
    def _type_changed(self, event: Input.Changed) -> None:
        self._show_note(event.value)

    @on(Input.Submitted)
    def _next(self, event: Input.Submitted) -> None:
        event.stop()
        order = [f"key-{k}" for k in self.FIELDS]
        i = order.index(event.input.id or "key-type")
        if i < len(order) - 1:
            self.query_one(f"#{order[i + 1]}", Input).focus()
        else:
            self.action_save()

    def action_cancel(self) -> None:
        self.dismiss(False)

    def account(self) -> w.ApiKeyAccount | str:
        """What the dialog would send, or what to fill in first."""
        val = {k: self.query_one(f"#key-{k}", Input).value.strip() for k in self.FIELDS}
        missing = [k for k in ("type", "name") if not val[k]]
        if not val["value"] and not (val["type"].lower() == "openai" and val["base"]):
            missing.append("API key (a server that needs none: type openai with its base URL)")
        if missing:
            return "Fill in: " + ", ".join(missing)
        models = list(dict.fromkeys(m.strip() for m in val["models"].split(",") if m.strip()))
        return w.ApiKeyAccount(type=val["type"].lower(), name=val["name"], api_key=val["value"],
                               base_url=val["base"] or None, models=models)

    @work(exclusive=True, group="apikey")
    async def action_save(self) -> None:
        acct = self.account()
        if isinstance(acct, str):
            self._say(error=acct)
            return
        self._say(status="Asking the upstream for its models (this checks the key)…" if not acct.models else "Adding…")
        try:
            info = await self.app.client.add_api_key(acct)  # type: ignore[attr-defined]
        except AdminAPIError as e:
            self._say(error=str(e))
            return
        self.app.notify(f"Added {info.name}: {info.models} model{'s' if info.models != 1 else ''}, served now")
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
        # the API-key types' notes are shown in the dialog (k); other types' notes here
        notes = [f"{p.type}: {p.note}" for p in self.providers if p.note and not p.api_key]
        text = ("Sign in: c Codex (ChatGPT) · g Copilot (GitHub)\n"
                "k add an API key: OpenAI(-compatible), Anthropic, Gemini — served at once")
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
        notes = {p.type: p.note for p in self.providers if p.api_key and p.note}

        def done(added: bool | None) -> None:
            if added:
                self.app.reload_accounts()  # type: ignore[attr-defined]

        self.app.push_screen(ApiKeyScreen(types, notes), done)

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

        what = "Its saved key is deleted." if a.source == "admin" else "Its sign-in is deleted."
        self.app.push_screen(ConfirmScreen(f"Remove the account {a.name}? {what}"), confirmed)

    @work(group="accounts")
    async def _remove(self, name: str) -> None:
        try:
            await self.app.client.remove_account(name)  # type: ignore[attr-defined]
        except AdminAPIError as e:
            self.app.notify(str(e), severity="error")
            return
        self.app.notify(f"Removed {name}")
        self.app.reload_accounts()  # type: ignore[attr-defined]
