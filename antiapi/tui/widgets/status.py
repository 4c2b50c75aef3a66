"""The status line at the top: server URL, uptime, requests/min, errors/min, connection."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from antiapi.tui import viewmodels as vm
from antiapi.wire import admin as w


class StatusLine(Static):
    """One line; ``update_status`` redraws it in place."""

    DEFAULT_CSS = """
    StatusLine { height: 1; background: $panel; color: $text; padding: 0 1; }
    """

    def __init__(self, url: str = "", **kw) -> None:
        super().__init__("", **kw)
        self.url = url
        self.status: w.Status | None = None
        self.connected = False
        self.error: str | None = None

    def on_mount(self) -> None:
        self._redraw()

    def set_status(self, status: w.Status) -> None:
        self.status = status
        self._redraw()

    def set_connection(self, connected: bool, error: str | None) -> None:
        self.connected = connected
        self.error = error
        self._redraw()

    def _redraw(self) -> None:
        line = vm.status_line(self.status, connected=self.connected, error=self.error, url=self.url)
        text = Text(line, no_wrap=True, overflow="ellipsis")
        state_end = line.find(" │ ") if " │ " in line else len(line)
        text.stylize("bold green" if self.connected else ("bold red" if self.error else "yellow"), 0, state_end)
        self.update(text)
