"""Fixtures for the Codex provider tests: the Codex/OAuth mock and signed-in gateways."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from antiapi.accounts import CredentialStore
from tests.providers.codex.mock import CodexMock

A = "alice@example.com"
B = "bob@example.com"


@pytest.fixture
def codex_mock_factory() -> Iterator[Callable[..., CodexMock]]:
    started: list[CodexMock] = []

    def make(**kw: Any) -> CodexMock:
        m = CodexMock(**kw).start()
        started.append(m)
        return m

    yield make
    for m in started:
        m.stop()


@pytest.fixture
def codex_mock(codex_mock_factory) -> CodexMock:
    m = codex_mock_factory()
    m.add_account(A, plan="plus")
    return m


def signed_in(mock: CodexMock, *emails: str, **kw: Any) -> Callable:
    """A gateway ``prepare`` callback storing credentials of ``emails`` (as after a sign-in)."""

    def prepare(data_dir) -> None:
        store = CredentialStore(data_dir)
        for email in emails:
            store.save("codex", email, mock.credentials_record(email, **kw))

    return prepare


def codex_config(mock: CodexMock, *, options: dict | None = None, extra: str = "") -> str:
    """A config whose codex template entry points at the mock (every signed-in account uses it)."""
    return "providers:\n" + mock.provider_yaml("codex", options=options) + extra


@pytest.fixture
def codex_gateway(codex_mock, gateway_factory):
    """antiapi with alice signed in at the mock."""

    def make(options: dict | None = None, env: dict | None = None, emails=(A,)):
        return gateway_factory(codex_config(codex_mock, options=options), env=env,
                               prepare=signed_in(codex_mock, *emails))

    return make
