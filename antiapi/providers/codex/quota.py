"""Codex usage limits: ``x-codex-*`` response headers, ``/wham/usage`` and the
``usage_limit_reached`` error (upstreams.md §1.9, §1.10). Pure: callers pass ``now``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from antiapi.providers.base import QuotaState, QuotaWindow

_WINDOWS = ("primary", "secondary")


def _num(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v.strip())
        except ValueError:
            return None
    return None


def _get(headers: Mapping[str, str], name: str) -> str | None:
    v = headers.get(name)
    if v is None:
        for k, val in headers.items():
            if k.lower() == name:
                return val
    return v


def has_quota_headers(headers: Mapping[str, str]) -> bool:
    return _get(headers, "x-codex-primary-used-percent") is not None or _get(headers, "x-codex-active-limit") is not None


def from_headers(headers: Mapping[str, str], now: float) -> QuotaState | None:
    """The two windows (primary = 5 h, secondary = weekly) of the limit family that applied."""
    family = "codex"
    active = _get(headers, "x-codex-active-limit")
    if active and active != "codex" and _get(headers, f"x-{active}-primary-used-percent") is not None:
        family = active
    windows: list[QuotaWindow] = []
    for w in _WINDOWS:
        used = _num(_get(headers, f"x-{family}-{w}-used-percent"))
        if used is None:
            continue
        minutes = _num(_get(headers, f"x-{family}-{w}-window-minutes"))
        reset_at = _num(_get(headers, f"x-{family}-{w}-reset-at"))
        if reset_at is None:
            after = _num(_get(headers, f"x-{family}-{w}-reset-after-seconds"))
            reset_at = now + after if after is not None else None
        windows.append(
            QuotaWindow(
                name=w,
                used_percent=used,
                remaining=max(0.0, 100.0 - used),
                window_minutes=int(minutes) if minutes is not None else None,
                resets_at=reset_at,
            )
        )
    if not windows:
        return None
    return QuotaState(windows=windows, source="headers", updated_at=now, plan=_get(headers, "x-codex-plan-type"))


def from_usage(data: Any, now: float) -> QuotaState:
    """``GET /backend-api/wham/usage`` -> QuotaState."""
    if not isinstance(data, dict):
        raise ValueError("the usage answer is not a JSON object")
    rl = data.get("rate_limit") if isinstance(data.get("rate_limit"), dict) else {}
    windows: list[QuotaWindow] = []
    for w in _WINDOWS:
        d = rl.get(f"{w}_window")
        if not isinstance(d, dict):
            continue
        used = _num(d.get("used_percent"))
        secs = _num(d.get("limit_window_seconds"))
        reset_at = _num(d.get("reset_at"))
        if reset_at is None and _num(d.get("reset_after_seconds")) is not None:
            reset_at = now + (_num(d.get("reset_after_seconds")) or 0.0)
        windows.append(
            QuotaWindow(
                name=w,
                used_percent=used,
                remaining=max(0.0, 100.0 - used) if used is not None else None,
                window_minutes=int(secs // 60) if secs is not None else None,
                resets_at=reset_at,
            )
        )
    plan = data.get("plan_type") if isinstance(data.get("plan_type"), str) else None
    state = QuotaState(windows=windows, source="usage-endpoint", updated_at=now, plan=plan)
    reached = data.get("rate_limit_reached_type")
    if reached:
        kind = reached.get("kind") if isinstance(reached, dict) else reached
        full = [x for x in windows if (x.used_percent or 0) >= 100 and x.resets_at]
        state.status = "limited"
        state.limited_until = max((x.resets_at for x in full), default=None)  # type: ignore[arg-type]
        state.detail = f"usage limit reached ({kind})"
    return state


@dataclass(frozen=True)
class LimitInfo:
    """What a 429 body says about the limit."""

    type: str | None
    message: str | None
    plan: str | None
    resets_at: float | None
    resets_in: float | None


def limit_info(body: bytes) -> LimitInfo | None:
    """``{"error": {"type": "usage_limit_reached", "resets_at": ..., "resets_in_seconds": ...}}``."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    err = data.get("error") if isinstance(data, dict) else None
    if not isinstance(err, dict):
        return None
    typ = err.get("type") if isinstance(err.get("type"), str) else None
    code = err.get("code") if isinstance(err.get("code"), str) else None
    return LimitInfo(
        type=typ or code,
        message=err.get("message") if isinstance(err.get("message"), str) else None,
        plan=err.get("plan_type") if isinstance(err.get("plan_type"), str) else None,
        resets_at=_num(err.get("resets_at")),
        resets_in=_num(err.get("resets_in_seconds")),
    )


def describe_wait(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rem = divmod(seconds, 3600)
    m = rem // 60
    if h >= 24:
        return f"{h // 24}d {h % 24}h"
    if h:
        return f"{h}h {m:02d}m"
    if m:
        return f"{m}m"
    return f"{seconds}s"
