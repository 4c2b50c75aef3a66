"""Command line: ``antiapi serve [--headless]``, ``antiapi tui``. Heavy imports happen inside
the chosen command so ``serve --headless`` never loads Textual."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import socket
import sys
import time

from antiapi import __version__

DEFAULT_PORT = 8964


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _setup_logging(level: str) -> None:
    from antiapi.server.context import RequestContextFilter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request)s] %(message)s", "%H:%M:%S"))
    handler.addFilter(RequestContextFilter())
    root = logging.getLogger("antiapi")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    # The HTTP client libraries log one INFO line per upstream request: noise on the hot path.
    for name in ("httpx", "httpx2", "httpcore", "httpcore2"):
        logging.getLogger(name).setLevel(logging.WARNING)


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


def cmd_serve(args: argparse.Namespace) -> int:
    from antiapi.config import load_config
    from antiapi.errors import ConfigError

    t0 = time.time()
    _setup_logging(args.log_level)
    try:
        cfg = load_config(args.config, data_dir=args.data_dir)
    except ConfigError as e:
        print(f"antiapi: cannot start: {e}", file=sys.stderr)
        return 2
    host = args.host or cfg.server.host
    port = args.port if args.port is not None else cfg.server.port
    if not _is_loopback(host):
        print(
            f"antiapi: refusing to listen on {host}: anyone who can reach that address could use your accounts.\n"
            "  Listen on 127.0.0.1 (the default) and reach it over an SSH port-forward:\n"
            f"    ssh -L {port}:127.0.0.1:{port} <this-host>\n"
            "  Client API keys for remote access are described in docs/remote-access.md.",
            file=sys.stderr,
        )
        return 2
    if not args.headless:
        print("antiapi: the terminal dashboard is not available in this build; running headless.", file=sys.stderr)

    from antiapi.providers.registry import build_providers
    from antiapi.server.app import create_app
    from antiapi.server.usage import UsageLog

    try:
        providers = build_providers(cfg)
    except ConfigError as e:
        print(f"antiapi: cannot start: {e}", file=sys.stderr)
        return 2
    usage = UsageLog(cfg.data_dir / "usage.jsonl")
    app = create_app(cfg, providers=providers, usage=usage, started=t0)

    import uvicorn

    try:
        # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets whose proto says TCP
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as e:
        print(f"antiapi: cannot listen on {host}:{port}: {e.strerror}. Is another antiapi running? Use --port to pick another port.", file=sys.stderr)
        return 2
    print(_banner(cfg, host, sock.getsockname()[1]), file=sys.stderr, flush=True)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
            loop="auto",
            http="auto",
        )
    )
    server.run(sockets=[sock])
    return 0


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="antiapi", description="A local LLM API gateway.")
    parser.add_argument("--version", action="version", version=f"antiapi {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--headless", action="store_true", help="server only (for containers and services)")
    serve.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help=f"port (default {DEFAULT_PORT})")
    serve.add_argument("--data-dir", default=None, help="data directory (default: the platform's user data dir; ANTI_API_DATA_DIR)")
    serve.add_argument("--config", default=None, help="config file (default: <data dir>/config.yaml)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.set_defaults(func=cmd_serve)

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

    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
