"""The dashboard's panes (one per tab) and the dialogs they open."""

from antiapi.tui.screens.accounts import AccountsPane
from antiapi.tui.screens.quota import QuotaPane
from antiapi.tui.screens.requests import RequestDetailScreen, RequestsPane
from antiapi.tui.screens.routing import ChainEditorScreen, RoutingPane
from antiapi.tui.screens.settings import SettingsPane

__all__ = ["AccountsPane", "ChainEditorScreen", "QuotaPane", "RequestDetailScreen", "RequestsPane", "RoutingPane", "SettingsPane"]
