"""The embedded SQLite state store (accounts, routing, settings, client keys, usage, quota).

May import: stdlib, msgspec. Nothing here runs at import.
"""

from antiapi.store.migrations import SCHEMA_VERSION, migrate
from antiapi.store.store import DB_FILENAME, USAGE_COLUMNS, Store, StoredState

__all__ = ["DB_FILENAME", "SCHEMA_VERSION", "USAGE_COLUMNS", "Store", "StoredState", "migrate"]
