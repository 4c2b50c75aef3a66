"""The Remote pane: how the gateway can be reached, the tunnel (start/stop, public URL, settings)
and the client keys (create — shown once —, revoke, limits)."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Input, Label, Select, Static

from antiapi.tui import viewmodels as vm
from antiapi.tui.client import AdminAPIError
from antiapi.tui.screens.common import ConfirmScreen
from antiapi.wire import admin as w

_LEVEL_STYLE = {"ok": "green", "warn": "yellow", "bad": "bold red", "": ""}
_TOOLS = ("cloudflared", "ngrok", "localtunnel")


class _Form(ModalScreen[object]):
    """A small dialog of inputs; enter moves to the next field, then saves."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "save", "Save")]
    order: tuple[str, ...] = ()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_save(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    @on(Input.Submitted)
    def _next(self, event: Input.Submitted) -> None:
        event.stop()
        ids = list(self.order)
        i = ids.index(event.input.id) if event.input.id in ids else len(ids) - 1
        if i < len(ids) - 1:
            self.query_one(f"#{ids[i + 1]}", Input).focus()
        else:
            self.action_save()

    def _error(self, text: str) -> None:
        self.query_one(".error", Static).update(text)


class KeyCreateScreen(_Form):
    """New client key: name and optional limits. Dismisses with the created key (and its secret)."""

    order = ("newkey-name", "newkey-rpm", "newkey-tpd")

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="newkey-box"):
            yield Static("New client key", classes="dialog-title")
            yield Label("Name (who uses it)")
            yield Input(id="newkey-name", placeholder="laptop")
            yield Label("Requests per minute (empty: no limit)")
            yield Input(id="newkey-rpm", placeholder="no limit")
            yield Label("Tokens per day, input + output (empty: no limit; 2m = 2,000,000)")
            yield Input(id="newkey-tpd", placeholder="no limit")
            yield Static("", id="newkey-error", classes="error")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#newkey-name", Input).focus()

    @work(exclusive=True, group="newkey")
    async def action_save(self) -> None:
        name = self.query_one("#newkey-name", Input).value.strip()
        if not name:
            self._error("Give the key a name that says who uses it, e.g. laptop")
            return
        try:
            rpm = vm.parse_limit(self.query_one("#newkey-rpm", Input).value, "requests per minute")
            tpd = vm.parse_limit(self.query_one("#newkey-tpd", Input).value, "tokens per day")
        except ValueError as e:
            self._error(str(e))
            return
        try:
            created = await self.app.client.create_key(w.KeyCreate(name=name, rpm_limit=rpm, tokens_per_day=tpd))  # type: ignore[attr-defined]
        except AdminAPIError as e:
            self._error(str(e))
            return
        self.dismiss(created)


class KeyShownScreen(ModalScreen[None]):
    """Shows a new key once. The secret lives only in this dialog and is dropped when it closes."""

    BINDINGS = [Binding("escape,enter", "close", "Done"), Binding("ctrl+y", "copy", "Copy key")]

    def __init__(self, created: w.KeyCreated, url: str) -> None:
        super().__init__()
        self.created = created
        self.url = url

    def compose(self) -> ComposeResult:
        k = self.created.key
        with Vertical(classes="dialog", id="keyshown-box"):
            yield Static(f"Client key {k.id} ({k.name}) created", classes="dialog-title")
            yield Static("Copy it now: it is shown only this once (antiapi keeps only its hash).")
            yield Input(self.created.secret, id="keyshown-secret")
            yield Static(
                "Clients send it as their API key ('Authorization: Bearer …' or 'x-api-key: …').\n"
                "For Claude Code and the OpenAI SDKs, for example:\n"
                f"  ANTHROPIC_BASE_URL={self.url} ANTHROPIC_API_KEY=<key>\n"
                f"  OPENAI_BASE_URL={self.url}/v1 OPENAI_API_KEY=<key>\n"
                "From now on every request to this gateway needs a key, local ones too.",
                classes="hint",
            )
        yield Footer()

    def on_mount(self) -> None:
        box = self.query_one("#keyshown-secret", Input)
        box.focus()
        box.action_select_all()

    def action_copy(self) -> None:
        """Copy the key to the clipboard (OSC 52: most terminals, also over SSH)."""
        self.app.copy_to_clipboard(self.created.secret)
        self.app.notify("Key copied to the clipboard (if your terminal allows it)")

    def action_close(self) -> None:
        self.query_one("#keyshown-secret", Input).value = ""
        self.dismiss(None)


class KeyLimitsScreen(_Form):
    """Change a key's limits; dismisses with True when saved."""

    order = ("limits-rpm", "limits-tpd")

    def __init__(self, key: w.ClientKeyInfo) -> None:
        super().__init__()
        self.key = key

    def compose(self) -> ComposeResult:
        k = self.key
        with Vertical(classes="dialog", id="limits-box"):
            yield Static(f"Limits of client key {k.id} ({k.name})", classes="dialog-title")
            yield Label("Requests per minute (empty: no limit)")
            yield Input(str(k.rpm_limit or ""), id="limits-rpm", placeholder="no limit")
            yield Label("Tokens per day, input + output (empty: no limit)")
            yield Input(str(k.tokens_per_day or ""), id="limits-tpd", placeholder="no limit")
            yield Static("", id="limits-error", classes="error")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#limits-rpm", Input).focus()

    @work(exclusive=True, group="limits")
    async def action_save(self) -> None:
        try:
            patch = vm.key_patch(self.key, self.query_one("#limits-rpm", Input).value,
                                 self.query_one("#limits-tpd", Input).value)
        except ValueError as e:
            self._error(str(e))
            return
        try:
            await self.app.client.update_key(str(self.key.id), patch)  # type: ignore[attr-defined]
        except AdminAPIError as e:
            self._error(str(e))
            return
        self.dismiss(True)


class TunnelSettingsScreen(_Form):
    """The tunnel tool, its binary and the ngrok authtoken (never shown; empty leaves it)."""

    order = ("tunnel-binary", "tunnel-authtoken")

    def __init__(self, view: w.RemoteView) -> None:
        super().__init__()
        self.view = view

    def compose(self) -> ComposeResult:
        v = self.view
        installed = {t.kind: t.installed for t in v.tools}
        options = [(f"{k}{'' if installed.get(k) else '  (not installed)'}", k) for k in _TOOLS]
        # the saved tool, else the first one this machine has, else cloudflared (no account needed)
        chosen = v.provider if v.provider in _TOOLS else next((k for k in _TOOLS if installed.get(k)), _TOOLS[0])
        with Vertical(classes="dialog", id="tunnel-box"):
            yield Static("Tunnel settings", classes="dialog-title")
            yield Label("Tool")
            yield Select(options, value=chosen, id="tunnel-tool", allow_blank=False)
            yield Label("Executable (empty: find it on PATH)")
            yield Input(v.binary or "", id="tunnel-binary", placeholder="/usr/local/bin/cloudflared")
            yield Label(f"ngrok authtoken ({'saved; type a new one to replace it' if v.authtoken_set else 'not saved'})")
            yield Input(id="tunnel-authtoken", password=True, placeholder="unchanged")
            yield Static("", id="tunnel-error", classes="error")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#tunnel-tool", Select).focus()

    @work(exclusive=True, group="tunnel-settings")
    async def action_save(self) -> None:
        tool = self.query_one("#tunnel-tool", Select).value
        patch = w.RemotePatch()
        provider = tool if isinstance(tool, str) else None
        if provider != self.view.provider:
            patch.provider = provider
        binary = self.query_one("#tunnel-binary", Input).value.strip() or None
        if binary != self.view.binary:
            patch.binary = binary
        token = self.query_one("#tunnel-authtoken", Input).value.strip()
        if token:
            patch.authtoken = token
        try:
            view = await self.app.client.update_remote(patch)  # type: ignore[attr-defined]
        except AdminAPIError as e:
            self._error(str(e))
            return
        self.dismiss(view)


class RemotePane(Vertical):
    """Exposure, tunnel and client keys (see the module docstring)."""

    BINDINGS = [
        Binding("s", "start_tunnel", "Start tunnel"),
        Binding("x", "stop_tunnel", "Stop tunnel"),
        Binding("t", "tunnel_settings", "Tunnel settings"),
        Binding("u", "copy_url", "Copy URL"),
        Binding("n", "new_key", "New key"),
        Binding("l", "limits", "Limits"),
        Binding("d,delete", "revoke", "Revoke key"),
    ]

    def __init__(self, clock: Callable[[], float], tz: _dt.tzinfo | None = None, *, refresh_every: float = 2.0,
                 **kw) -> None:
        super().__init__(**kw)
        self.clock = clock
        self.tz = tz
        self.refresh_every = refresh_every
        self.view: w.RemoteView | None = None
        self.keys: list[w.ClientKeyInfo] = []
        self._stale = False

    def compose(self) -> ComposeResult:
        yield Static("Loading…", id="remote-info")
        yield DataTable(id="keys-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="remote-hint", classes="hint")

    def on_mount(self) -> None:
        table = self.query_one("#keys-table", DataTable)
        for col in vm.KEY_COLUMNS:
            table.add_column(col, key=col)
        self._hint()
        self.set_interval(self.refresh_every, self._refresh_if_stale)

    def mark_stale(self) -> None:
        """A request made with a client key finished: today's counts change (reloaded at the next
        tick, at most every ``refresh_every`` seconds)."""
        self._stale = True

    def _refresh_if_stale(self) -> None:
        if self._stale:
            self._stale = False
            self.app.reload_remote()  # type: ignore[attr-defined]

    # ---------------------------------------------------------------- drawing

    def set_remote(self, view: w.RemoteView) -> None:
        self.view = view
        self._draw_info()

    def set_unavailable(self, reason: str) -> None:
        self.query_one("#remote-info", Static).update(Text(f"Remote access is not available: {reason}", "red"))

    def _draw_info(self, note: str | None = None) -> None:
        if self.view is None:
            return
        text = Text()
        for line, level in vm.remote_lines(self.view):
            text.append(line + "\n", _LEVEL_STYLE.get(level, ""))
        if note:
            text.append(note + "\n", "italic")
        self.query_one("#remote-info", Static).update(text)

    def set_keys(self, keys: list[w.ClientKeyInfo]) -> None:
        self.keys = list(keys)
        table = self.query_one("#keys-table", DataTable)
        keep = table.cursor_row
        table.clear()
        now = self.clock()
        for k in keys:
            cells = list(vm.key_row(k, now, self.tz))
            cells[-1] = Text(cells[-1], "red" if k.revoked else "green")  # type: ignore[call-overload]
            table.add_row(*cells, key=str(k.id))
        if keys:
            table.move_cursor(row=max(0, min(keep, len(keys) - 1)), animate=False)

    def _hint(self) -> None:
        self.query_one("#remote-hint", Static).update(
            "tunnel: s start x stop t settings u copy URL │ keys: n new l limits d revoke")

    def selected(self) -> w.ClientKeyInfo | None:
        table = self.query_one("#keys-table", DataTable)
        if not self.keys or not 0 <= table.cursor_row < len(self.keys):
            return None
        return self.keys[table.cursor_row]

    # ---------------------------------------------------------------- tunnel

    @work(exclusive=True, group="tunnel")
    async def action_start_tunnel(self) -> None:
        if self.view is not None and not (self.view.provider or self.view.tunnel.kind):
            self.action_tunnel_settings()
            return
        self._draw_info("Starting the tunnel… (the tool may take a few seconds to print its URL)")
        try:
            view = await self.app.client.start_tunnel(w.TunnelStart())  # type: ignore[attr-defined]
        except AdminAPIError as e:
            self._draw_info()
            self.app.notify(str(e), title="Tunnel not started", severity="error", timeout=12)
            self.app.reload_remote()  # type: ignore[attr-defined]
            return
        self.set_remote(view)
        self.app.notify(f"Tunnel up: {view.tunnel.url}")

    def action_stop_tunnel(self) -> None:
        if self.view is None or self.view.tunnel.state == "stopped":
            self.app.notify("The tunnel is not running.")
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._stop()

        self.app.push_screen(ConfirmScreen("Stop the tunnel? Its public URL stops working."), confirmed)

    @work(exclusive=True, group="tunnel")
    async def _stop(self) -> None:
        try:
            self.set_remote(await self.app.client.stop_tunnel())  # type: ignore[attr-defined]
        except AdminAPIError as e:
            self.app.notify(str(e), severity="error")
            return
        self.app.notify("Tunnel stopped")

    def action_copy_url(self) -> None:
        """Copy the tunnel's public URL to the clipboard (OSC 52)."""
        url = self.view.tunnel.url if self.view is not None else None
        if not url:
            self.app.notify("No tunnel URL to copy: start the tunnel first (s).", severity="warning")
            return
        self.app.copy_to_clipboard(url)
        self.app.notify(f"Copied {url}")

    def action_tunnel_settings(self) -> None:
        if self.view is None:
            return

        def done(view: object) -> None:
            if isinstance(view, w.RemoteView):
                self.set_remote(view)  # at once: a quick `s` must see the new tool
                self.app.notify(f"Tunnel settings saved (tool: {view.provider or 'none'})")

        self.app.push_screen(TunnelSettingsScreen(self.view), done)

    # ---------------------------------------------------------------- keys

    def action_new_key(self) -> None:
        def done(created: object) -> None:
            if isinstance(created, w.KeyCreated):
                url = self.app.client.url  # type: ignore[attr-defined]
                self.app.push_screen(KeyShownScreen(created, url))
                self.app.reload_remote()  # type: ignore[attr-defined]

        self.app.push_screen(KeyCreateScreen(), done)

    def action_limits(self) -> None:
        k = self.selected()
        if k is None or k.revoked:
            self.app.notify("Choose an active key first.", severity="warning")
            return

        def done(saved: object) -> None:
            if saved:
                self.app.notify(f"Limits of {k.name} saved")
                self.app.reload_remote()  # type: ignore[attr-defined]

        self.app.push_screen(KeyLimitsScreen(k), done)

    def action_revoke(self) -> None:
        k = self.selected()
        if k is None or k.revoked:
            self.app.notify("Choose an active key first.", severity="warning")
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._revoke(k)

        self.app.push_screen(ConfirmScreen(f"Revoke the client key {k.id} ({k.name})? Clients using it are refused."),
                             confirmed)

    @work(group="keys")
    async def _revoke(self, k: w.ClientKeyInfo) -> None:
        try:
            await self.app.client.revoke_key(str(k.id))  # type: ignore[attr-defined]
        except AdminAPIError as e:
            self.app.notify(str(e), severity="error", timeout=12)
            return
        self.app.notify(f"Revoked {k.name}")
        self.app.reload_remote()  # type: ignore[attr-defined]
