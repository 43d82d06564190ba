"""Opening a TCP connection from inside another network namespace (a pod's).

`kubectl port-forward` reaches the pod's own localhost, as the kubelet does - a server
listening on 127.0.0.1 inside the pod must be reachable, which the pod IP would not give.
A socket belongs to the namespace it was created in, whatever the creating thread does
afterwards; and setns(2) with CLONE_NEWNET changes only the calling thread. So a throwaway
thread enters the pod's namespace, creates and connects the socket, and ends: no thread
of the agent's pools is ever left in a pod's namespace, even if something fails midway.
Needs CAP_SYS_ADMIN (the agent runs as root, as rootful Podman needs).
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
import threading

CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def _connect_in(netns: str, host: str, port: int, timeout: float) -> socket.socket:
    fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(fd)
    finally:
        os.close(fd)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                         socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((host, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def open_connection(netns: str, port: int, *, host: str = "127.0.0.1",
                          timeout: float = 10.0,  # noqa: ASYNC109 - a connect timeout
                          ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A stream pair to host:port as seen from inside `netns` (a /proc/PID/ns/net path)."""
    loop = asyncio.get_running_loop()
    result: asyncio.Future[socket.socket] = loop.create_future()

    def run() -> None:
        try:
            sock = _connect_in(netns, host, port, timeout)
        except BaseException as err:  # noqa: BLE001 - handed to the waiting coroutine
            loop.call_soon_threadsafe(_settle, result, None, err)
        else:
            loop.call_soon_threadsafe(_settle, result, sock, None)

    threading.Thread(target=run, name=f"netns-connect-{port}", daemon=True).start()
    sock = await result
    return await asyncio.open_connection(sock=sock)


def _settle(fut: asyncio.Future[socket.socket], sock: socket.socket | None,
            err: BaseException | None) -> None:
    if fut.cancelled():
        if sock is not None:
            sock.close()
        return
    if err is not None:
        fut.set_exception(err)
    else:
        assert sock is not None
        fut.set_result(sock)
