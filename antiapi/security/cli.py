"""``antiapi keys create|list|revoke|limits`` (client API keys), on the data dir's state database.

``main(argv, cfg, out=print)`` takes the arguments after ``keys`` and a loaded config (only
``cfg.data_dir`` is used) and returns the exit status.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from antiapi.security.keys import ClientKey, KeyProblem, KeyStore

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="antiapi keys", description="Client API keys for remote access (see docs/remote-access.md).")
    sub = p.add_subparsers(dest="action", required=True, metavar="{create,list,revoke,limits}")
    c = sub.add_parser("create", help="create a key (shown once)")
    c.add_argument("--name", required=True, help="who uses it, e.g. laptop")
    c.add_argument("--rpm", type=int, default=None, help="limit: requests per minute")
    c.add_argument("--tokens-per-day", type=int, default=None, help="limit: input+output tokens per UTC day")
    ls = sub.add_parser("list", help="list keys (never the keys themselves)")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.add_argument("--active", action="store_true", help="hide revoked keys")
    r = sub.add_parser("revoke", help="revoke a key by id or name")
    r.add_argument("key", help="key id (from `antiapi keys list`) or name")
    lim = sub.add_parser("limits", help="set a key's limits (omit one to remove it)")
    lim.add_argument("key", help="key id or name")
    lim.add_argument("--rpm", type=int, default=None)
    lim.add_argument("--tokens-per-day", type=int, default=None)
    return p


def _when(t: float | None) -> str:
    if t is None:
        return "never"
    return _dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")


def _limits(k: ClientKey) -> str:
    parts = []
    if k.rpm_limit:
        parts.append(f"{k.rpm_limit}/min")
    if k.tokens_per_day:
        parts.append(f"{k.tokens_per_day} tok/day")
    return ", ".join(parts) or "-"


def _table(keys: list[ClientKey]) -> list[str]:
    rows = [("ID", "NAME", "PREFIX", "CREATED", "LAST USED", "STATUS", "LIMITS")]
    for k in keys:
        rows.append((str(k.id), k.name, k.prefix + "…", _when(k.created_at), _when(k.last_used_at), "revoked" if k.revoked else "active", _limits(k)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def main(argv: Sequence[str], cfg: Any, out: Callable[[str], None] = print) -> int:
    try:
        args = build_parser().parse_args(list(argv))
    except SystemExit as e:  # argparse already printed usage / the error
        return int(e.code or 0)
    from antiapi.store import DB_FILENAME, Store

    store = Store(cfg.data_dir / DB_FILENAME)
    try:
        store.open()
    except Exception as e:  # noqa: BLE001
        print(f"antiapi keys: cannot open the state database {cfg.data_dir / DB_FILENAME}: {e}", file=sys.stderr)
        return 1
    ks = KeyStore(store)
    try:
        if args.action == "create":
            k, key = ks.create(args.name, rpm_limit=args.rpm, tokens_per_day=args.tokens_per_day)
            out(f"Created client key {k.id} ({k.name}), limits: {_limits(k)}.")
            out("")
            out(f"    {key}")
            out("")
            out("This is the only time it is shown: copy it now. Clients send it as their API key")
            out("('Authorization: Bearer <key>' or 'x-api-key: <key>'). Revoke it with")
            out(f"`antiapi keys revoke {k.id}`. A running server picks it up within seconds.")
        elif args.action == "list":
            keys = ks.list(include_revoked=not args.active)
            if args.json:
                out(json.dumps([k.to_dict() for k in keys], indent=2))
            elif not keys:
                out("No client keys. Create one with `antiapi keys create --name laptop`.")
            else:
                for line in _table(keys):
                    out(line)
        elif args.action == "revoke":
            k = ks.revoke(args.key)
            out(f"Revoked client key {k.id} ({k.name}). A running server refuses it within seconds.")
        elif args.action == "limits":
            k = ks.set_limits(args.key, rpm_limit=args.rpm, tokens_per_day=args.tokens_per_day)
            out(f"Client key {k.id} ({k.name}) limits: {_limits(k)}.")
        return 0
    except KeyProblem as e:
        print(f"antiapi keys: {e}", file=sys.stderr)
        return 2
    finally:
        store.close()
