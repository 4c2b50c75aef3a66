"""Diagnostic variant (not antiapi code): httpx2 as in use_httpx2.py, and no SQLite state store
(usage stays in memory), to measure what the store's writer thread costs the event loop.

    python bench/run.py --quick --no-litellm --antiapi-cmd "python bench/variants/use_httpx2_nostore.py"
"""

import sys

import httpx2

sys.modules["httpx"] = httpx2

import antiapi.server.app as _app  # noqa: E402

_app._default_store = lambda config, store: (None, False)

from antiapi.cli import main  # noqa: E402

sys.exit(main())
