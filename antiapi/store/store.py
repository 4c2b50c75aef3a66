"""The embedded state database (SQLite in the data dir): one writer thread, many readers.

What lives here: accounts (metadata, enabled, creation order), routing (flows, chains), settings,
client keys, usage records and quota snapshots. The human-edited config stays a file.

Concurrency model:

* **One writer.** Every write is a message put on a queue (never blocks, never touches SQLite on
  the caller's thread); a single background thread drains the queue and applies everything
  pending in one transaction. Bursts of usage records therefore become one ``executemany``.
* **Readers** use their own connection per thread (WAL lets them read while the writer writes);
  async callers run them through ``asyncio.to_thread``.
* ``flush()`` waits until everything queued before it is committed; ``close()`` flushes first, so
  a clean shutdown loses nothing. WAL with ``synchronous=NORMAL`` keeps the file consistent after
  a crash or ``kill -9`` (at most the last transactions are lost).

May import: stdlib, msgspec.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from antiapi.store.migrations import migrate

__all__ = ["DB_FILENAME", "StoredState", "Store", "USAGE_COLUMNS"]

log = logging.getLogger("antiapi.store")

DB_FILENAME = "antiapi.db"

_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder()

#: usage columns filled from a record's attributes of the same name (attempts/route: JSON lists)
USAGE_COLUMNS = (
    "time", "request_id", "endpoint", "client_dialect", "client_key", "model", "target", "provider",
    "provider_type", "account", "upstream_model", "upstream_dialect", "stream", "status", "latency_ms",
    "ttft_ms", "input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens", "error", "attempts", "route",
)
_JSON_COLUMNS = frozenset({"attempts", "route"})
_ZERO_COLUMNS = frozenset({"status", "input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens"})
_INSERT_USAGE = f"INSERT INTO usage ({', '.join(USAGE_COLUMNS)}) VALUES ({', '.join('?' * len(USAGE_COLUMNS))})"

_SUMMARY_GROUPS = {
    "account": "provider",
    "model": "model",
    "upstream_model": "upstream_model",
    "day": "date(time, 'unixepoch')",
    "client_key": "client_key",
}


@dataclass
class StoredState:
    """Everything routing needs from the store at start."""

    accounts: list[dict[str, Any]] = field(default_factory=list)  # ordered by seq
    flows: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {entries, strategy, source}
    chains: dict[str, dict[str, Any]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)


def _usage_row(rec: Any) -> tuple:
    row = []
    for col in USAGE_COLUMNS:
        v = getattr(rec, col, None)
        if col in _JSON_COLUMNS:
            v = _enc.encode(v or []).decode()
        elif col == "stream":
            v = 1 if v else 0
        elif v is None and col in _ZERO_COLUMNS:
            v = 0
        row.append(v)
    return tuple(row)


class Store:
    """The state database at ``path`` (see module docstring)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        retention_days: float = 90.0,
        max_usage_rows: int = 2_000_000,
        clock: Callable[[], float] = time.time,
        prune_every: int = 5000,
        batch_delay: float = 0.05,
    ) -> None:
        self.path = Path(path)
        self.retention_days = retention_days
        self.max_usage_rows = max_usage_rows
        self.clock = clock
        self.prune_every = prune_every
        self.batch_delay = batch_delay
        self._q: queue.SimpleQueue[tuple] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._local = threading.local()
        self._since_prune = 0
        self.written = 0  # usage rows committed by this process
        self.failed = 0  # operations that could not be applied

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def open(self) -> None:
        """Create/migrate the database and start the writer thread (blocking: call in a thread)."""
        if self.running:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
            os.close(fd)
        conn = self._connect()
        conn.execute("PRAGMA journal_mode=WAL")
        migrate(conn)
        self._prune(conn)
        self._thread = threading.Thread(target=self._run, args=(conn,), name="antiapi-store-writer", daemon=True)
        self._thread.start()

    async def aopen(self) -> None:
        await asyncio.to_thread(self.open)

    def close(self, timeout: float = 30.0) -> None:
        """Flush everything queued, stop the writer (blocking)."""
        if self._thread is None:
            return
        done = threading.Event()
        self._q.put(("stop", done.set))
        done.wait(timeout)
        self._thread.join(timeout)
        self._thread = None
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=10000")
        return conn

    # ------------------------------------------------------------------ writing (never blocks)

    def _put(self, op: tuple) -> None:
        self._q.put(op)

    def execute(self, sql: str, params: Iterable[Any] = ()) -> None:
        """Queue one statement for the writer."""
        self._put(("sql", sql, tuple(params)))

    def add_usage(self, rec: Any) -> None:
        """Queue one usage record (any object with the :data:`USAGE_COLUMNS` attributes)."""
        self._put(("usage", rec))

    def flush_sync(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued so far is committed (blocking)."""
        if not self.running:
            return True
        done = threading.Event()
        self._put(("flush", done.set))
        return done.wait(timeout)

    async def flush(self) -> None:
        """Wait until everything queued so far is committed."""
        if not self.running:
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            loop.call_soon_threadsafe(lambda: fut.done() or fut.set_result(None))

        self._put(("flush", wake))
        await fut

    # accounts ----------------------------------------------------------------

    def add_account(self, name: str, type: str, label: str | None, seq: int) -> None:
        """Record a new account (kept as it is when it exists: creation order never changes)."""
        self.execute(
            "INSERT INTO accounts(name, type, label, enabled, seq, created_at) VALUES (?, ?, ?, 1, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET type = excluded.type, label = excluded.label",
            (name, type, label, seq, self.clock()),
        )

    def set_account_enabled(self, name: str, enabled: bool) -> None:
        self.execute("UPDATE accounts SET enabled = ? WHERE name = ?", (1 if enabled else 0, name))

    def remove_account(self, name: str) -> None:
        self.execute("DELETE FROM accounts WHERE name = ?", (name,))

    # routing -----------------------------------------------------------------

    def put_flow(self, name: str, entries: list[dict[str, Any]], strategy: str | None, source: str = "admin", position: int = 0) -> None:
        self.execute(
            "INSERT INTO flows(name, entries, strategy, source, position, updated_at) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET entries = excluded.entries, strategy = excluded.strategy, "
            "source = excluded.source, position = excluded.position, updated_at = excluded.updated_at",
            (name, _enc.encode(entries).decode(), strategy, source, position, self.clock()),
        )

    def delete_flow(self, name: str) -> None:
        self.execute("DELETE FROM flows WHERE name = ?", (name,))

    def put_chain(self, model: str, entries: list[dict[str, Any]], strategy: str | None, source: str = "admin") -> None:
        self.execute(
            "INSERT INTO chains(model, entries, strategy, source, updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(model) DO UPDATE SET entries = excluded.entries, strategy = excluded.strategy, "
            "source = excluded.source, updated_at = excluded.updated_at",
            (model, _enc.encode(entries).decode(), strategy, source, self.clock()),
        )

    def delete_chain(self, model: str) -> None:
        self.execute("DELETE FROM chains WHERE model = ?", (model,))

    def put_setting(self, key: str, value: Any) -> None:
        self.execute(
            "INSERT INTO settings(key, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (key, _enc.encode(value).decode(), self.clock()),
        )

    def delete_setting(self, key: str) -> None:
        self.execute("DELETE FROM settings WHERE key = ?", (key,))

    def put_meta(self, key: str, value: str) -> None:
        self.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # quota -------------------------------------------------------------------

    def put_quota(self, account: str, view: dict[str, Any]) -> None:
        """Snapshot one account's quota view (latest only)."""
        cd = view.get("cooldown") or {}
        q = view.get("quota") or {}
        self.execute(
            "INSERT INTO quota_snapshots(account, time, status, source, used_percent, limited_until, "
            "cooldown_until, cooldown_reason, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(account) DO UPDATE SET time = excluded.time, status = excluded.status, "
            "source = excluded.source, used_percent = excluded.used_percent, limited_until = excluded.limited_until, "
            "cooldown_until = excluded.cooldown_until, cooldown_reason = excluded.cooldown_reason, data = excluded.data",
            (
                account, self.clock(), view.get("status"), q.get("source"), view.get("used_percent"),
                q.get("limited_until"), cd.get("until"), cd.get("reason"), _enc.encode(view).decode(),
            ),
        )

    # ------------------------------------------------------------------ the writer thread

    def _run(self, conn: sqlite3.Connection) -> None:
        q = self._q
        stop = False
        while not stop:
            batch = [q.get()]
            if batch[0][0] == "usage":
                # Let a burst of records gather so one transaction carries many of them: a
                # commit per request costs the event loop more (GIL) than the insert itself.
                time.sleep(self.batch_delay)
            while len(batch) < 10_000:
                try:
                    batch.append(q.get_nowait())
                except queue.Empty:
                    break
            wakers: list[Callable[[], None]] = []
            work: list[tuple] = []
            for op in batch:
                if op[0] == "flush":
                    wakers.append(op[1])
                elif op[0] == "stop":
                    wakers.append(op[1])
                    stop = True
                else:
                    work.append(op)
            if work:
                self._apply(conn, work)
            if self._since_prune >= self.prune_every:
                self._prune(conn)
            for wake in wakers:
                try:
                    wake()
                except Exception:  # a waiter's loop may be gone at shutdown
                    log.debug("store: could not wake a flush waiter", exc_info=True)
        conn.close()

    def _apply(self, conn: sqlite3.Connection, work: list[tuple]) -> None:
        try:
            conn.execute("BEGIN")
            self._apply_ops(conn, work)
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if len(work) == 1:
                self.failed += 1
                log.error("store: write failed (%s): %s", work[0][0], e)
                return
            for op in work:  # isolate the bad operation; keep the rest
                self._apply(conn, [op])

    def _apply_ops(self, conn: sqlite3.Connection, work: list[tuple]) -> None:
        rows: list[tuple] = []
        for op in work:
            if op[0] == "usage":
                rows.append(_usage_row(op[1]))
                continue
            if rows:
                conn.executemany(_INSERT_USAGE, rows)
                self.written += len(rows)
                self._since_prune += len(rows)
                rows = []
            conn.execute(op[1], op[2])
        if rows:
            conn.executemany(_INSERT_USAGE, rows)
            self.written += len(rows)
            self._since_prune += len(rows)

    def _prune(self, conn: sqlite3.Connection) -> None:
        """Bounded retention: drop usage older than ``retention_days`` and beyond ``max_usage_rows``."""
        self._since_prune = 0
        try:
            cutoff = self.clock() - self.retention_days * 86400
            conn.execute("DELETE FROM usage WHERE time < ?", (cutoff,))
            conn.execute(
                "DELETE FROM usage WHERE id <= (SELECT max(id) FROM usage) - ?", (self.max_usage_rows,)
            )
        except sqlite3.Error as e:
            log.error("store: pruning usage failed: %s", e)

    # ------------------------------------------------------------------ reading (blocking)

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
        return conn

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        """Rows of a read query as dicts (blocking; use :meth:`aquery` from async code)."""
        cur = self._reader().execute(sql, tuple(params))
        cols = [d[0] for d in cur.description or ()]
        return [dict(zip(cols, row)) for row in cur.fetchall()]

    async def aquery(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.query, sql, tuple(params))

    def load_state(self) -> StoredState:
        st = StoredState()
        st.accounts = self.query("SELECT name, type, label, enabled, seq, created_at FROM accounts ORDER BY seq")
        for r in self.query("SELECT name, entries, strategy, source FROM flows ORDER BY position, name"):
            st.flows[r["name"]] = {"entries": _dec.decode(r["entries"]), "strategy": r["strategy"], "source": r["source"]}
        for r in self.query("SELECT model, entries, strategy, source FROM chains ORDER BY model"):
            st.chains[r["model"]] = {"entries": _dec.decode(r["entries"]), "strategy": r["strategy"], "source": r["source"]}
        st.settings = {r["key"]: _dec.decode(r["value"]) for r in self.query("SELECT key, value FROM settings")}
        st.meta = {r["key"]: r["value"] for r in self.query("SELECT key, value FROM meta")}
        return st

    def usage_count(self, since: float | None = None) -> int:
        if since is None:
            return int(self.query("SELECT count(*) AS n FROM usage")[0]["n"])
        return int(self.query("SELECT count(*) AS n FROM usage WHERE time >= ?", (since,))[0]["n"])

    def recent_usage(self, limit: int = 100, since: float | None = None) -> list[dict[str, Any]]:
        """The latest usage records, newest first (attempts/route decoded)."""
        where, params = ("WHERE time >= ?", [since]) if since is not None else ("", [])
        rows = self.query(f"SELECT * FROM usage {where} ORDER BY id DESC LIMIT ?", (*params, limit))
        for r in rows:
            r["attempts"] = _dec.decode(r["attempts"])
            r["route"] = _dec.decode(r["route"])
            r["stream"] = bool(r["stream"])
        return rows

    def usage_summary(self, by: str = "account", since: float | None = None, until: float | None = None) -> list[dict[str, Any]]:
        """Aggregates grouped ``by`` account (provider name), model, upstream_model, day or client_key."""
        if by not in _SUMMARY_GROUPS:
            raise ValueError(f"by must be one of {', '.join(_SUMMARY_GROUPS)}")
        expr = _SUMMARY_GROUPS[by]
        cond, params = [], []
        if since is not None:
            cond.append("time >= ?")
            params.append(since)
        if until is not None:
            cond.append("time < ?")
            params.append(until)
        where = f"WHERE {' AND '.join(cond)}" if cond else ""
        return self.query(
            f"SELECT {expr} AS {by}, count(*) AS requests, sum(status >= 400) AS errors, "
            "sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens, "
            "sum(cached_tokens) AS cached_tokens, sum(reasoning_tokens) AS reasoning_tokens, "
            "round(avg(latency_ms), 2) AS avg_latency_ms, round(avg(ttft_ms), 2) AS avg_ttft_ms "
            f"FROM usage {where} GROUP BY {expr} ORDER BY requests DESC, {by}",
            params,
        )

    def quota_snapshots(self) -> list[dict[str, Any]]:
        rows = self.query("SELECT * FROM quota_snapshots ORDER BY account")
        for r in rows:
            r["data"] = _dec.decode(r["data"])
        return rows
