"""A BigQuery emulator (the bqemulator package) as a real process on loopback, for the tests.

The real google-cloud-bigquery client and dbt-bigquery talk to it over REST; it runs the SQL on
DuckDB after translating it, with known gaps (docs/bigquery.md). Ports are chosen by the
emulator itself (port 0) and read from its log, so parallel test sessions never collide.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import duckdb_extensions
import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

BIN_DIR = Path(sys.executable).parent
STARTUP_SECONDS = 60.0


class BigQueryEmulator:
    """`with BigQueryEmulator(project, workdir) as emulator:` -> `.endpoint`, `.client()`."""

    def __init__(self, project: str, workdir: Path) -> None:
        self.project = project
        self.workdir = workdir
        self.log_path = workdir / "bqemulator.log"
        self.endpoint = ""
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> BigQueryEmulator:
        # The emulator loads DuckDB's spatial extension, which it would download (no network
        # here); install the copy PyPI ships (duckdb-extension-spatial) into DuckDB's extension
        # directory first. Idempotent.
        duckdb_extensions.import_extension("spatial", con=duckdb.connect())
        uploads = self.workdir / "uploads"
        uploads.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "BQEMU_UPLOAD_STAGING_DIR": str(uploads)}
        command = [
            str(BIN_DIR / "bqemulator"), "start", "--ephemeral",
            "--rest-host", "127.0.0.1", "--rest-port", "0",
            "--grpc-host", "127.0.0.1", "--grpc-port", "0",
            "--project", self.project, "--log-format", "json",
        ]  # fmt: skip
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir
            )
        try:
            self.endpoint = self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ready(self) -> str:
        assert self._process is not None
        deadline = time.monotonic() + STARTUP_SECONDS
        endpoint = ""
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"bqemulator exited {self._process.returncode}: {self._tail()}")
            endpoint = endpoint or self._rest_address()
            if endpoint:
                try:
                    if requests.get(f"{endpoint}/healthz", timeout=2).ok:
                        return endpoint
                except requests.ConnectionError:
                    pass
            time.sleep(0.2)
        raise RuntimeError(f"bqemulator not ready after {STARTUP_SECONDS:.0f} s: {self._tail()}")

    def _rest_address(self) -> str:
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            if '"rest.listen"' in line:
                event = json.loads(line)
                return f"http://{event['host']}:{event['port']}"
        return ""

    def _tail(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-3000:]

    def client(self) -> bigquery.Client:
        return bigquery.Client(
            project=self.project,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": self.endpoint},
        )

    def create_dataset(self, name: str) -> None:
        with self.client() as client:
            client.create_dataset(f"{self.project}.{name}", exists_ok=True)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def __enter__(self) -> BigQueryEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
