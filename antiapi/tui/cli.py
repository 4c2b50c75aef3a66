"""``antiapi tui``: attach the dashboard to a running gateway, in this terminal or in a browser.

::

    antiapi tui [--url URL] [--token T | --token-file F] [--data-dir D] [--screen NAME]
    antiapi tui --web [--web-port P] ...      # the same dashboard as a web page (textual-serve)

The token defaults to ``<data dir>/admin_token`` (written by the gateway at its first start).
:func:`run_attached` is what ``antiapi serve`` calls to show the dashboard next to a server it
started in-process.

May import: antiapi.tui, antiapi.paths, httpx, stdlib (Textual is imported when the app runs).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from antiapi import paths

__all__ = ["DEFAULT_URL", "DEFAULT_WEB_PORT", "add_arguments", "main", "read_token", "run", "run_attached"]

DEFAULT_URL = "http://127.0.0.1:8964"
DEFAULT_WEB_PORT = 8965
TOKEN_FILENAME = "admin_token"
SCREEN_NAMES = ("quota", "requests", "routing", "accounts", "settings", "remote", "usage")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``tui`` options (for embedding in ``antiapi``'s own parser)."""
    parser.add_argument("--url", default=DEFAULT_URL, help=f"the gateway to attach to (default {DEFAULT_URL})")
    parser.add_argument("--token", default=None, help="admin token (default: read from --token-file)")
    parser.add_argument("--token-file", default=None, help="file holding the admin token (default: <data dir>/admin_token)")
    parser.add_argument("--data-dir", default=None, help="the gateway's data directory (where admin_token is)")
    parser.add_argument("--screen", default="quota", choices=SCREEN_NAMES, help="the screen shown first")
    parser.add_argument("--web", action="store_true", help="serve the dashboard as a web page instead (textual-serve)")
    parser.add_argument("--web-host", default="127.0.0.1", help="address of the web view (loopback only)")
    parser.add_argument("--web-port", type=int, default=DEFAULT_WEB_PORT, help=f"port of the web view (default {DEFAULT_WEB_PORT})")


def read_token(token: str | None, token_file: str | None, data_dir: str | Path | None) -> tuple[str | None, Path]:
    """(token or None, the file it was read from / would be read from). Never creates anything."""
    if token_file:
        path = Path(token_file).expanduser()
    else:
        base = Path(data_dir).expanduser() if data_dir else paths.default_data_dir()
        path = base / TOKEN_FILENAME
    if token:
        return token.strip(), path
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None, path
    return (text or None), path


def _preflight(url: str, token: str) -> str | None:
    """A readable problem when the gateway cannot be used, else None."""
    import httpx

    try:
        r = httpx.get(f"{url.rstrip('/')}/admin/status", headers={"authorization": f"Bearer {token}"}, timeout=5.0, trust_env=False)
    except httpx.HTTPError as e:
        return f"cannot reach the gateway at {url} ({e or type(e).__name__}). Start it with: antiapi serve"
    if r.status_code == 401:
        return (f"the gateway at {url} refused the admin token. Use the token from its data directory's "
                f"{TOKEN_FILENAME} file (--token-file or --data-dir).")
    if r.status_code == 404:
        return f"{url} answers, but has no admin API (is it antiapi? is it up to date?)"
    if r.status_code >= 400:
        return f"the gateway at {url} answered {r.status_code} to /admin/status"
    return None


def run(args: argparse.Namespace, *, data_dir: str | Path | None = None) -> int:
    """Run ``antiapi tui`` with parsed ``args``; ``data_dir`` is the default data directory
    (the caller resolves ``ANTI_API_DATA_DIR``)."""
    token, token_path = read_token(args.token, args.token_file, args.data_dir or data_dir)
    if not token:
        print(
            f"antiapi tui: no admin token: {token_path} is missing or empty.\n"
            "  The gateway writes it at its first start; pass --token, --token-file or the gateway's --data-dir.",
            file=sys.stderr,
        )
        return 2
    url = args.url.rstrip("/")
    if args.web:
        from antiapi.tui.web import serve_web

        token_file = token_path if not args.token else None
        return serve_web(url, token, host=args.web_host, port=args.web_port, token_file=token_file)
    problem = _preflight(url, token)
    if problem:
        print(f"antiapi tui: {problem}", file=sys.stderr)
        return 1
    return _run_app(url, token, screen=args.screen)


def _run_app(url: str, token: str, *, screen: str = "quota") -> int:
    from antiapi.tui.app import AntiapiApp
    from antiapi.tui.client import HttpAdminClient

    app = AntiapiApp(HttpAdminClient(url, token), screen=screen, close_client=True)
    result = app.run()
    return int(result or app.return_code or 0)


def run_attached(url: str, token: str, *, screen: str = "quota") -> int:
    """The dashboard for a gateway this process started (``antiapi serve``): blocks until the
    user quits (q or ctrl+q) and returns the exit code. Run it on the main thread; the server
    runs elsewhere (a thread) and must not log to this terminal while the dashboard is shown."""
    return _run_app(url.rstrip("/"), token, screen=screen)


def main(argv: list[str] | None = None, *, data_dir: str | Path | None = None) -> int:
    """``antiapi tui [options]`` (``argv`` without the ``tui`` word)."""
    parser = argparse.ArgumentParser(prog="antiapi tui", description="antiapi's dashboard: quotas, requests, routing, accounts, settings.")
    add_arguments(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    return run(args, data_dir=data_dir)
