"""Real `makegood serve` processes for tests: start on a free loopback port, call, stop."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(
    env: dict[str, str],
    log: Path,
    timeout: float = 180.0,
    workers: int = 1,
    prefix: Sequence[str] = (),
) -> tuple[subprocess.Popen[bytes], str]:
    """Start a server and wait until /readyz answers; the log keeps its output.

    `prefix` runs it through another command first, e.g. `setpriv` to drop root.
    """
    port = free_port()
    serve = ["serve", "--port", str(port), "--workers", str(workers)]
    with log.open("a") as sink:
        proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "api.cli", *serve],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=5) as response:
                if response.status == 200:
                    return proc, base
        except (urllib.error.URLError, ConnectionError):
            pass
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.3)


def call(
    method: str, url: str, key: str | None = None, body: Any = None, timeout: float = 120.0
) -> tuple[int, Any]:
    """One JSON request; returns (status, decoded body) for successes and HTTP errors alike."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, data, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())
