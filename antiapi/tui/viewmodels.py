"""Pure view-models: admin snapshots -> the rows, bars, labels and colours the widgets draw.

No Textual, no I/O, no clock of its own (``now`` is passed in). Everything here is unit-tested
without a terminal. May import: antiapi.wire.admin, stdlib.
"""

from __future__ import annotations

import datetime as _dt
import math
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from antiapi.wire import admin as w

__all__ = [
    "KEY_COLUMNS",
    "USAGE_COLUMNS",
    "QuotaRow",
    "key_limits",
    "key_patch",
    "key_row",
    "parse_limit",
    "remote_lines",
    "usage_row",
    "RequestRow",
    "account_row",
    "bar_cells",
    "entry_text",
    "format_count",
    "format_duration",
    "format_ms",
    "move",
    "parse_filter",
    "quota_level",
    "quota_row",
    "request_detail",
    "request_row",
    "route_rows",
    "settings_patch",
    "signin_lines",
    "status_line",
]


# ---------------------------------------------------------------------------------------- numbers


def format_duration(seconds: float) -> str:
    """``45s``, ``12m 05s``, ``2h 05m``, ``4d 03h`` (rounded up to the shown unit; never negative)."""
    s = max(0, math.ceil(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {(s % 3600) // 60:02d}m"
    return f"{s // 86400}d {(s % 86400) // 3600:02d}h"


def format_ms(ms: float | None) -> str:
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms:.0f}ms"
    return f"{ms / 1000:.2f}s"


def format_count(n: float | None) -> str:
    if n is None:
        return "—"
    n = float(n)
    if abs(n) < 1000:
        return f"{n:.0f}"
    if abs(n) < 1_000_000:
        return f"{n / 1000:.1f}k"
    return f"{n / 1_000_000:.1f}M"


def _clock(t: float, tz: _dt.tzinfo | None) -> str:
    return _dt.datetime.fromtimestamp(t, tz).strftime("%H:%M:%S")


# ---------------------------------------------------------------------------------------- status


def status_line(status: w.Status | None, *, connected: bool, error: str | None = None, url: str = "") -> str:
    """The one-line summary at the top of every screen; the connection state comes first so a
    narrow terminal never hides it."""
    state = "● live" if connected else f"✗ {error or 'disconnected'}"
    if status is None:
        if not error:
            state = "… connecting"
        return f"{state} │ {url}" if url else state
    parts = [
        state,
        status.url or url,
        f"up {format_duration(status.uptime_s)}",
        f"{status.requests_per_min:.0f} req/min",
        f"{status.errors_per_min:.0f} err/min",
        f"antiapi {status.version}",
    ]
    if status.tunnel_url:
        parts.insert(2, f"⇄ {status.tunnel_url}")
    if status.keys_required:
        parts.insert(2, "🔒 keys")
    return " │ ".join(parts)


# ---------------------------------------------------------------------------------------- quota


@dataclass(frozen=True, slots=True)
class QuotaRow:
    """One account's live bar."""

    account: str
    title: str
    provider: str
    #: 0..1, None when the upstream reports no quota
    fraction: float | None
    percent_text: str
    #: "ok" | "warn" | "high" | "off" (colour)
    level: str
    status: str
    reset_text: str
    remaining_text: str
    windows_text: str
    cooldown_text: str


def quota_level(used: float | None, status: str) -> str:
    if status in ("disabled", "needs_sign_in"):
        return "off"
    if status in ("limited", "cooling_down") or (used is not None and used >= 90):
        return "high"
    if used is not None and used >= 70:
        return "warn"
    return "ok"


def _main_window(q: w.AccountQuota) -> w.QuotaWindow | None:
    known = [x for x in q.windows if x.used_percent is not None]
    if not known:
        return q.windows[0] if q.windows else None
    return max(known, key=lambda x: x.used_percent or 0.0)


def quota_row(q: w.AccountQuota, now: float) -> QuotaRow:
    """The bar for one account: the most-used window drives the bar and the reset countdown."""
    win = _main_window(q)
    used = q.used_percent if q.used_percent is not None else (win.used_percent if win is not None else None)
    fraction = None if used is None else min(1.0, max(0.0, used / 100.0))
    reset = ""
    if q.limited_until is not None and q.limited_until > now:
        reset = f"limited, resets in {format_duration(q.limited_until - now)}"
    elif win is not None and win.resets_at is not None:
        reset = f"resets in {format_duration(win.resets_at - now)}" if win.resets_at > now else "reset due"
    remaining = ""
    if win is not None and win.remaining is not None:
        remaining = f"{format_count(win.remaining)} left"
        if win.entitlement:
            remaining = f"{format_count(win.remaining)}/{format_count(win.entitlement)} left"
    windows = " · ".join(
        f"{x.name} {x.used_percent:.0f}%" if x.used_percent is not None else x.name for x in q.windows
    )
    cooldown = ""
    active = [c for c in q.cooldowns if c.until > now]
    if active:
        c = max(active, key=lambda c: c.until)
        scope = f"{c.model}: " if c.model else ""
        cooldown = f"cooling down {format_duration(c.until - now)} ({scope}{c.reason})"
    status = q.status if q.enabled else "disabled"
    title = q.account if not q.label or q.label in q.account else f"{q.account} ({q.label})"
    return QuotaRow(
        account=q.account, title=title, provider=q.type + (f" · {q.plan}" if q.plan else ""),
        fraction=fraction, percent_text="—" if used is None else f"{used:.0f}%",
        level=quota_level(used, status), status=status.replace("_", " "), reset_text=reset,
        remaining_text=remaining, windows_text=windows, cooldown_text=cooldown,
    )


def bar_cells(fraction: float | None, width: int) -> tuple[int, int]:
    """(filled, empty) cells of a bar ``width`` wide; a used-but-tiny share shows one cell."""
    width = max(0, width)
    if fraction is None:
        return (0, width)
    filled = round(fraction * width)
    if fraction > 0 and filled == 0 and width:
        filled = 1
    return (min(width, filled), width - min(width, filled))


# ---------------------------------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True)
class RequestRow:
    key: str
    cells: tuple[str, ...]
    ok: bool


REQUEST_COLUMNS = ("Time", "St", "Model", "Account", "Upstream", "Latency", "Tokens")


def request_row(r: w.RequestRecord, tz: _dt.tzinfo | None = None) -> RequestRow:
    tokens = f"{format_count(r.input_tokens)}→{format_count(r.output_tokens)}" if (r.input_tokens or r.output_tokens) else ""
    account = r.account or r.provider or "—"
    return RequestRow(
        key=r.request_id,
        cells=(
            _clock(r.time, tz), str(r.status), r.model or "(default)", account, r.upstream_model or "—",
            format_ms(r.latency_ms), tokens,
        ),
        ok=r.status < 400,
    )


def request_detail(r: w.RequestRecord, tz: _dt.tzinfo | None = None) -> tuple[list[tuple[str, str]], list[str]]:
    """(field/value pairs, route steps in order) for the request detail view."""
    when = _dt.datetime.fromtimestamp(r.time, tz).strftime("%Y-%m-%d %H:%M:%S")
    fields: list[tuple[str, str]] = [
        ("Request", r.request_id),
        ("Time", when),
        ("Endpoint", f"{r.endpoint} ({r.client_dialect}{', stream' if r.stream else ''})"),
        ("Model", r.model or "(none: default model)"),
    ]
    if r.target and r.target != r.model:
        fields.append(("Routed as", r.target))
    fields += [
        ("Account", r.provider + (f" ({r.account})" if r.account and r.account not in (r.provider or "") else "") if r.provider else "—"),
        ("Upstream", f"{r.upstream_model or '—'}" + (f" via {r.upstream_dialect}" if r.upstream_dialect else "")),
        ("Status", str(r.status) + (" ok" if r.status < 400 else " failed")),
        ("Latency", format_ms(r.latency_ms)),
        ("TTFT", format_ms(r.ttft_ms)),
        ("Tokens", f"in {r.input_tokens} · out {r.output_tokens} · cached {r.cached_tokens} · reasoning {r.reasoning_tokens}"),
    ]
    if r.client_key:
        fields.append(("Client key", r.client_key))
    if r.error:
        fields.append(("Error", r.error))
    steps = list(r.route) if r.route else [f"{a}" for a in r.attempts]
    if not steps and r.provider:
        steps = [f"{r.provider}/{r.upstream_model or r.model}: {'served' if r.status < 400 else r.status}"]
    return fields, steps


def parse_filter(text: str) -> w.RequestQuery:
    """``model=gpt-4.1 account=openai status=error since=10m limit=200``; a bare word is a model.

    ``since`` is relative (``90s``, ``10m``, ``2h``, ``1d``) and returned as a negative offset in
    seconds (the caller adds the current time). Raises ``ValueError`` with what is accepted.
    """
    q = w.RequestQuery()
    try:
        words = shlex.split(text)
    except ValueError as e:
        raise ValueError(f"filter: {e}") from None
    for word in words:
        key, sep, value = word.partition("=")
        if not sep:
            key, value = "model", word
        key = key.strip().lower()
        if not value:
            raise ValueError(f"filter: {key}= needs a value")
        if key == "model":
            q.model = value
        elif key == "account":
            q.account = value
        elif key == "status":
            w.parse_status_filter(value)
            q.status = value
        elif key == "since":
            q.since = -_relative_seconds(value)
        elif key == "limit":
            if not value.isdigit() or not 1 <= int(value) <= 1000:
                raise ValueError("filter: limit= takes 1 to 1000")
            q.limit = int(value)
        else:
            raise ValueError(f"filter: unknown key {key!r}; use model=, account=, status=, since=, limit=")
    return q


def _relative_seconds(value: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    v = value.strip().lower()
    if v and v[-1] in units and v[:-1].replace(".", "", 1).isdigit():
        return float(v[:-1]) * units[v[-1]]
    if v.replace(".", "", 1).isdigit():
        return float(v)
    raise ValueError(f"filter: since={value!r}: use a duration such as 90s, 10m, 2h or 1d")


# ---------------------------------------------------------------------------------------- accounts


ACCOUNT_COLUMNS = ("Account", "Type", "Source", "Enabled", "Status")


def account_row(a: w.AccountInfo) -> tuple[str, ...]:
    return (a.name, a.type, a.source.replace("_", " "), "yes" if a.enabled else "no", a.status.replace("_", " "))


def signin_lines(flow: w.SignInFlow, now: float) -> list[str]:
    """What the sign-in dialog shows, line by line."""
    lines: list[str] = []
    if flow.user_code:
        lines += [f"Open  {flow.verification_uri}", f"Code  {flow.user_code}"]
    if flow.url:
        lines += ["Open this URL in a browser:", flow.url]
    if flow.status == "pending":
        wait = "Waiting for you to sign in…"
        if flow.expires_at is not None:
            wait += f" (expires in {format_duration(flow.expires_at - now)})"
        lines.append(wait)
    elif flow.status == "done":
        lines.append(f"✓ Signed in as {flow.label}.")
    elif flow.status == "failed":
        lines.append(f"✗ Sign-in failed: {flow.error or 'unknown error'}")
    elif flow.status == "cancelled":
        lines.append("Sign-in cancelled.")
    if flow.message and flow.status == "pending" and flow.url:
        lines.append(flow.message)
    return lines


# ---------------------------------------------------------------------------------------- routing


def entry_text(e: w.Entry) -> str:
    s = e.provider
    if e.account:
        s += f" [{e.account}]"
    return s + (f" → {e.model}" if e.model else "")


def route_rows(view: w.RoutingView) -> list[tuple[str, str, tuple[str, ...]]]:
    """(key, kind, cells) for every flow then chain; keys are ``flow:<name>`` / ``chain:<model>``."""
    rows: list[tuple[str, str, tuple[str, ...]]] = []
    for f in view.flows:
        rows.append((f"flow:{f.name}", "flow", ("flow", f.name, f.strategy or f"({view.strategy})", str(len(f.entries)))))
    for c in view.chains:
        n = str(len(c.entries)) if c.entries else "smart"
        rows.append((f"chain:{c.model}", "chain", ("chain", c.model, c.strategy or f"({view.strategy})", n)))
    return rows


def move(entries: Sequence[w.Entry], index: int, delta: int) -> tuple[list[w.Entry], int]:
    """The entries with ``entries[index]`` moved by ``delta`` (clamped), and its new index."""
    items = list(entries)
    if not items or not 0 <= index < len(items):
        return items, index
    new = max(0, min(len(items) - 1, index + delta))
    item = items.pop(index)
    items.insert(new, item)
    return items, new


# ---------------------------------------------------------------------------------------- settings


def _split_patterns(text: str) -> list[str]:
    return [p.strip() for p in text.replace("\n", ",").split(",") if p.strip()]


def settings_patch(
    old: w.Settings,
    *,
    default_model: str,
    background_model: str,
    background_patterns: str,
    auto_start_tunnel: bool,
    auto_open: bool,
) -> w.SettingsPatch:
    """Only what changed between ``old`` and the form (empty model fields clear the setting)."""
    patch = w.SettingsPatch()
    dm = default_model.strip() or None
    bm = background_model.strip() or None
    pats = _split_patterns(background_patterns)
    if dm != old.default_model:
        patch.default_model = dm
    if bm != old.background_model:
        patch.background_model = bm
    if pats != list(old.background_patterns):
        patch.background_patterns = pats
    if auto_start_tunnel != old.auto_start_tunnel:
        patch.auto_start_tunnel = auto_start_tunnel
    if auto_open != old.auto_open:
        patch.auto_open = auto_open
    return patch


def patch_is_empty(patch: w.SettingsPatch) -> bool:
    return all(getattr(patch, f) is w.UNSET for f in patch.__struct_fields__)


def join_patterns(patterns: Iterable[str]) -> str:
    return ", ".join(patterns)


# ---------------------------------------------------------------------------------------- remote access

KEY_COLUMNS = ("ID", "Name", "Key", "Used", "Today", "Limits", "Status")


def key_limits(k: w.ClientKeyInfo) -> str:
    parts = []
    if k.rpm_limit:
        parts.append(f"{k.rpm_limit}/min")
    if k.tokens_per_day:
        parts.append(f"{format_count(k.tokens_per_day)} tok/d")
    return " · ".join(parts) or "—"


def key_row(k: w.ClientKeyInfo, now: float, tz: _dt.tzinfo | None = None) -> tuple[str, ...]:
    """One client key: never the key, only its first characters. ``Today``: requests · tokens."""
    if k.last_used_at is None:
        used = "never"
    elif now - k.last_used_at < 86400:
        used = _clock(k.last_used_at, tz)[:5]
    else:
        used = _dt.datetime.fromtimestamp(k.last_used_at, tz).strftime("%Y-%m-%d")
    today = f"{k.requests_today} · {format_count(k.tokens_today)}" if k.requests_today else "—"
    return (str(k.id), k.name, k.prefix[:7] + "…", used, today, key_limits(k), "revoked" if k.revoked else "active")


def parse_limit(text: str, what: str) -> int | None:
    """A limit typed in a form: empty or ``-`` means none; ``30``, ``2k``, ``1.5m`` are numbers.

    Raises:
        ValueError: not a positive whole number (the message names the field).
    """
    t = text.strip().lower().replace(",", "").replace("_", "")
    if t in ("", "-", "none", "no"):
        return None
    mult = 1
    if t[-1:] in ("k", "m"):
        mult = 1000 if t[-1] == "k" else 1_000_000
        t = t[:-1]
    try:
        value = float(t) * mult
    except ValueError:
        raise ValueError(f"{what}: type a whole number such as 60 or 2k, or leave it empty for no limit") from None
    if value < 1 or value != int(value):
        raise ValueError(f"{what}: must be a whole number of at least 1 (empty: no limit)")
    return int(value)


def key_patch(k: w.ClientKeyInfo, rpm_text: str, tokens_text: str) -> w.KeyPatch:
    """The ``PATCH /admin/keys/{id}`` body for what the limits form says (only what changed)."""
    rpm = parse_limit(rpm_text, "requests per minute")
    tpd = parse_limit(tokens_text, "tokens per day")
    patch = w.KeyPatch()
    if rpm != k.rpm_limit:
        patch.rpm_limit = rpm
    if tpd != k.tokens_per_day:
        patch.tokens_per_day = tpd
    return patch


_TUNNEL_MARK = {"running": "●", "starting": "…", "restarting": "↻", "failed": "✗", "stopped": "○"}


def remote_lines(view: w.RemoteView) -> list[tuple[str, str]]:
    """The Remote screen's summary: ``(text, level)`` lines, level "ok" | "warn" | "bad" | "" (colour;
    every state is also spelt out, never colour alone)."""
    lines: list[tuple[str, str]] = []
    if view.exposed:
        lines.append((f"Listening on {view.host}: reachable from other machines (plain HTTP)", "warn"))
    else:
        lines.append((f"Listening on {view.host}: this machine only (others: SSH port-forward)", ""))
    n = view.active_keys
    keys = f"{n} active key{'s' if n != 1 else ''}"
    if view.keys_required and n:
        lines.append((f"Client keys: required on every request ({keys})", "ok"))
    elif view.keys_required:
        lines.append(("Client keys: required, but none exists: every request is refused (n: create one)", "bad"))
    else:
        lines.append(("Client keys: not required (loopback, no key yet); a tunnel needs one first (n)", ""))
    t = view.tunnel
    tool = t.kind or view.provider
    if t.state == "stopped":
        text = f"Tunnel: ○ stopped · tool: {tool or 'none chosen (t)'}"
        if view.auto_start:
            text += " · starts with the server"
        lines.append((text, ""))
    else:
        text = f"Tunnel: {tool} {_TUNNEL_MARK.get(t.state, '?')} {t.state}"
        if t.restarts:
            text += f" (restarted {t.restarts}×)"
        level = {"running": "ok", "failed": "bad"}.get(t.state, "warn")
        lines.append((text, level))
        if t.url and t.state in ("running", "restarting"):
            lines.append((f"  Public URL: {t.url}", level))
        if t.error:
            lines.append(("  " + t.error.splitlines()[0][:200], "bad" if t.state == "failed" else "warn"))
    tools = []
    for tt in view.tools:
        tools.append(f"{tt.kind} {'✓' if tt.installed else '✗ not installed'}")
    if tools:
        lines.append(("Tools: " + " · ".join(tools), ""))
    chosen = next((tt for tt in view.tools if tt.kind == view.provider), None)
    said = t.error or ""
    if chosen is not None and not chosen.installed and chosen.install and chosen.install[:40] not in said:
        lines.append((f"  {chosen.install}", "warn"))
    if view.provider == "ngrok":
        lines.append((f"ngrok authtoken: {'saved' if view.authtoken_set else 'not saved (t), or set in ngrok config'}", ""))
    return lines


# ---------------------------------------------------------------------------------------- usage

USAGE_COLUMNS = ("Group", "Req", "Err", "In tok", "Out tok", "Cached", "Latency", "TTFT")


def usage_row(a: w.UsageAggregate) -> tuple[str, ...]:
    return (
        a.key if a.key is not None else "—",
        str(a.requests),
        str(a.errors),
        format_count(a.input_tokens),
        format_count(a.output_tokens),
        format_count(a.cached_tokens),
        format_ms(a.avg_latency_ms),
        format_ms(a.avg_ttft_ms),
    )
