"""Shared fixtures: the demo Matomo server as a real subprocess on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from extract.demo.server import DemoServer

FIXTURES = Path(__file__).parent / "fixtures" / "matomo-5"


@pytest.fixture
def demo_server() -> Iterator[Callable[..., DemoServer]]:
    """Factory: `demo_server(**options)` starts `python -m extract.demo serve` with those
    options (see extract.demo.server.ServerOptions) and returns the running handle (`.url`,
    `.token`, `.pid`, `.stop()`). Every server started is stopped when the test ends."""
    started: list[DemoServer] = []

    def start(**options: Any) -> DemoServer:
        server = DemoServer(**options)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def replay_server() -> Iterator[DemoServer]:
    """One demo server replaying the vendored Matomo 5.0.2 captures, shared by the session."""
    with DemoServer(replay=str(FIXTURES)) as server:
        yield server
