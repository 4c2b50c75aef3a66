"""Copilot quota: the ``copilot_internal/user`` snapshot, ``x-quota-snapshot-*`` response headers,
``retry-after`` values, and the per-account state the router and admin API read (pure but for the
clock values passed in)."""

from __future__ import annotations

import email.utils
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl

from antiapi.providers.base import QuotaState, QuotaWindow

#: header -> window name
SNAPSHOT_HEADERS = {
    "x-quota-snapshot-premium_interactions": "premium_interactions",
    "x-quota-snapshot-premium_models": "premium_interactions",
    "x-quota-snapshot-chat": "chat",
    "x-quota-snapshot-completions": "completions",
    "x-usage-ratelimit-session": "session",
    "x-usage-ratelimit-weekly": "weekly",
}
_WINDOW_MINUTES = {"session": 300, "weekly": 7 * 24 * 60}
WINDOW_ORDER = ("premium_interactions", "chat", "completions", "session", "weekly")


def parse_time(value: Any) -> float | None:
    """ISO 8601 (``2026-04-01T00:00:00.000Z``), a bare date (``2026-04-01``, midnight UTC) or epoch
    seconds -> epoch seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) if value > 0 else None
    if not isinstance(value, str) or not value.strip():
        return None
    s = value.strip()
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def parse_retry_after(value: str | None, now: float) -> float | None:
    """``retry-after`` as seconds from ``now``: delta seconds or an HTTP date."""
    if not value:
        return None
    v = value.strip()
    try:
        return max(0.0, float(v))
    except ValueError:
        pass
    try:
        dt = email.utils.parsedate_to_datetime(v)
    except (TypeError, ValueError, IndexError):
        return None
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return max(0.0, dt.timestamp() - now)


def _f(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return None


def window_from_snapshot(name: str, snap: Mapping[str, Any], resets_at: float | None) -> QuotaWindow:
    """One ``quota_snapshots`` entry -> a window (unlimited: 0 % used, no counts)."""
    if snap.get("unlimited") is True:
        return QuotaWindow(name=name, used_percent=0.0, resets_at=resets_at)
    ent = _f(snap.get("entitlement"))
    rem = _f(snap.get("remaining"))
    if rem is None:
        rem = _f(snap.get("quota_remaining"))
    pct = _f(snap.get("percent_remaining"))
    if pct is None and ent and rem is not None:
        pct = 100.0 * rem / ent
    used = None if pct is None else round(min(100.0, max(0.0, 100.0 - pct)), 2)
    return QuotaWindow(name=name, used_percent=used, remaining=rem, entitlement=ent, resets_at=resets_at)


def window_from_header(name: str, value: str) -> QuotaWindow | None:
    """``ent=300&ov=0.0&ovPerm=false&rem=88.5&rst=2026-04-01T00%3A00%3A00Z`` (``rem`` = percent left)."""
    fields = dict(parse_qsl(value, keep_blank_values=True))
    if not fields:
        return None
    ent = _f(fields.get("ent"))
    rem_pct = _f(fields.get("rem"))
    resets = parse_time(fields.get("rst"))
    if ent is not None and ent < 0:  # unlimited
        return QuotaWindow(name=name, used_percent=0.0, resets_at=resets, window_minutes=_WINDOW_MINUTES.get(name))
    used = None if rem_pct is None else round(min(100.0, max(0.0, 100.0 - rem_pct)), 2)
    remaining = None
    if ent is not None and ent > 0 and rem_pct is not None:
        remaining = round(ent * rem_pct / 100.0, 2)
    return QuotaWindow(
        name=name, used_percent=used, remaining=remaining, entitlement=ent, resets_at=resets,
        window_minutes=_WINDOW_MINUTES.get(name),
    )


def windows_from_headers(headers: Mapping[str, str]) -> list[QuotaWindow]:
    out: dict[str, QuotaWindow] = {}
    for h, name in SNAPSHOT_HEADERS.items():
        v = headers.get(h)
        if v:
            w = window_from_header(name, v)
            if w is not None:
                out[name] = w
    return list(out.values())


def reset_time(data: Mapping[str, Any]) -> float | None:
    for k in ("quota_reset_date_utc", "quota_reset_date", "limited_user_reset_date"):
        t = parse_time(data.get(k))
        if t is not None:
            return t
    return None


def windows_from_user(data: Mapping[str, Any]) -> list[QuotaWindow]:
    """Windows of a ``copilot_internal/user`` answer (paid plans: quota_snapshots; the free plan:
    limited_user_quotas remaining out of monthly_quotas)."""
    resets = reset_time(data)
    out: list[QuotaWindow] = []
    snaps = data.get("quota_snapshots")
    if isinstance(snaps, dict):
        for name, snap in snaps.items():
            if isinstance(snap, dict):
                out.append(window_from_snapshot(str(name), snap, resets))
    if not out:
        limited = data.get("limited_user_quotas")
        monthly = data.get("monthly_quotas") if isinstance(data.get("monthly_quotas"), dict) else {}
        if isinstance(limited, dict):
            for name, rem in limited.items():
                out.append(window_from_snapshot(str(name), {"remaining": rem, "entitlement": monthly.get(name)}, resets))
    order = {n: i for i, n in enumerate(WINDOW_ORDER)}
    out.sort(key=lambda w: order.get(w.name, len(order)))
    return out


class QuotaTracker:
    """The account's latest quota knowledge; ``state(now)`` is what ``Provider.quota()`` returns."""

    def __init__(self) -> None:
        self.windows: dict[str, QuotaWindow] = {}
        self.source = ""
        self.updated_at: float | None = None
        self.plan: str | None = None
        self.limited_until: float | None = None
        self.limited_detail: str | None = None
        self.sign_in_detail: str | None = None
        self.access_detail: str | None = None

    def update_from_user(self, data: Mapping[str, Any], now: float) -> None:
        wins = windows_from_user(data)
        self.windows = {w.name: w for w in wins}
        plan = data.get("copilot_plan") or data.get("access_type_sku")
        self.plan = str(plan) if plan else self.plan
        self.source, self.updated_at = "usage-endpoint", now
        self.access_detail = None
        if data.get("chat_enabled") is False:
            self.access_detail = "Copilot Chat is not enabled for this account"

    def update_from_headers(self, headers: Mapping[str, str], now: float) -> bool:
        wins = windows_from_headers(headers)
        if not wins:
            return False
        for w in wins:
            self.windows[w.name] = w
        self.source, self.updated_at = "headers", now
        return True

    def premium_reset(self) -> float | None:
        w = self.windows.get("premium_interactions")
        return w.resets_at if w else None

    def mark_limited(self, until: float, detail: str) -> None:
        self.limited_until = until
        self.limited_detail = detail

    def limited(self, now: float) -> bool:
        if self.limited_until is not None and now >= self.limited_until:
            self.limited_until = self.limited_detail = None
        return self.limited_until is not None

    def state(self, now: float) -> QuotaState:
        status, detail = "ok", None
        if self.sign_in_detail:
            status, detail = "needs_sign_in", self.sign_in_detail
        elif self.access_detail:
            status, detail = "limited", self.access_detail
        elif self.limited(now):
            status, detail = "limited", self.limited_detail
        return QuotaState(
            windows=[QuotaWindow(**{k: getattr(w, k) for k in QuotaWindow.__slots__}) for w in self.windows.values()],
            source=self.source,
            updated_at=self.updated_at,
            limited_until=self.limited_until,
            plan=self.plan,
            status=status,
            detail=detail,
        )
