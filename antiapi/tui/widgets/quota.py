"""Live quota bars: one :class:`QuotaBar` per account, updated in place (no remount, no flicker)."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widget import Widget

from antiapi.tui import viewmodels as vm
from antiapi.wire import admin as w

_LEVEL_STYLE = {"ok": "green", "warn": "yellow", "high": "red", "off": "bright_black"}


class QuotaBar(Widget):
    """Three lines: title and provider/status; the bar with used %, reset countdown and what is
    left; the windows and any cooldown."""

    DEFAULT_CSS = """
    QuotaBar { height: 3; margin: 0 0 1 0; padding: 0 1; }
    """

    def __init__(self, quota: w.AccountQuota, clock: Callable[[], float], **kw) -> None:
        super().__init__(**kw)
        self.quota = quota
        self.clock = clock

    def set_quota(self, quota: w.AccountQuota) -> None:
        self.quota = quota
        self.refresh()

    @property
    def row(self) -> vm.QuotaRow:
        return vm.quota_row(self.quota, self.clock())

    def render(self) -> Text:
        row = self.row
        width = max(20, self.size.width - 2)
        style = _LEVEL_STYLE[row.level]
        right = f"{row.provider} · {row.status}"
        line1 = Text(no_wrap=True, overflow="ellipsis")
        title_w = max(1, width - len(right) - 1)
        line1.append(row.title[:title_w].ljust(title_w), "bold")
        line1.append(" ")
        line1.append(right, style if row.level != "ok" else "dim")
        tail = f" {row.percent_text:>4}  {row.reset_text}"
        if row.remaining_text:
            tail += f" · {row.remaining_text}"
        bar_w = max(10, min(50, width - len(tail)))
        filled, empty = vm.bar_cells(row.fraction, bar_w)
        line2 = Text(no_wrap=True, overflow="ellipsis")
        line2.append("█" * filled, style)
        line2.append("░" * empty, "bright_black")
        line2.append(tail)
        line3 = Text(no_wrap=True, overflow="ellipsis")
        line3.append(row.windows_text or ("no quota reported" if row.fraction is None else ""), "dim")
        if row.cooldown_text:
            if row.windows_text:
                line3.append("  ")
            line3.append(row.cooldown_text, "yellow")
        return Text("\n").join([line1, line2, line3])


class QuotaList(VerticalScroll):
    """The bars, in account order. ``set_quotas`` reconciles a snapshot; ``update_quota`` one account."""

    def __init__(self, clock: Callable[[], float], **kw) -> None:
        super().__init__(**kw)
        self.clock = clock
        self._bars: dict[str, QuotaBar] = {}

    def bar(self, account: str) -> QuotaBar | None:
        return self._bars.get(account)

    def set_quotas(self, quotas: list[w.AccountQuota]) -> None:
        wanted = {q.account for q in quotas}
        for name in [n for n in self._bars if n not in wanted]:
            self._bars.pop(name).remove()
        for q in quotas:
            self.update_quota(q)
        # keep the snapshot's order (moving only when it changed: no relayout otherwise)
        ordered = [self._bars[q.account] for q in quotas]
        if [c for c in self.children if isinstance(c, QuotaBar)] != ordered:
            for i, b in enumerate(ordered[1:], 1):
                self.move_child(b, after=ordered[i - 1])

    def update_quota(self, quota: w.AccountQuota) -> None:
        bar = self._bars.get(quota.account)
        if bar is None:
            bar = QuotaBar(quota, self.clock)
            self._bars[quota.account] = bar
            self.mount(bar)
        else:
            bar.set_quota(quota)

    def tick(self) -> None:
        """Redraw countdowns."""
        for bar in self._bars.values():
            bar.refresh()
