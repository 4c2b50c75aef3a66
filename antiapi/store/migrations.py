"""The state database schema, as numbered migrations (each applied once, in one transaction).

Add a migration by appending to :data:`MIGRATIONS`; never edit one that has shipped.
"""

from __future__ import annotations

import sqlite3

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate"]

MIGRATIONS: list[str] = [
    # 1: accounts, routing, settings, client keys, usage, quota snapshots
    """
    CREATE TABLE accounts (
        name        TEXT PRIMARY KEY,           -- provider name: "openai", "codex:me@example.com"
        type        TEXT NOT NULL,              -- provider type: openai, anthropic, gemini, codex, copilot
        label       TEXT,                       -- signed-in account label (email / login)
        enabled     INTEGER NOT NULL DEFAULT 1,
        seq         INTEGER NOT NULL,           -- creation order (Smart Switch order)
        created_at  REAL NOT NULL,
        meta        TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE flows (
        name        TEXT PRIMARY KEY,
        entries     TEXT NOT NULL,              -- JSON list of {provider, model, account}
        strategy    TEXT,
        source      TEXT NOT NULL DEFAULT 'admin',   -- 'config' (imported from the file) or 'admin'
        position    INTEGER NOT NULL DEFAULT 0,
        updated_at  REAL NOT NULL
    );
    CREATE TABLE chains (
        model       TEXT PRIMARY KEY,
        entries     TEXT NOT NULL,
        strategy    TEXT,
        source      TEXT NOT NULL DEFAULT 'admin',
        updated_at  REAL NOT NULL
    );
    CREATE TABLE settings (
        key         TEXT PRIMARY KEY,
        value       TEXT NOT NULL,              -- JSON
        updated_at  REAL NOT NULL
    );
    CREATE TABLE meta (
        key         TEXT PRIMARY KEY,
        value       TEXT NOT NULL
    );
    CREATE TABLE client_keys (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL,
        key_hash    TEXT NOT NULL UNIQUE,
        prefix      TEXT,
        enabled     INTEGER NOT NULL DEFAULT 1,
        created_at  REAL NOT NULL,
        last_used_at REAL
    );
    CREATE TABLE usage (
        id              INTEGER PRIMARY KEY,
        time            REAL NOT NULL,
        request_id      TEXT,
        endpoint        TEXT,
        client_dialect  TEXT,
        client_key      TEXT,
        model           TEXT,                   -- what the client asked for
        target          TEXT,                   -- what it was routed as (default/background mapping, flow)
        provider        TEXT,                   -- the account (provider name) that served or failed last
        provider_type   TEXT,
        account         TEXT,                   -- signed-in account label, if any
        upstream_model  TEXT,
        upstream_dialect TEXT,
        stream          INTEGER NOT NULL DEFAULT 0,
        status          INTEGER NOT NULL,
        latency_ms      REAL,
        ttft_ms         REAL,
        input_tokens    INTEGER NOT NULL DEFAULT 0,
        output_tokens   INTEGER NOT NULL DEFAULT 0,
        cached_tokens   INTEGER NOT NULL DEFAULT 0,
        reasoning_tokens INTEGER NOT NULL DEFAULT 0,
        error           TEXT,
        attempts        TEXT NOT NULL DEFAULT '[]',   -- JSON: entries tried before, with why they failed
        route           TEXT NOT NULL DEFAULT '[]'    -- JSON: every entry considered, in order
    );
    CREATE INDEX usage_time ON usage(time);
    CREATE INDEX usage_provider_time ON usage(provider, time);
    CREATE TABLE quota_snapshots (
        account         TEXT PRIMARY KEY,
        time            REAL NOT NULL,
        status          TEXT,
        source          TEXT,
        used_percent    REAL,
        limited_until   REAL,
        cooldown_until  REAL,
        cooldown_reason TEXT,
        data            TEXT NOT NULL           -- JSON: the whole quota view of the account
    );
    CREATE VIEW usage_daily AS
        SELECT date(time, 'unixepoch') AS day, provider, model, upstream_model,
               count(*) AS requests, sum(status >= 400) AS errors,
               sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
               sum(cached_tokens) AS cached_tokens, sum(reasoning_tokens) AS reasoning_tokens,
               avg(latency_ms) AS avg_latency_ms, avg(ttft_ms) AS avg_ttft_ms
        FROM usage GROUP BY day, provider, model, upstream_model;
    """,
    # 2: client API keys get per-key limits and a revocation time (antiapi/security/keys.py)
    """
    ALTER TABLE client_keys ADD COLUMN rpm_limit INTEGER;
    ALTER TABLE client_keys ADD COLUMN tokens_per_day INTEGER;
    ALTER TABLE client_keys ADD COLUMN revoked_at REAL;
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to :data:`SCHEMA_VERSION`; returns the version it was at before.

    ``conn`` must be in autocommit mode (``isolation_level=None``).
    """
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    before = int(row[0] or 0)
    if before > SCHEMA_VERSION:
        raise RuntimeError(
            f"the state database was written by a newer antiapi (schema {before}, this one knows {SCHEMA_VERSION}); "
            "upgrade antiapi or point --data-dir elsewhere"
        )
    for version in range(before + 1, SCHEMA_VERSION + 1):
        sql = MIGRATIONS[version - 1]
        conn.execute("BEGIN IMMEDIATE")
        try:
            for stmt in _statements(sql):
                conn.execute(stmt)
            conn.execute("INSERT INTO schema_version(version) VALUES (?)", (version,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return before


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (no ';' inside literals in our migrations)."""
    out, buf = [], []
    for line in sql.splitlines():
        code = line.split("--", 1)[0]
        buf.append(code)
        if code.rstrip().endswith(";"):
            stmt = "\n".join(buf).strip()
            if stmt.strip(";").strip():
                out.append(stmt)
            buf = []
    rest = "\n".join(buf).strip()
    if rest:
        out.append(rest)
    return out
