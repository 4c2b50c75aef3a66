"""``python -m antiapi.tui [--url URL] [--token T | --token-file F] [--web]`` (what ``--web`` serves)."""

import sys

from antiapi.tui.cli import main

raise SystemExit(main(sys.argv[1:]))
