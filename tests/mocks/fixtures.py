"""pytest fixtures for the mock upstreams. Import them from tests/conftest.py, e.g.
``from tests.mocks.fixtures import mock_upstream_factory, anthropic_upstream  # noqa: F401``."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest

from .server import MockUpstream


@pytest.fixture
def mock_upstream_factory() -> Iterator[Callable[..., MockUpstream]]:
    """Factory ``make(dialect="all", **options) -> started MockUpstream``; all stopped at teardown."""
    started: list[MockUpstream] = []

    def make(dialect: str = "all", **options: Any) -> MockUpstream:
        mock = MockUpstream(dialect, **options).start()
        started.append(mock)
        return mock

    yield make
    for mock in started:
        mock.stop()


@pytest.fixture
def mock_upstream(mock_upstream_factory: Callable[..., MockUpstream]) -> MockUpstream:
    """One mock serving every dialect."""
    return mock_upstream_factory("all")


@pytest.fixture
def anthropic_upstream(mock_upstream_factory: Callable[..., MockUpstream]) -> MockUpstream:
    return mock_upstream_factory("anthropic")


@pytest.fixture
def openai_chat_upstream(mock_upstream_factory: Callable[..., MockUpstream]) -> MockUpstream:
    return mock_upstream_factory("openai_chat")


@pytest.fixture
def openai_responses_upstream(mock_upstream_factory: Callable[..., MockUpstream]) -> MockUpstream:
    return mock_upstream_factory("openai_responses")


@pytest.fixture
def gemini_upstream(mock_upstream_factory: Callable[..., MockUpstream]) -> MockUpstream:
    return mock_upstream_factory("gemini")
