"""Diagnostic variant (not antiapi code): antiapi with its upstream client on httpx2 (pydantic's
httpx fork, whose connection pool does not rescan every connection on every request).

    python bench/run.py --quick --no-litellm --antiapi-cmd "python bench/variants/use_httpx2.py"
"""

import sys

import httpx2

sys.modules["httpx"] = httpx2

from antiapi.cli import main  # noqa: E402

sys.exit(main())
