"""Command line: ``antiapi serve [--headless]``, ``antiapi tui``, ``antiapi login``, ``antiapi accounts``.
Heavy imports happen inside the chosen command so ``serve --headless`` never loads Textual.

``antiapi serve`` runs the server in a background thread (its own event loop, logging to
``<data dir>/antiapi.log``) and the dashboard on the main thread; quitting the dashboard stops the
server. Without a terminal (stdin/stdout not a TTY) it runs headless, as ``--headless`` does."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import threading
import time
from pathlib import Path

from antiapi import __version__
from antiapi.security.exposure import is_loopback

DEFAULT_PORT = 8964


def _setup_logging(level: str, path: Path | None = None) -> None:
    """antiapi's log lines go to stderr, or (``path``: while the dashboard owns the terminal) to
    that file, together with uvicorn's, warnings and anything else that logs."""
    from antiapi.server.context import RequestContextFilter

    if path is None:
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
    else:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        handler = logging.StreamHandler(os.fdopen(fd, "a", encoding="utf-8", buffering=1))
    fmt = "%(asctime)s %(levelname)s %(name)s [%(request)s] %(message)s"
    handler.setFormatter(logging.Formatter(fmt, "%H:%M:%S" if path is None else "%Y-%m-%d %H:%M:%S"))
    handler.addFilter(RequestContextFilter())
    root = logging.getLogger("antiapi")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    # The HTTP client libraries log one INFO line per upstream request: noise on the hot path.
    for name in ("httpx", "httpx2", "httpcore", "httpcore2"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if path is not None:
        # nothing may write to the terminal the dashboard draws on
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
            lg = logging.getLogger(name)
            lg.handlers[:] = []
            lg.propagate = True
        top = logging.getLogger()
        top.handlers[:] = [handler]
        top.setLevel(logging.WARNING)
        logging.captureWarnings(True)


def _banner(cfg, host: str, port: int) -> str:
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    lines = [
        f"antiapi {__version__} listening on {url}",
        f"  config file: {cfg.path}",
        f"  data dir:    {cfg.data_dir}",
    ]
    for w in cfg.warnings:
        lines.append(f"  warning: {w}")
    if not cfg.providers:
        lines += [
            "",
            "  No provider is configured yet. Add an API key to the config file, for example:",
            "",
            "    providers:",
            "      openai:",
            "        type: openai",
            "        api_key: env:OPENAI_API_KEY",
            "    models:",
            "      - name: gpt-4.1",
            "        provider: openai",
            "",
            "  then restart antiapi. Anthropic, Gemini and any OpenAI-compatible server (Ollama,",
            "  vLLM, OpenRouter) work the same way; see docs/configuration.md.",
            "",
            "  Or, without editing anything, on the dashboard's Accounts screen (`antiapi tui`, 4):",
            "  c signs in to ChatGPT (Codex), g to GitHub Copilot, k adds an API key; served at once.",
        ]
    else:
        names = cfg.model_names()
        shown = ", ".join(names[:12]) + (f" (+{len(names) - 12} more)" if len(names) > 12 else "")
        lines.append(f"  providers:   {', '.join(sorted(cfg.providers))}")
        lines.append(f"  models:      {shown or '(none)'}")
    lines += [
        "",
        f"  Claude Code: ANTHROPIC_BASE_URL={url} ANTHROPIC_API_KEY=antiapi claude",
        f"  OpenAI SDKs: OPENAI_BASE_URL={url}/v1",
    ]
    return "\n".join(lines)


def _has_terminal() -> bool:
    """The dashboard needs a terminal to read keys from and draw on (Textual draws on stderr)."""
    try:
        return sys.stdin.isatty() and sys.stdout.isatty() and sys.stderr.isatty()
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


def cmd_serve(args: argparse.Namespace) -> int:
    from antiapi.config import load_config
    from antiapi.errors import ConfigError

    t0 = time.time()
    _setup_logging(args.log_level)
    headless = args.headless
    if not headless and not _has_terminal():
        print("antiapi: no terminal for the dashboard (stdin/stdout is not a TTY); running headless.", file=sys.stderr)
        headless = True
    try:
        cfg = load_config(args.config, data_dir=args.data_dir)
    except ConfigError as e:
        print(f"antiapi: cannot start: {e}", file=sys.stderr)
        return 2
    host = args.host or cfg.server.host
    port = args.port if args.port is not None else cfg.server.port
    tunnel_kind = getattr(args, "tunnel", None)
    refusal = _exposure_refusal(cfg, host, port, tunnel_kind is not None)
    if refusal:
        print(f"antiapi: cannot start: {refusal}", file=sys.stderr)
        return 2

    from antiapi.providers.registry import build_providers
    from antiapi.server.admin import load_or_create_token
    from antiapi.server.app import create_app
    from antiapi.server.usage import UsageLog

    try:
        providers = build_providers(cfg)
    except ConfigError as e:
        print(f"antiapi: cannot start: {e}", file=sys.stderr)
        return 2
    try:
        token = load_or_create_token(cfg.data_dir)
    except OSError as e:
        print(f"antiapi: cannot start: the admin token file in {cfg.data_dir} cannot be written: {e.strerror}", file=sys.stderr)
        return 2

    try:
        # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets whose proto says TCP
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as e:
        print(f"antiapi: cannot listen on {host}:{port}: {e.strerror}. Is another antiapi running? Use --port to pick another port.", file=sys.stderr)
        return 2
    port = sock.getsockname()[1]
    url = _client_url(host, port)
    from antiapi.webview_launcher import start_if_enabled  # stdlib only

    # the Settings switch "Auto-open" (ui.auto_open): the web dashboard next to the gateway
    web = start_if_enabled(url, cfg.data_dir, no_open=getattr(args, "no_open", False))
    usage = UsageLog(cfg.data_dir / "usage.jsonl")
    app = create_app(
        cfg, providers=providers, usage=usage, started=t0, admin_token=token, url=url,
        exposed=not is_loopback(host), tunnel=tunnel_kind, host=host,
        web_url=web.current_url if web is not None else None,
    )
    log_path = cfg.data_dir / "antiapi.log"
    banner = _banner(cfg, host, port)
    if web is not None:
        banner += "\n" + web.banner_line()
    if not headless:
        banner += f"\n\n  dashboard:   q quits it and stops antiapi; the server log is {log_path}"
    print(banner, file=sys.stderr, flush=True)
    if not headless:
        _setup_logging(args.log_level, log_path)
    server = _server(app, log_config_default=headless)
    if headless:
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:
            # uvicorn shuts down gracefully on Ctrl+C / SIGINT and then re-raises the signal, which
            # asyncio turns into KeyboardInterrupt once the server is already stopped
            if not server.started:
                raise
        return 0
    return _serve_with_dashboard(server, sock, url, token, log_path)


def _exposure_refusal(cfg, host: str, port: int, tunnel: bool) -> str | None:
    """Listening beyond loopback or opening a tunnel needs at least one client key."""
    from antiapi.security.exposure import check_exposure, needs_keys

    if not needs_keys(host, tunnel):
        return None
    from antiapi.security.keys import KeyStore
    from antiapi.store import Store

    store = Store(cfg.data_dir / "antiapi.db")
    store.open()
    try:
        count = len(KeyStore(store).list(include_revoked=False))
    finally:
        store.close()
    return check_exposure(host, tunnel, count)


def cmd_keys(args: argparse.Namespace) -> int:
    from antiapi.config import load_config
    from antiapi.errors import ConfigError
    from antiapi.security.cli import main as keys_main

    try:
        cfg = load_config(args.config, data_dir=args.data_dir)
    except ConfigError as e:
        print(f"antiapi: {e}", file=sys.stderr)
        return 2
    return int(keys_main(args.rest, cfg))


def _client_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def _server(app, *, log_config_default: bool = True):
    """A uvicorn server for ``app`` that ends the admin event streams when it starts shutting
    down (an open ``/admin/events`` connection would otherwise hold the shutdown)."""
    import uvicorn

    admin = app.state.get("admin")

    class Server(uvicorn.Server):
        async def shutdown(self, sockets=None) -> None:
            if admin is not None:
                try:
                    admin.end_streams()
                except Exception:
                    logging.getLogger("antiapi.server").exception("ending the admin event streams failed")
            await super().shutdown(sockets=sockets)

    extra = {} if log_config_default else {"log_config": None}
    return Server(
        uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
            loop="auto",
            http="auto",
            # X-Forwarded-* is never trusted: tunnel traffic arrives from 127.0.0.1, which
            # uvicorn would otherwise believe by default
            proxy_headers=False,
            server_header=False,
            **extra,
        )
    )


def _serve_with_dashboard(server, sock: socket.socket, url: str, token: str, log_path: Path) -> int:
    """The server in a background thread (its own event loop), the dashboard on this thread; the
    server stops when the dashboard exits."""
    import asyncio

    log = logging.getLogger("antiapi.server")
    failed: list[BaseException] = []

    get_factory = getattr(server.config, "get_loop_factory", None)  # uvicorn >= 0.36 (uvloop when installed)
    loop_factory = get_factory() if get_factory is not None else None

    def run() -> None:
        try:
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                runner.run(server.serve(sockets=[sock]))
        except BaseException as e:  # noqa: BLE001 - reported on the main thread
            failed.append(e)
            log.exception("the server stopped with an error")

    thread = threading.Thread(target=run, name="antiapi-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    if not server.started:
        server.should_exit = True
        thread.join(10)
        print(f"antiapi: the server did not start; see {log_path}", file=sys.stderr)
        return 1

    from antiapi.tui.cli import run_attached

    code = 0
    try:
        code = run_attached(url, token)
    except KeyboardInterrupt:
        code = 130
    finally:
        server.should_exit = True
        thread.join(15)
        if thread.is_alive():
            server.force_exit = True
            thread.join(5)
    print("antiapi stopped." if not failed else f"antiapi stopped after an error; see {log_path}", file=sys.stderr)
    return code or (1 if failed else 0)


def cmd_login(args: argparse.Namespace) -> int:
    """``antiapi login <provider> [...]``: run the provider's own sign-in command."""
    import importlib

    from antiapi.config import load_config
    from antiapi.errors import ConfigError

    # --data-dir / --config may also come after the provider name
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--data-dir", default=None)
    pre.add_argument("--config", default=None)
    known, rest = pre.parse_known_args(args.rest)
    data_dir = known.data_dir or args.data_dir
    config = known.config or args.config
    try:
        cfg = load_config(config, data_dir=data_dir)
    except ConfigError as e:
        print(f"antiapi: {e}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"antiapi.providers.{args.provider}.login")
    return int(module.main(rest, cfg))


def cmd_accounts(args: argparse.Namespace) -> int:
    from antiapi.accounts import CredentialStore
    from antiapi.config import load_config
    from antiapi.errors import ConfigError
    from antiapi.providers.registry import SIGNED_IN_TYPES

    try:
        cfg = load_config(args.config, data_dir=args.data_dir)
    except ConfigError as e:
        print(f"antiapi: {e}", file=sys.stderr)
        return 2
    store = CredentialStore(cfg.data_dir)
    if args.action == "remove":
        if not args.provider or not args.label:
            print("antiapi: usage: antiapi accounts remove <provider> <label>", file=sys.stderr)
            return 2
        ok = store.remove(args.provider, args.label)
        print(("removed " if ok else "no such account: ") + f"{args.provider}:{args.label}")
        return 0 if ok else 1
    any_ = False
    for ptype in SIGNED_IN_TYPES:
        for label in store.labels(ptype):
            any_ = True
            print(f"{ptype}:{label}")
    if not any_:
        print("No signed-in accounts. Sign in with: antiapi login codex | antiapi login copilot")
    return 0


def cmd_tui(args: argparse.Namespace) -> int:
    """``antiapi tui``: the dashboard of a running gateway (see :mod:`antiapi.tui.cli`)."""
    from antiapi.config.load import ENV_DATA_DIR
    from antiapi.tui import cli as tui_cli

    return int(tui_cli.run(args, data_dir=os.environ.get(ENV_DATA_DIR) or None))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="antiapi", description="A local LLM API gateway.")
    parser.add_argument("--version", action="version", version=f"antiapi {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway (with the dashboard in this terminal)")
    serve.add_argument("--headless", action="store_true", help="server only, no dashboard (for containers and services)")
    serve.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help=f"port (default {DEFAULT_PORT})")
    serve.add_argument("--data-dir", default=None, help="data directory (default: the platform's user data dir; ANTI_API_DATA_DIR)")
    serve.add_argument("--config", default=None, help="config file (default: <data dir>/config.yaml)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--no-open", action="store_true",
                       help="do not start the web dashboard or open a browser this time (the Auto-open setting)")
    serve.add_argument("--tunnel", choices=["cloudflared", "ngrok", "localtunnel"], default=None,
                       help="also open a public tunnel (needs a client key: antiapi keys create)")
    serve.set_defaults(func=cmd_serve)

    keys = sub.add_parser("keys", help="client API keys: create | list | revoke | limits")
    keys.add_argument("--data-dir", default=None)
    keys.add_argument("--config", default=None)
    keys.add_argument("rest", nargs=argparse.REMAINDER)
    keys.set_defaults(func=cmd_keys)

    login = sub.add_parser("login", help="sign in to an account (codex: ChatGPT; copilot: GitHub)")
    login.add_argument("provider", choices=["codex", "copilot"])
    login.add_argument("--data-dir", default=None)
    login.add_argument("--config", default=None)
    login.add_argument("rest", nargs=argparse.REMAINDER, help="options of the provider's sign-in (see --help after the provider)")
    login.set_defaults(func=cmd_login)

    accounts = sub.add_parser("accounts", help="list or remove signed-in accounts")
    accounts.add_argument("action", nargs="?", default="list", choices=["list", "remove"])
    accounts.add_argument("provider", nargs="?")
    accounts.add_argument("label", nargs="?")
    accounts.add_argument("--data-dir", default=None)
    accounts.add_argument("--config", default=None)
    accounts.set_defaults(func=cmd_accounts)

    from antiapi.tui import cli as tui_cli  # argparse only: Textual loads when the dashboard runs

    tui = sub.add_parser("tui", help="the dashboard of a running gateway (in this terminal, or --web in a browser)")
    tui_cli.add_arguments(tui)
    tui.set_defaults(func=cmd_tui)

    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
