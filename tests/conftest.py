"""Shared fixtures: real masters on loopback.

- `master`: a master inside the test's event loop (fast; for async API tests).
- `master_proc`: a master as a separate `bramble master` process, for synchronous
  consumers (kubectl, the official Python client) and for crash tests.
Both use a fresh data dir under tmp_path and are stopped (and checked stopped) afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bramble.kubeconfig import load as load_kubeconfig


@dataclass
class MasterHandle:
    url: str
    data_dir: Path
    kubeconfig: Path
    token: str
    ca_file: Path
    process: subprocess.Popen | None = None
    running: object | None = None  # bramble.master.daemon.Running, in-process only

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _handle(url: str, data_dir: Path, **extra) -> MasterHandle:
    kubeconfig = data_dir / "admin.kubeconfig"
    cfg = load_kubeconfig(kubeconfig)
    ca_file = data_dir.parent / f"ca-{data_dir.name}.pem"
    ca_file.write_bytes(cfg.ca_data or b"")
    return MasterHandle(url=url, data_dir=data_dir, kubeconfig=kubeconfig, token=cfg.token or "",
                        ca_file=ca_file, **extra)


async def eventually(check: Callable[[], Awaitable[Any]], limit: float = 30) -> Any:
    """Poll until `check` returns something truthy (the controllers run on their own);
    `limit` bounds a hang, it is not a speed expectation."""
    async with asyncio.timeout(limit):
        while True:
            got = await check()
            if got:
                return got
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running_master(data_dir: Path, **overrides: Any) -> AsyncIterator[MasterHandle]:
    """A master inside the current event loop, stopped (and awaited) on exit. `overrides`
    are MasterConfig fields (e.g. controllers=ControllerSettings(...))."""
    from bramble.master.api.app import Settings
    from bramble.master.daemon import MasterConfig, serve

    config = MasterConfig(**{"data_dir": data_dir, "bind": "127.0.0.1", "port": 0,
                             "settings": Settings(bookmark_interval=0.5),
                             "shutdown_timeout": 2, "watch_history": 200, **overrides})
    shutdown = asyncio.Event()
    started: asyncio.Future = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(config, shutdown, started), name="test-master")
    done, _ = await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()  # raises the startup error
    running = started.result()
    try:
        yield _handle(running.url, data_dir, running=running)
    finally:
        shutdown.set()
        await asyncio.wait_for(task, 15)


@pytest.fixture
async def master(tmp_path: Path) -> AsyncIterator[MasterHandle]:
    async with running_master(tmp_path / "master") as handle:
        yield handle


def start_master_process(data_dir: Path, port: int, *extra: str,
                         env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bramble", "master", "--data-dir", str(data_dir),
         "--bind", "127.0.0.1", "--port", str(port),
         # Test masters leave 443 and 80 alone (the front doors are tested in-process).
         "--https-port=0", "--http-port=0", *extra],
        stdout=subprocess.DEVNULL, stderr=open(data_dir.parent / f"master-{port}.log", "ab"),
        env={**os.environ, **(env or {})})


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # only /healthz, before the CA exists on disk
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"master exited with {proc.returncode} during startup")
        try:
            with urllib.request.urlopen(f"{url}/readyz", context=ctx, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"master at {url} did not become ready")


def stop_process(proc: subprocess.Popen, timeout: float = 15) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    return proc.returncode


@contextlib.contextmanager
def scratch_master(prefix: str) -> Iterator[tuple[str, Path, subprocess.Popen]]:
    """`bramble master` on a loopback port with a fresh data dir under /tmp, healthy;
    (url, data dir, process). Stopped and removed afterwards (the benchmarks)."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    data_dir = base / "master"
    data_dir.mkdir(mode=0o700)
    port = free_port()
    proc = start_master_process(data_dir, port)
    url = f"https://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        yield url, data_dir, proc
    finally:
        stop_process(proc)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def master_proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MasterHandle]:
    base = tmp_path_factory.mktemp("master-proc")
    data_dir = base / "master"
    data_dir.mkdir(mode=0o700)
    port = free_port()
    proc = start_master_process(data_dir, port)
    url = f"https://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        yield _handle(url, data_dir, process=proc)
    finally:
        code = stop_process(proc)
        assert code == 0, f"master exited with {code}; see {base}"
        shutil.rmtree(base, ignore_errors=True)
