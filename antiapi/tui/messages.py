"""Messages the event worker posts to the app. Bursts coalesce (``can_replace``): only the latest
quota of an account, status, routing, accounts or settings snapshot is drawn.

May import: textual, antiapi.wire.admin.
"""

from __future__ import annotations

from textual.message import Message

from antiapi.wire import admin as w

__all__ = [
    "AccountsUpdated",
    "ConnectionChanged",
    "KeysUpdated",
    "QuotaUpdated",
    "RemoteUpdated",
    "RequestLogged",
    "RoutingUpdated",
    "SettingsUpdated",
    "SignInUpdated",
    "StatusUpdated",
]


class QuotaUpdated(Message):
    def __init__(self, quota: w.AccountQuota) -> None:
        super().__init__()
        self.quota = quota

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, QuotaUpdated) and message.quota.account == self.quota.account


class RequestLogged(Message):
    """A finished request (never coalesced: every one is a row)."""

    def __init__(self, record: w.RequestRecord) -> None:
        super().__init__()
        self.record = record


class StatusUpdated(Message):
    def __init__(self, status: w.Status) -> None:
        super().__init__()
        self.status = status

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StatusUpdated)


class AccountsUpdated(Message):
    def __init__(self, accounts: list[w.AccountInfo]) -> None:
        super().__init__()
        self.accounts = accounts

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, AccountsUpdated)


class RoutingUpdated(Message):
    def __init__(self, routing: w.RoutingView) -> None:
        super().__init__()
        self.routing = routing

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RoutingUpdated)


class SettingsUpdated(Message):
    def __init__(self, settings: w.Settings) -> None:
        super().__init__()
        self.settings = settings

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SettingsUpdated)


class SignInUpdated(Message):
    def __init__(self, flow: w.SignInFlow) -> None:
        super().__init__()
        self.flow = flow

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SignInUpdated) and message.flow.flow_id == self.flow.flow_id


class RemoteUpdated(Message):
    def __init__(self, remote: w.RemoteView) -> None:
        super().__init__()
        self.remote = remote

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RemoteUpdated)


class KeysUpdated(Message):
    def __init__(self, keys: list[w.ClientKeyInfo]) -> None:
        super().__init__()
        self.keys = keys

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, KeysUpdated)


class ConnectionChanged(Message):
    """The event stream connected (``error`` None) or dropped."""

    def __init__(self, connected: bool, error: str | None = None) -> None:
        super().__init__()
        self.connected = connected
        self.error = error

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ConnectionChanged)


def for_event(event: w.AdminEvent) -> Message | None:
    """The message for one admin event (None for events the TUI does not show)."""
    if isinstance(event, w.RequestEvent):
        return RequestLogged(event.record)
    if isinstance(event, w.QuotaEvent):
        return QuotaUpdated(event.quota)
    if isinstance(event, w.StatusEvent):
        return StatusUpdated(event.status)
    if isinstance(event, w.AccountsEvent):
        return AccountsUpdated(event.accounts)
    if isinstance(event, w.RoutingEvent):
        return RoutingUpdated(event.routing)
    if isinstance(event, w.SettingsEvent):
        return SettingsUpdated(event.settings)
    if isinstance(event, w.SignInEvent):
        return SignInUpdated(event.flow)
    if isinstance(event, w.RemoteEvent):
        return RemoteUpdated(event.remote)
    if isinstance(event, w.KeysEvent):
        return KeysUpdated(event.keys)
    return None
