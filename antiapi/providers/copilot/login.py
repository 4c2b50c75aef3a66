"""``antiapi login copilot``: sign a GitHub account in for Copilot (device flow, works over SSH)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any, TextIO

from antiapi.accounts import CredentialStore
from antiapi.errors import ConfigError
from antiapi.providers.copilot.settings import COPILOT_API, INSECURE_ENV, from_config
from antiapi.providers.copilot.signin import DeviceSignIn, SignInFailed


def _provider_config(cfg: Any, name: str | None) -> Any:
    """The copilot entry whose endpoints/options the sign-in uses (default settings when none)."""
    entries = {n: pc for n, pc in getattr(cfg, "providers", {}).items() if pc.type == "copilot"}
    if name is not None:
        if name not in entries:
            known = ", ".join(sorted(entries)) or "none"
            raise ConfigError(f"no copilot provider named '{name}' in the config (copilot providers: {known})")
        return entries[name]
    templates = [pc for pc in entries.values() if pc.account is None]
    if templates:
        return templates[0]
    if entries:
        return next(iter(entries.values()))
    from antiapi.config.schema import ProviderConfig

    return ProviderConfig(name="copilot", type="copilot", base_url=COPILOT_API)


def _minutes(seconds: float) -> str:
    m = max(1, round(seconds / 60))
    return f"{m} minute{'s' if m != 1 else ''}"


async def _run(flow: DeviceSignIn, out: TextIO) -> str:
    try:
        info = await flow.start()
        print(
            "\nSign in to GitHub Copilot\n"
            f"  1. On any device, open  {info['verification_uri']}\n"
            f"  2. Enter the code       {info['user_code']}\n"
            f"\nThe code expires in {_minutes(info['expires_in'])}. Waiting for you to approve it "
            "(Ctrl-C to cancel)...",
            file=out, flush=True,
        )
        return await flow.wait()
    finally:
        await flow.aclose()


def main(argv: list[str], cfg: Any, *, out: TextIO | None = None, transport: Any = None) -> int:
    out = out or sys.stdout
    parser = argparse.ArgumentParser(
        prog="antiapi login copilot",
        description="Sign a GitHub account in for GitHub Copilot with GitHub's device flow: you get a code "
        "to enter at github.com/login/device on any device, so it works over SSH and in containers. "
        "Run it again to add more accounts; each is saved under its GitHub login.",
    )
    parser.add_argument("--provider", default=None,
                        help="the copilot provider entry of the config whose endpoints/options to use "
                        "(GitHub Enterprise, proxies); default: the first copilot entry, else github.com")
    # `antiapi login copilot --data-dir X` puts these after the provider name, where the main
    # parser does not read them: honour them here.
    parser.add_argument("--data-dir", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--config", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        if args.data_dir or args.config:
            from antiapi.config import load_config

            cfg = load_config(args.config or None, data_dir=args.data_dir or getattr(cfg, "data_dir", None))
        pc = _provider_config(cfg, args.provider)
        settings = from_config(pc, getattr(cfg, "env_settings", {}), warn=False)
    except ConfigError as e:
        print(f"antiapi: {e}", file=sys.stderr)
        return 2
    if not settings.verify_tls:
        print(f"WARNING: TLS certificate verification is OFF ({INSECURE_ENV} or verify_tls: false). Anyone on the "
              "network path could read your GitHub token.", file=sys.stderr)
    store = CredentialStore(cfg.data_dir)
    flow = DeviceSignIn(settings, store, transport=transport)
    try:
        label = asyncio.run(_run(flow, out))
    except KeyboardInterrupt:
        print("\nSign-in cancelled.", file=out)
        return 130
    except SignInFailed as e:
        print(f"antiapi: {e.message}", file=sys.stderr)
        return 1
    for w in flow.warnings:
        print(f"warning: {w}", file=sys.stderr)
    plan = f" (Copilot plan: {flow.plan})" if flow.plan else ""
    print(
        f"\nSigned in to GitHub as {flow.login}{plan}.\n"
        f"Saved to {store.path('copilot', label)} (readable by you only).\n"
        f"Start (or restart) antiapi to serve this account's models as provider copilot:{label}.\n"
        "Your GitHub Copilot plan's own terms and limits apply to everything sent through it.",
        file=out,
    )
    return 0
