"""Client keys: created once, stored hashed, listed, revoked, limited."""

from __future__ import annotations

import hashlib
import re

import pytest

from antiapi.errors import ErrorKind
from antiapi.security.keys import KeyProblem, KeyStore, KeyVerifier, generate_key, hash_key
from antiapi.store import Store


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "antiapi.db")
    s.open()
    yield s
    s.close()


def _db_bytes(tmp_path) -> bytes:
    return b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("antiapi.db"))


def test_generated_key_format():
    k = generate_key()
    assert re.fullmatch(r"aa-[A-Za-z0-9_-]{43}", k)
    assert generate_key() != k
    assert hash_key(k) == hashlib.sha256(k.encode()).hexdigest()


def test_create_stores_only_the_hash(store, tmp_path):
    ks = KeyStore(store, clock=lambda: 1000.0)
    info, key = ks.create("laptop", rpm_limit=5)
    store.flush_sync()
    raw = _db_bytes(tmp_path)
    assert key.encode() not in raw and key[3:].encode() not in raw
    assert hash_key(key).encode() in raw
    rows = store.query("SELECT * FROM client_keys")
    assert len(rows) == 1
    assert rows[0]["key_hash"] == hash_key(key) and rows[0]["prefix"] == key[:11]
    assert info.to_dict() == {
        "id": info.id, "name": "laptop", "prefix": key[:11], "created_at": 1000.0, "last_used_at": None,
        "revoked": False, "revoked_at": None, "limits": {"requests_per_minute": 5, "tokens_per_day": None},
    }
    assert "key_hash" not in info.to_dict()


def test_list_revoke_and_names(store):
    ks = KeyStore(store)
    a, _ = ks.create("laptop")
    b, _ = ks.create("phone", tokens_per_day=1000)
    with pytest.raises(KeyProblem, match="already named 'laptop'"):
        ks.create("laptop")
    with pytest.raises(KeyProblem, match="--name laptop"):
        ks.create("  ")
    with pytest.raises(KeyProblem, match="positive whole number"):
        ks.create("x", rpm_limit=0)
    assert [k.name for k in ks.list()] == ["laptop", "phone"]
    r = ks.revoke("laptop")
    assert r.id == a.id and r.revoked and r.revoked_at is not None
    assert [k.name for k in ks.list(include_revoked=False)] == ["phone"]
    assert [(k.name, k.revoked) for k in ks.list()] == [("laptop", True), ("phone", False)]
    ks.create("laptop")  # the name is free again once revoked
    with pytest.raises(KeyProblem, match="no client key with id or name 'nope'"):
        ks.revoke("nope")
    assert ks.set_limits(b.id, rpm_limit=3, tokens_per_day=None).rpm_limit == 3


def test_verifier_follows_the_store(store):
    v = KeyVerifier(store)
    ks = KeyStore(store, verifier=v)
    info, key = ks.create("laptop")
    assert v.count == 1
    assert v.verify(key).id == info.id
    assert v.verify(key + "x") is None and v.verify("") is None and v.verify(None) is None
    ks.revoke(info.id)
    assert v.verify(key) is None and v.count == 0
    # a fresh verifier loads from the database
    _, key2 = KeyStore(store).create("desk")
    v2 = KeyVerifier(store)
    v2.reload()
    assert v2.verify(key2).name == "desk" and v2.verify(key) is None


def test_rpm_limit_sliding_window(store):
    now = [5000.0]
    v = KeyVerifier(store, clock=lambda: now[0])
    ks = KeyStore(store, verifier=v)
    _, key = ks.create("laptop", rpm_limit=2)
    k = v.verify(key)
    assert v.admit(k) is None
    now[0] += 10
    assert v.admit(k) is None
    now[0] += 5
    err = v.admit(k)
    assert err.status == 429 and err.kind is ErrorKind.RATE_LIMIT and err.code == "client_key_rate_limit"
    assert err.retry_after == pytest.approx(45.0)
    assert "2 requests per minute" in err.message
    now[0] += 45.01  # the first request left the window
    assert v.admit(k) is None


def test_tokens_per_day_limit(store):
    now = [86400.0 * 100 + 3600]  # 01:00 UTC
    v = KeyVerifier(store, clock=lambda: now[0])
    ks = KeyStore(store, verifier=v)
    _, key = ks.create("laptop", tokens_per_day=100)
    k = v.verify(key)
    assert v.admit(k) is None

    class Rec:
        client_key = "laptop"
        input_tokens = 60
        output_tokens = 40

    v.observe_usage(Rec())
    err = v.admit(k)
    assert err.status == 429 and err.code == "client_key_tokens_per_day"
    assert err.retry_after == pytest.approx(23 * 3600)
    now[0] += 23 * 3600  # next UTC day
    assert v.admit(k) is None


def test_tokens_per_day_survive_restart_via_usage_rows(store):
    from antiapi.server.usage import UsageRecord

    import time

    now = (time.time() // 86400) * 86400.0 + 100  # 00:01:40 UTC today (inside the store's retention)
    _, key = KeyStore(store).create("laptop", tokens_per_day=50)
    store.add_usage(UsageRecord(time=now - 50, request_id="r1", endpoint="/v1/messages", client_dialect="anthropic", model="m", latency_ms=1.0, client_key="laptop", input_tokens=30, output_tokens=25, status=200))
    store.add_usage(UsageRecord(time=now - 200, request_id="r2", endpoint="/v1/messages", client_dialect="anthropic", model="m", latency_ms=1.0, client_key="laptop", input_tokens=999, output_tokens=0, status=200))  # yesterday
    store.flush_sync()
    v = KeyVerifier(store, clock=lambda: now)
    v.reload()
    assert v.admit(v.verify(key)).code == "client_key_tokens_per_day"


def test_last_used_is_written_at_most_once_a_minute(store):
    now = [1000.0]
    v = KeyVerifier(store, clock=lambda: now[0])
    ks = KeyStore(store, verifier=v)
    info, key = ks.create("laptop")
    k = v.verify(key)
    v.admit(k)
    now[0] = 1030.0
    v.admit(k)
    store.flush_sync()
    assert ks.get(info.id).last_used_at == 1000.0
    now[0] = 1061.0
    v.admit(k)
    store.flush_sync()
    assert ks.get(info.id).last_used_at == 1061.0
