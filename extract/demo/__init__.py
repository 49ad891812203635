"""A Matomo 5 Reporting API server on loopback, for tests, the quickstart and benchmarks."""

from __future__ import annotations

# Fixed so docs and the quickstart can show it; it only ever guards a loopback demo server.
DEMO_TOKEN = "d3m0d3m0d3m0d3m0d3m0d3m0d3m0d3m0"  # noqa: S105 (public by design)
