"""Widgets that draw view-models (antiapi.tui.viewmodels)."""

from antiapi.tui.widgets.quota import QuotaBar, QuotaList
from antiapi.tui.widgets.status import StatusLine

__all__ = ["QuotaBar", "QuotaList", "StatusLine"]
