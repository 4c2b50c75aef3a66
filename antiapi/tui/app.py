"""The dashboard app: ``AntiapiApp(client)``.

One exclusive worker consumes the admin event stream (reconnecting with back-off) and posts
coalescing messages (:mod:`antiapi.tui.messages`); the app forwards them to the panes, which draw
view-models (:mod:`antiapi.tui.viewmodels`). Snapshots are (re)loaded at start, on reconnect and
after an edit. The client is injected: :class:`~antiapi.tui.client.HttpAdminClient` in
production, a fake in tests.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import time
from collections.abc import Callable
from typing import Any

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.widgets import DataTable, Footer, TabbedContent, TabPane

from antiapi.tui.client import AdminAPIError, AdminClient
from antiapi.tui.messages import (
    AccountsUpdated,
    ConnectionChanged,
    KeysUpdated,
    QuotaUpdated,
    RemoteUpdated,
    RequestLogged,
    RoutingUpdated,
    SettingsUpdated,
    SignInUpdated,
    StatusUpdated,
    for_event,
)
from antiapi.tui.screens.accounts import AccountsPane, SignInScreen
from antiapi.tui.screens.quota import QuotaPane
from antiapi.tui.screens.remote import RemotePane
from antiapi.tui.screens.requests import RequestsPane
from antiapi.tui.screens.routing import RoutingPane
from antiapi.tui.screens.settings import SettingsPane
from antiapi.tui.screens.usage import UsagePane
from antiapi.tui.widgets.status import StatusLine

__all__ = ["SCREENS", "AntiapiApp"]

#: tab id -> label (the digit is the key that shows it)
SCREENS: dict[str, str] = {
    "quota": "1 Quota",
    "requests": "2 Requests",
    "routing": "3 Routing",
    "accounts": "4 Accounts",
    "settings": "5 Settings",
    "remote": "6 Remote",
    "usage": "7 Usage",
}


class AntiapiApp(App[int]):
    """antiapi's dashboard.

    Args:
        client: the admin API client (see :class:`~antiapi.tui.client.AdminClient`).
        clock: wall clock for countdowns (tests pass a fixed one).
        tz: time zone for request times (None: local).
        screen: the tab shown first (a key of :data:`SCREENS`).
        live: follow the event stream (tests of static screens turn it off).
        close_client: close ``client`` when the app exits.
    """

    CSS_PATH = "app.tcss"
    TITLE = "antiapi"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("1", "show('quota')", "Quota", show=False),
        Binding("2", "show('requests')", "Requests", show=False),
        Binding("3", "show('routing')", "Routing", show=False),
        Binding("4", "show('accounts')", "Accounts", show=False),
        Binding("5", "show('settings')", "Settings", show=False),
        Binding("6", "show('remote')", "Remote", show=False),
        Binding("7", "show('usage')", "Usage", show=False),
        Binding("ctrl+r", "reload", "Reload", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        client: AdminClient,
        *,
        clock: Callable[[], float] = time.time,
        tz: _dt.tzinfo | None = None,
        screen: str = "quota",
        live: bool = True,
        close_client: bool = False,
        reconnect_max: float = 5.0,
        quota_tick: float = 1.0,
    ) -> None:
        super().__init__()
        self.client = client
        self.clock = clock
        self.tz = tz
        self.first_screen = screen if screen in SCREENS else "quota"
        self.live = live
        self.close_client = close_client
        self.reconnect_max = reconnect_max
        self.quota_tick = quota_tick
        self.connected = False
        #: events received (tests and debugging)
        self.events_seen = 0
        # live messages that arrive while a snapshot loads are held and replayed after it, so an
        # older snapshot never overwrites a newer event (every event carries a full new state)
        self._loading = 0
        self._held: list[Any] = []

    # ---------------------------------------------------------------- layout

    def compose(self) -> ComposeResult:
        yield StatusLine(getattr(self.client, "url", ""), id="status")
        with TabbedContent(initial=self.first_screen, id="tabs"):
            with TabPane(SCREENS["quota"], id="quota"):
                yield QuotaPane(self.clock, tick=self.quota_tick, id="quota-pane")
            with TabPane(SCREENS["requests"], id="requests"):
                yield RequestsPane(self.clock, self.tz, id="requests-pane")
            with TabPane(SCREENS["routing"], id="routing"):
                yield RoutingPane(id="routing-pane")
            with TabPane(SCREENS["accounts"], id="accounts"):
                yield AccountsPane(self.clock, id="accounts-pane")
            with TabPane(SCREENS["settings"], id="settings"):
                yield SettingsPane(id="settings-pane")
            with TabPane(SCREENS["remote"], id="remote"):
                yield RemotePane(self.clock, self.tz, id="remote-pane")
            with TabPane(SCREENS["usage"], id="usage"):
                yield UsagePane(self.clock, id="usage-pane")
        yield Footer()

    def on_mount(self) -> None:
        self.load_all()
        if self.live:
            self.watch_events()
        self.call_after_refresh(self._focus_pane, self.first_screen)

    async def on_unmount(self) -> None:
        if self.close_client:
            await self.client.aclose()

    # ---------------------------------------------------------------- navigation

    def action_show(self, screen: str) -> None:
        self.query_one(TabbedContent).active = screen
        self._focus_pane(screen)

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id:
            self.call_after_refresh(self._focus_pane, event.pane.id)

    def _focus_pane(self, screen: str) -> None:
        target: Any = {
            "quota": "#quota-list",
            "requests": "#req-table",
            "routing": "#routing-table",
            "accounts": "#accounts-table",
            "settings": "#set-default",
            "remote": "#keys-table",
            "usage": "#usage-table",
        }.get(screen)
        if target:
            try:
                self.query_one(target).focus()
            except Exception:  # the pane may not be mounted yet at start-up
                self.log.debug(f"focus {target} failed")

    def action_reload(self) -> None:
        self.load_all()

    # ---------------------------------------------------------------- snapshots

    @work(exclusive=True, group="load")
    async def load_all(self) -> None:
        c = self.client
        self._loading += 1
        try:
            try:
                status, quotas, routing, accounts, providers, settings, records = await asyncio.gather(
                    c.status(), c.quotas(), c.routing(), c.accounts(), c.providers(), c.settings(),
                    c.requests(self.query_one(RequestsPane).api_query()),
                )
            except AdminAPIError as e:
                self.post_message(ConnectionChanged(False, str(e)))
                return
            self.query_one(StatusLine).set_status(status)
            self.query_one(QuotaPane).set_quotas(quotas)
            self.query_one(RoutingPane).set_routing(routing)
            accounts_pane = self.query_one(AccountsPane)
            accounts_pane.set_providers(providers)
            accounts_pane.set_accounts(accounts)
            self.query_one(SettingsPane).set_settings(settings, force=True)
            self.query_one(RequestsPane).set_records(records)
        finally:
            self._loading -= 1
            self._replay()
        self.reload_remote()
        self.query_one(UsagePane).load()

    def _replay(self) -> None:
        if self._loading:
            return
        held, self._held = self._held, []
        for message in held:
            self._apply(message)

    async def _load_requests(self) -> None:
        pane = self.query_one(RequestsPane)
        try:
            records = await self.client.requests(pane.api_query())
        except AdminAPIError as e:
            self.notify(f"request log: {e}", severity="error")
            return
        pane.set_records(records)

    @work(exclusive=True, group="load-requests")
    async def reload_requests(self) -> None:
        await self._load_requests()

    @work(exclusive=True, group="load-routing")
    async def reload_routing(self) -> None:
        try:
            self.query_one(RoutingPane).set_routing(await self.client.routing())
        except AdminAPIError as e:
            self.notify(str(e), severity="error")

    @work(exclusive=True, group="load-remote")
    async def reload_remote(self) -> None:
        """The Remote screen's snapshots (apart from the rest: a gateway without a state
        database has no client keys, and that must not blank the other screens)."""
        try:
            view, keys = await asyncio.gather(self.client.remote_view(), self.client.keys())
        except AdminAPIError as e:
            view, keys, error = None, [], str(e)
        try:
            pane = self.query_one(RemotePane)
            if view is None:
                pane.set_unavailable(error)
                return
            pane.set_remote(view)
            pane.set_keys(keys)
        except NoMatches:  # the answer came while the app was closing: nothing left to draw on
            self.log.debug("remote snapshot dropped: the app is closing")

    @work(exclusive=True, group="load-accounts")
    async def reload_accounts(self) -> None:
        try:
            accounts, quotas = await asyncio.gather(self.client.accounts(), self.client.quotas())
        except AdminAPIError as e:
            self.notify(str(e), severity="error")
            return
        self.query_one(AccountsPane).set_accounts(accounts)
        self.query_one(QuotaPane).set_quotas(quotas)

    # ---------------------------------------------------------------- live events

    @work(exclusive=True, group="events")
    async def watch_events(self) -> None:
        """Follow ``/admin/events``; reconnect with back-off and reload snapshots after a gap."""
        delay = 0.5
        first = True
        while True:
            try:
                async for event in self.client.events():
                    if not self.connected:
                        self.connected = True
                        self.post_message(ConnectionChanged(True))
                        if not first:
                            self.load_all()
                        first = False
                    delay = 0.5
                    self.events_seen += 1
                    msg = for_event(event)
                    if msg is not None:
                        self.post_message(msg)
                error = "the server closed the event stream"
            except AdminAPIError as e:
                error = str(e)
            first = False
            self.connected = False
            self.post_message(ConnectionChanged(False, error))
            await asyncio.sleep(delay)
            delay = min(self.reconnect_max, delay * 2)

    def on_connection_changed(self, message: ConnectionChanged) -> None:
        line = self.query_one_optional(StatusLine)
        if line is not None:  # None: the app is closing
            line.set_connection(message.connected, message.error)

    @on(StatusUpdated)
    @on(QuotaUpdated)
    @on(RequestLogged)
    @on(RoutingUpdated)
    @on(AccountsUpdated)
    @on(SettingsUpdated)
    @on(SignInUpdated)
    @on(RemoteUpdated)
    @on(KeysUpdated)
    def _live(self, message: Any) -> None:
        if self._loading:
            self._held.append(message)
        else:
            self._apply(message)

    def _apply(self, message: Any) -> None:
        try:
            self._apply_one(message)
        except NoMatches:  # a late event while the app closes: nothing left to draw on
            self.log.debug(f"dropped {type(message).__name__}: the app is closing")

    def _apply_one(self, message: Any) -> None:
        if isinstance(message, StatusUpdated):
            self.query_one(StatusLine).set_status(message.status)
        elif isinstance(message, QuotaUpdated):
            self.query_one(QuotaPane).update_quota(message.quota)
        elif isinstance(message, RequestLogged):
            self.query_one(RequestsPane).add_record(message.record)
            self.query_one(UsagePane).mark_stale()
            if message.record.client_key:
                self.query_one(RemotePane).mark_stale()
        elif isinstance(message, RoutingUpdated):
            self.query_one(RoutingPane).set_routing(message.routing)
        elif isinstance(message, AccountsUpdated):
            self.query_one(AccountsPane).set_accounts(message.accounts)
        elif isinstance(message, SettingsUpdated):
            self.query_one(SettingsPane).set_settings(message.settings)
        elif isinstance(message, RemoteUpdated):
            pane = self.query_one(RemotePane)
            before = pane.view.active_keys if pane.view is not None else None
            pane.set_remote(message.remote)
            if before is not None and before != message.remote.active_keys:
                self.reload_remote()  # keys created or revoked elsewhere (antiapi keys …)
        elif isinstance(message, KeysUpdated):
            self.query_one(RemotePane).set_keys(message.keys)
        elif isinstance(message, SignInUpdated):
            for screen in self.screen_stack:
                if isinstance(screen, SignInScreen):
                    screen.update_flow(message.flow)

    # ---------------------------------------------------------------- helpers for tests

    def request_table(self) -> DataTable:
        return self.query_one("#req-table", DataTable)
