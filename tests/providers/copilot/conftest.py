"""Fixtures for the Copilot provider tests: the GitHub/Copilot mock and config/credential helpers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from antiapi.accounts import CredentialStore
from tests.providers.copilot.mock import CopilotMock


@pytest.fixture
def copilot_factory() -> Iterator[Any]:
    started: list[CopilotMock] = []

    def make(**kw: Any) -> CopilotMock:
        m = CopilotMock(**kw).start()
        started.append(m)
        return m

    yield make
    for m in started:
        m.stop()


@pytest.fixture
def copilot_mock(copilot_factory) -> CopilotMock:
    return copilot_factory()


def endpoints_yaml(mock: CopilotMock) -> str:
    return f'{{github: "{mock.root_url}", github_api: "{mock.root_url}"}}'


def template_config(mock: CopilotMock, *, options: str = "{quota_interval: 0}", extra: str = "") -> str:
    """A copilot template entry: every signed-in account becomes ``copilot:<login>``."""
    return (
        "providers:\n"
        f"  copilot: {{type: copilot, endpoints: {endpoints_yaml(mock)}, options: {options}}}\n" + extra
    )


def pinned_config(mock: CopilotMock, logins: list[str], models: list[str], *, options: str = "{quota_interval: 0}") -> str:
    """One provider per account (``cp-<login>``), each model routed to them in this order."""
    lines = ["providers:"]
    for login in logins:
        lines.append(f"  cp-{login}: {{type: copilot, account: {login}, endpoints: {endpoints_yaml(mock)}, options: {options}}}")
    lines.append("models:")
    for m in models:
        for login in logins:
            lines.append(f"  - {{name: {m}, provider: cp-{login}}}")
    return "\n".join(lines) + "\n"


def sign_in(mock: CopilotMock, *logins: str):
    """A ``prepare`` hook writing the mock accounts' GitHub tokens into the credential store."""

    def prepare(data_dir: Path) -> None:
        store = CredentialStore(data_dir)
        for login in logins:
            acct = mock.accounts.get(login) or mock.add_account(login)
            store.save("copilot", login, {"github_token": acct.github_token, "login": login})

    return prepare
