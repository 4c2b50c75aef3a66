"""The SQLite state store: migrations, one batched writer, flush, retention, aggregates, crash safety."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from types import SimpleNamespace

import pytest

from antiapi.store import SCHEMA_VERSION, Store


def rec(i: int, *, t: float | None = None, provider: str = "a", model: str = "m", status: int = 200, **kw):
    base = dict(
        time=t if t is not None else time.time(), request_id=f"req_{i}", endpoint="/v1/messages",
        client_dialect="anthropic", model=model, provider=provider, upstream_model="up-" + model, status=status,
        latency_ms=10.0 + i, ttft_ms=2.0, input_tokens=100, output_tokens=10, cached_tokens=5, reasoning_tokens=1,
        stream=True, attempts=[], route=[f"{provider}/up-{model}: served"],
    )
    base.update(kw)
    return SimpleNamespace(**base)


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "antiapi.db")
    s.open()
    yield s
    s.close()


def test_open_creates_a_private_wal_database_at_the_current_schema(tmp_path, store):
    assert (tmp_path / "antiapi.db").stat().st_mode & 0o777 == 0o600
    conn = sqlite3.connect(tmp_path / "antiapi.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
    assert {"accounts", "flows", "chains", "settings", "client_keys", "usage", "quota_snapshots", "usage_daily"} <= tables
    assert conn.execute("SELECT count(*) FROM client_keys").fetchone()[0] == 0
    # reopening does not re-run migrations
    store.close()
    store.open()
    assert conn.execute("SELECT count(*) FROM schema_version").fetchone()[0] == SCHEMA_VERSION


def test_a_newer_schema_is_refused_with_a_clear_message(tmp_path):
    path = tmp_path / "new.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (999)")
    conn.commit()
    with pytest.raises(RuntimeError, match="newer antiapi"):
        Store(path).open()


def test_writes_never_block_and_a_burst_is_committed_in_few_transactions(store):
    t0 = time.perf_counter()
    for i in range(5000):
        store.add_usage(rec(i))
    enqueue = time.perf_counter() - t0
    assert enqueue < 0.5  # queue puts only: no SQLite on the caller's thread
    assert store.flush_sync()
    assert store.usage_count() == 5000 and store.written == 5000
    rows = store.recent_usage(limit=2)
    assert [r["request_id"] for r in rows] == ["req_4999", "req_4998"]
    assert rows[0]["route"] == ["a/up-m: served"] and rows[0]["stream"] is True


def test_writes_keep_their_order_and_a_bad_statement_does_not_lose_the_batch(store):
    store.put_setting("smart_switch", False)
    store.execute("INSERT INTO no_such_table VALUES (1)")
    store.put_setting("smart_switch", True)
    store.add_usage(rec(1))
    store.flush_sync()
    st = store.load_state()
    assert st.settings == {"smart_switch": True}
    assert store.usage_count() == 1 and store.failed == 1


def test_state_round_trip(store, tmp_path):
    store.add_account("openai", "openai", None, 1)
    store.add_account("codex:me", "codex", "me", 2)
    store.add_account("openai", "openai", None, 99)  # exists: creation order kept
    store.set_account_enabled("codex:me", False)
    store.put_flow("fast", [{"provider": "codex", "model": "gpt-5.2"}], "round_robin", position=1)
    store.put_chain("gpt-4.1", [], "least_used")
    store.put_setting("default_model", "fast")
    store.put_meta("config.flows", "abc")
    store.close()
    again = Store(tmp_path / "antiapi.db")
    again.open()
    try:
        st = again.load_state()
    finally:
        again.close()
    assert [(a["name"], a["seq"], a["enabled"]) for a in st.accounts] == [("openai", 1, 1), ("codex:me", 2, 0)]
    assert st.flows == {"fast": {"entries": [{"provider": "codex", "model": "gpt-5.2"}], "strategy": "round_robin", "source": "admin"}}
    assert st.chains["gpt-4.1"]["strategy"] == "least_used"
    assert st.settings == {"default_model": "fast"} and st.meta == {"config.flows": "abc"}


def test_usage_aggregates_per_account_model_and_day(store):
    day = 86400.0
    t = 1_900_000_000.0  # 2030-03-17
    store.retention_days = 100_000
    for i in range(3):
        store.add_usage(rec(i, t=t, provider="a", model="m1"))
    store.add_usage(rec(3, t=t + day, provider="b", model="m1", status=429, input_tokens=0, output_tokens=0))
    store.add_usage(rec(4, t=t + day, provider="b", model="m2"))
    store.flush_sync()
    by_acct = {r["account"]: r for r in store.usage_summary("account")}
    assert (by_acct["a"]["requests"], by_acct["a"]["errors"], by_acct["a"]["input_tokens"]) == (3, 0, 300)
    assert (by_acct["b"]["requests"], by_acct["b"]["errors"], by_acct["b"]["output_tokens"]) == (2, 1, 10)
    assert {r["model"]: r["requests"] for r in store.usage_summary("model")} == {"m1": 4, "m2": 1}
    assert [(r["day"], r["requests"]) for r in store.usage_summary("day")] == [("2030-03-17", 3), ("2030-03-18", 2)]
    assert [r["requests"] for r in store.usage_summary("account", since=t + day)] == [2]
    daily = store.query("SELECT day, provider, requests FROM usage_daily ORDER BY day, provider, model")
    assert [(d["day"], d["provider"], d["requests"]) for d in daily] == [("2030-03-17", "a", 3), ("2030-03-18", "b", 1), ("2030-03-18", "b", 1)]
    with pytest.raises(ValueError):
        store.usage_summary("nope")


def test_retention_drops_old_rows_and_caps_the_row_count(tmp_path):
    now = [2_000_000_000.0]
    s = Store(tmp_path / "r.db", retention_days=1, max_usage_rows=50, clock=lambda: now[0], prune_every=10)
    s.open()
    try:
        s.add_usage(rec(0, t=now[0] - 2 * 86400))
        for i in range(1, 100):
            s.add_usage(rec(i, t=now[0]))
        s.flush_sync()
        s.add_usage(rec(100, t=now[0]))  # next batch prunes
        s.flush_sync()
        assert s.usage_count() <= 51
        ids = [r["request_id"] for r in s.recent_usage(limit=1000)]
        assert "req_0" not in ids and ids[0] == "req_100"
    finally:
        s.close()


def test_quota_snapshots_keep_the_latest_per_account(store):
    store.put_quota("codex:me", {"status": "ok", "used_percent": 10.0, "quota": {"source": "headers"}})
    store.put_quota("codex:me", {"status": "cooling_down", "used_percent": 100.0, "quota": {"source": "error", "limited_until": 5.0},
                                 "cooldown": {"until": 5.0, "reason": "429"}})
    store.flush_sync()
    [row] = store.quota_snapshots()
    assert (row["account"], row["status"], row["used_percent"], row["source"], row["cooldown_until"]) == (
        "codex:me", "cooling_down", 100.0, "error", 5.0)
    assert row["data"]["cooldown"]["reason"] == "429"


async def test_async_flush_and_reads_do_not_block_the_loop(store):
    for i in range(200):
        store.add_usage(rec(i))
    await store.flush()
    rows = await store.aquery("SELECT count(*) AS n FROM usage")
    assert rows == [{"n": 200}]


def test_concurrent_writers_from_many_threads_lose_nothing(store):
    def work(k):
        for i in range(500):
            store.add_usage(rec(k * 1000 + i))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.flush_sync()
    assert store.usage_count() == 4000


_WRITER = textwrap.dedent("""
    import sys, time
    from types import SimpleNamespace
    from antiapi.store import Store
    s = Store(sys.argv[1])
    s.open()
    i = 0
    while True:
        for _ in range(200):
            i += 1
            s.add_usage(SimpleNamespace(time=time.time(), request_id=f"r{i}", status=200, model="m",
                                        attempts=[], route=["x" * 200], error="e" * 300))
            s.put_setting("counter", i)
        if i == 2000:
            s.flush_sync()
            print("ready", flush=True)
""")


def test_kill_9_during_heavy_writing_leaves_a_readable_database(tmp_path):
    path = tmp_path / "crash.db"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.5)  # writing at full speed
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    n = conn.execute("SELECT count(*) FROM usage").fetchone()[0]
    assert n >= 2000
    conn.close()
    s = Store(path)
    s.open()  # reopens, recovers the WAL and keeps writing
    try:
        s.add_usage(rec(1))
        s.flush_sync()
        assert s.usage_count() == n + 1
        assert int(s.load_state().settings["counter"]) >= 2000
    finally:
        s.close()
