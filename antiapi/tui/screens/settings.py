"""The Settings pane: background-task model mapping, default model, auto-start tunnel, auto-open."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Input, Label, Static, Switch

from antiapi.tui import viewmodels as vm
from antiapi.tui.client import AdminAPIError
from antiapi.wire import admin as w


class SettingsPane(VerticalScroll):
    BINDINGS = [Binding("ctrl+s", "save", "Save"), Binding("ctrl+z", "revert", "Revert")]

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.settings: w.Settings | None = None
        self.dirty = False
        self._loading = False

    def compose(self) -> ComposeResult:
        with Horizontal(classes="field-row"):
            yield Label("Default model", classes="field-label")
            yield Input(id="set-default", placeholder="none (requests must name a model)")
        yield Static("used when a request names no model", classes="field-help")
        with Horizontal(classes="field-row"):
            yield Label("Background model", classes="field-label")
            yield Input(id="set-background", placeholder="none (no mapping)")
        with Horizontal(classes="field-row"):
            yield Label("Background patterns", classes="field-label")
            yield Input(id="set-patterns", placeholder="*haiku*")
        yield Static("requests for models matching these (comma-separated) go to the background model",
                     classes="field-help")
        with Horizontal(classes="field-row"):
            yield Label("Auto-start tunnel", classes="field-label")
            yield Switch(id="set-tunnel")
            yield Static("off", id="set-tunnel-text", classes="switch-text")
        yield Static("start the remote-access tunnel with the server", classes="field-help")
        with Horizontal(classes="field-row"):
            yield Label("Auto-open", classes="field-label")
            yield Switch(id="set-open")
            yield Static("off", id="set-open-text", classes="switch-text")
        yield Static("open the web dashboard in a browser at the next start of antiapi serve", classes="field-help")
        yield Static("", id="settings-state", classes="hint")

    def set_settings(self, settings: w.Settings, *, force: bool = False) -> None:
        self.settings = settings
        if self.dirty and not force:
            self.query_one("#settings-state", Static).update("Changed on the server too: ctrl+z loads its values.")
            return
        self._loading = True
        self.query_one("#set-default", Input).value = settings.default_model or ""
        self.query_one("#set-background", Input).value = settings.background_model or ""
        self.query_one("#set-patterns", Input).value = vm.join_patterns(settings.background_patterns)
        self.query_one("#set-tunnel", Switch).value = settings.auto_start_tunnel
        self.query_one("#set-open", Switch).value = settings.auto_open
        self.call_after_refresh(self._loaded)

    def _loaded(self) -> None:
        self._loading = False
        self.dirty = False
        self.query_one("#settings-state", Static).update("ctrl+s: save")

    @on(Input.Changed)
    @on(Switch.Changed)
    def _changed(self, event) -> None:
        if isinstance(event, Switch.Changed) and event.switch.id:
            self.query_one(f"#{event.switch.id}-text", Static).update("on" if event.value else "off")
        if not self._loading and self.settings is not None:
            self.dirty = True
            self.query_one("#settings-state", Static).update("Unsaved changes · ctrl+s: save · ctrl+z: revert")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def action_revert(self) -> None:
        if self.settings is not None:
            self.set_settings(self.settings, force=True)

    def current_patch(self) -> w.SettingsPatch | None:
        if self.settings is None:
            return None
        return vm.settings_patch(
            self.settings,
            default_model=self.query_one("#set-default", Input).value,
            background_model=self.query_one("#set-background", Input).value,
            background_patterns=self.query_one("#set-patterns", Input).value,
            auto_start_tunnel=self.query_one("#set-tunnel", Switch).value,
            auto_open=self.query_one("#set-open", Switch).value,
        )

    @work(exclusive=True, group="settings")
    async def action_save(self) -> None:
        patch = self.current_patch()
        state = self.query_one("#settings-state", Static)
        if patch is None or vm.patch_is_empty(patch):
            state.update("Nothing to save.")
            return
        try:
            saved = await self.app.client.update_settings(patch)  # type: ignore[attr-defined]
        except AdminAPIError as e:
            state.update(f"Not saved: {e}")
            return
        self.dirty = False
        self.set_settings(saved, force=True)
        self.app.notify("Settings saved")
