"""UsageLog with the store attached: one row per record, written off the loop, flushed on close."""

from __future__ import annotations

import time

from antiapi.server.usage import UsageLog, UsageRecord
from antiapi.store import Store


async def test_records_go_to_the_store_and_listeners_and_close_flushes(tmp_path):
    store = Store(tmp_path / "antiapi.db")
    await store.aopen()
    log = UsageLog(tmp_path / "usage.jsonl")
    log.attach(store)
    log.start()
    seen = []
    log.listeners.append(seen.append)
    log.listeners.append(lambda rec: 1 / 0)  # a broken listener does not stop the others or the record
    for i in range(1000):
        log.record(UsageRecord(time=time.time(), request_id=f"r{i}", endpoint="/v1/messages", client_dialect="anthropic",
                               model="m", status=200, latency_ms=1.0, provider="a", attempts=["x: 429 rate_limit"],
                               route=["x: 429 rate_limit", "a/m: served"], input_tokens=7))
    await log.aclose()
    assert store.usage_count() == 1000 and len(seen) == 1000 and len(log.recent) == 1000
    assert not (tmp_path / "usage.jsonl").exists()  # the store replaces the JSONL file
    row = store.recent_usage(1)[0]
    assert (row["request_id"], row["input_tokens"], row["route"]) == ("r999", 7, ["x: 429 rate_limit", "a/m: served"])
    await store.aclose()
