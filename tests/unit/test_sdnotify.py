"""sd_notify on a real AF_UNIX datagram socket standing in for systemd's $NOTIFY_SOCKET."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bramble.daemon import serve_notified
from bramble.sdnotify import Notifier


class FakeSystemd:
    """The receiving end: collects datagrams as lists of KEY=VALUE lines."""

    def __init__(self, sock: socket.socket, name: str) -> None:
        self.sock, self.name = sock, name
        sock.setblocking(False)

    def messages(self) -> list[list[str]]:
        out = []
        while True:
            try:
                out.append(self.sock.recv(4096).decode().split("\n"))
            except BlockingIOError:
                return out

    async def wait_for(self, line: str, seen: list[list[str]]) -> None:
        async with asyncio.timeout(10):  # generous: only a hang fails
            while not any(line in m for m in seen):
                seen.extend(self.messages())
                await asyncio.sleep(0.01)


@pytest.fixture(params=["path", "abstract"])
def systemd(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FakeSystemd]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if request.param == "path":
        path = tmp_path / "notify"
        sock.bind(str(path))
        name = str(path)
    else:
        label = f"bramble-test-{uuid.uuid4().hex}"
        sock.bind(b"\0" + label.encode())
        name = "@" + label
    try:
        yield FakeSystemd(sock, name)
    finally:
        sock.close()


def test_messages(systemd: FakeSystemd) -> None:
    n = Notifier({"NOTIFY_SOCKET": systemd.name})
    try:
        assert n.enabled
        assert n.ready("serving")
        assert n.status("busy")
        assert n.watchdog()
        assert n.stopping()
    finally:
        n.close()
        n.close()  # idempotent
    assert systemd.messages() == [["READY=1", "STATUS=serving"], ["STATUS=busy"],
                                  ["WATCHDOG=1"], ["STOPPING=1"]]


def test_no_socket_is_a_noop() -> None:
    n = Notifier({})
    assert not n.enabled
    assert n.ready() is False and n.watchdog() is False
    assert n.watchdog_interval is None


def test_a_vanished_socket_never_raises(tmp_path: Path) -> None:
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert n.ready() is False
    n.close()


@pytest.mark.parametrize(("env", "interval"), [
    ({"WATCHDOG_USEC": "30000000"}, 30.0),                         # WatchdogSec=30
    ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 30.0),
    ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),    # another process's
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "soon"}, None),
    ({}, None),
])
def test_watchdog_interval(env: dict[str, str], interval: float | None) -> None:
    assert Notifier({"NOTIFY_SOCKET": "@x", **env}).watchdog_interval == interval


async def test_daemon_lifecycle(systemd: FakeSystemd) -> None:
    # WATCHDOG_USEC=100 ms: fed every 50 ms from the event loop.
    n = Notifier({"NOTIFY_SOCKET": systemd.name, "WATCHDOG_USEC": "100000"})
    shutdown = asyncio.Event()
    go = asyncio.Event()

    class Running:
        url = "https://127.0.0.1:6443"

    async def serve(stop: asyncio.Event, started: asyncio.Future[Running]) -> None:
        await go.wait()
        started.set_result(Running())
        await stop.wait()

    seen: list[list[str]] = []
    task = asyncio.create_task(serve_notified(serve, shutdown, n))
    try:
        # Starting: the watchdog is fed, READY=1 not yet sent.
        await systemd.wait_for("WATCHDOG=1", seen)
        assert ["STATUS=starting"] in seen
        assert not any("READY=1" in m for m in seen)
        go.set()
        await systemd.wait_for("READY=1", seen)
        assert ["READY=1", "STATUS=serving (API https://127.0.0.1:6443)"] in seen
        shutdown.set()
        await task
    finally:
        n.close()
    seen.extend(systemd.messages())
    assert ["STOPPING=1", "STATUS=stopping"] in seen
    assert seen.count(["STOPPING=1", "STATUS=stopping"]) == 1


async def test_failed_start_stops_without_ready(systemd: FakeSystemd) -> None:
    n = Notifier({"NOTIFY_SOCKET": systemd.name})

    async def serve(stop: asyncio.Event, started: asyncio.Future[object]) -> None:
        raise RuntimeError("no data dir")

    with pytest.raises(RuntimeError):
        await serve_notified(serve, asyncio.Event(), n)
    n.close()
    msgs = systemd.messages()
    assert not any("READY=1" in m for m in msgs)
    assert msgs[-1] == ["STOPPING=1", "STATUS=stopping"]
