"""The service proxy on real loopback sockets: TCP and UDP relaying, half-close, failover,
affinity, apply() with changed endpoints, backends closing mid-stream, no endpoints.

Every test serves its own Services on random 127.x.y.z addresses (loopback answers on all
of 127/8), so nothing outside this process is touched and parallel runs do not collide.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import random
import socket
from collections.abc import AsyncIterator, Callable

import pytest

from bramble.node.proxy import Proxier, ProxyOptions
from bramble.node.proxy.rules import Listener
from bramble.node.proxy.tcp import Pool
from tests.node.conftest import holds_soon

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")

TIMEOUT = 10.0


def loopback_ip() -> str:
    return f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def free_port(ip: str, kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


def tcp_max(name: str) -> int:
    with open(f"/proc/sys/net/ipv4/{name}") as f:
        return int(f.read().split()[2])


def dead_port() -> int:
    """A port on 127.0.0.1 nobody listens on (connects are refused)."""
    return free_port("127.0.0.1")


async def eventually(check: Callable[[], bool], what: str) -> None:
    await holds_soon(check, what, TIMEOUT)


def service(name: str, cluster_ip: str, port: int, *, protocol: str = "TCP",
            node_port: int | None = None, affinity: int | None = None) -> dict:
    spec: dict = {"type": "NodePort" if node_port else "ClusterIP", "clusterIP": cluster_ip,
                  "ports": [{"port": port, "protocol": protocol}]}
    if node_port:
        spec["ports"][0]["nodePort"] = node_port
    if affinity:
        spec["sessionAffinity"] = "ClientIP"
        spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": affinity}}
    return {"metadata": {"name": name, "namespace": "default"}, "spec": spec}


def endpoints(name: str, ready: list[int], not_ready: list[int] = (), *,
              protocol: str = "TCP") -> dict:
    """Endpoints on 127.0.0.1: one subset per backend port."""
    subsets = [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": p, "protocol": protocol}]}
               for p in ready]
    subsets += [{"notReadyAddresses": [{"ip": "127.0.0.1"}],
                 "ports": [{"port": p, "protocol": protocol}]} for p in not_ready]
    return {"metadata": {"name": name, "namespace": "default"}, "subsets": subsets}


@contextlib.asynccontextmanager
async def tcp_server(handler) -> AsyncIterator[int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


def whoami(name: str):
    """Says its name, then echoes until EOF."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(f"{name}\n".encode())
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            await _close(writer)
    return handle


@contextlib.asynccontextmanager
async def whoami_servers(*names: str) -> AsyncIterator[dict[str, int]]:
    async with contextlib.AsyncExitStack() as stack:
        yield {n: await stack.enter_async_context(tcp_server(whoami(n))) for n in names}


async def ask_name(ip: str, port: int, source: str | None = None) -> str:
    reader, writer = await asyncio.open_connection(
        ip, port, local_addr=(source, 0) if source else None)
    try:
        return (await reader.readline()).decode().strip()
    finally:
        await _close(writer)


@pytest.fixture(params=[True, False], ids=["splice", "copy"])
def zero_copy(request) -> bool:
    return request.param


@contextlib.asynccontextmanager
async def proxier(**options) -> AsyncIterator[Proxier]:
    async with Proxier(ProxyOptions(**options)) as p:
        yield p
    assert p.connections() == 0


async def test_round_robin_over_ready_endpoints(zero_copy):
    ip = loopback_ip()
    async with whoami_servers("a", "b", "c") as ports, proxier(zero_copy=zero_copy) as p:
        result = await p.apply([service("web", ip, 80)],
                               [endpoints("web", [ports["a"], ports["b"]], [ports["c"]])])
        assert result.added == (Listener("TCP", ip, 80),) and not result.failed
        names = [await ask_name(ip, 80) for _ in range(6)]
    # 2 ready backends, 6 connections: strictly alternating, 3 each; "c" is not ready.
    assert sorted(names) == ["a", "a", "a", "b", "b", "b"]
    assert all(x != y for x, y in zip(names, names[1:], strict=False)), names


async def test_node_port_answers_on_node_addresses():
    ip, node_a, node_b = loopback_ip(), loopback_ip(), loopback_ip()
    node_port = free_port(node_a)
    async with whoami_servers("a") as ports, \
            proxier(node_addresses=(node_a, node_b)) as p:
        await p.apply([service("web", ip, 80, node_port=node_port)],
                      [endpoints("web", [ports["a"]])])
        assert set(p.listeners()) == {Listener("TCP", ip, 80), Listener("TCP", node_a, node_port),
                                      Listener("TCP", node_b, node_port)}
        for host, port in ((ip, 80), (node_a, node_port), (node_b, node_port)):
            assert await ask_name(host, port) == "a"


async def test_half_close_client_side(zero_copy):
    # The client sends, then shuts down writing; the backend sees EOF and only then
    # answers, on the still-open other direction.
    async def count_then_answer(reader, writer):
        data = await reader.read()  # until EOF
        writer.write(f"got {len(data)}".encode())
        await writer.drain()
        await _close(writer)

    ip = loopback_ip()
    async with tcp_server(count_then_answer) as port, proxier(zero_copy=zero_copy) as p:
        await p.apply([service("web", ip, 80)], [endpoints("web", [port])])
        reader, writer = await asyncio.open_connection(ip, 80)
        writer.write(b"x" * 300_000)
        writer.write_eof()
        assert await reader.read() == b"got 300000"
        await _close(writer)
        await eventually(lambda: p.connections() == 0, "relay closed after both EOFs")


async def test_half_close_backend_side(zero_copy):
    # The backend speaks first and shuts down writing; the client reads to EOF and then
    # still sends, which the backend receives.
    received: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def speak_then_listen(reader, writer):
        writer.write(b"hello")
        writer.write_eof()
        received.set_result(await reader.read())
        await _close(writer)

    ip = loopback_ip()
    async with tcp_server(speak_then_listen) as port, proxier(zero_copy=zero_copy) as p:
        await p.apply([service("web", ip, 80)], [endpoints("web", [port])])
        reader, writer = await asyncio.open_connection(ip, 80)
        assert await reader.read() == b"hello"  # EOF came through
        writer.write(b"late words")
        writer.write_eof()
        assert await asyncio.wait_for(received, TIMEOUT) == b"late words"
        await _close(writer)


async def test_large_transfer_is_intact(zero_copy):
    # 8 MiB of random bytes there and back through an echo backend, reading while writing.
    payload = os.urandom(8 << 20)
    ip = loopback_ip()
    async with whoami_servers("echo") as ports, proxier(zero_copy=zero_copy) as p:
        await p.apply([service("web", ip, 80)], [endpoints("web", [ports["echo"]])])
        reader, writer = await asyncio.open_connection(ip, 80)
        assert await reader.readline() == b"echo\n"

        async def send() -> None:
            for i in range(0, len(payload), 1 << 20):
                writer.write(payload[i:i + (1 << 20)])
                await writer.drain()
            writer.write_eof()

        sender = asyncio.create_task(send(), name="send")
        echoed = await reader.read()
        await sender
        await _close(writer)
    assert echoed == payload


async def test_relay_copies_when_no_pipe_can_be_had(monkeypatch):
    # Out of fds for pipes (EMFILE): the zero-copy relay falls back to copying.
    def no_pipe(self):
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(Pool, "pipe", no_pipe)
    payload = os.urandom(1 << 20)
    ip = loopback_ip()
    async with whoami_servers("echo") as ports, proxier(zero_copy=True) as p:
        await p.apply([service("web", ip, 80)], [endpoints("web", [ports["echo"]])])
        reader, writer = await asyncio.open_connection(ip, 80)
        assert await reader.readline() == b"echo\n"
        writer.write(payload)
        assert await reader.readexactly(len(payload)) == payload
        await _close(writer)


async def test_failover_to_the_next_endpoint():
    # Two of three endpoints refuse connections: every connection still reaches "live".
    ip = loopback_ip()
    async with whoami_servers("live") as ports, proxier() as p:
        await p.apply([service("web", ip, 80)],
                      [endpoints("web", [dead_port(), ports["live"], dead_port()])])
        assert [await ask_name(ip, 80) for _ in range(6)] == ["live"] * 6


async def test_all_endpoints_failing_resets_the_client():
    ip = loopback_ip()
    async with proxier() as p:
        await p.apply([service("web", ip, 80)], [endpoints("web", [dead_port(), dead_port()])])
        reader, writer = await asyncio.open_connection(ip, 80)
        with pytest.raises(ConnectionResetError):
            await reader.read()
        await _close(writer)


async def test_no_endpoints_resets_connections():
    ip = loopback_ip()
    async with proxier() as p:
        await p.apply([service("web", ip, 80)], [endpoints("web", [])])
        reader, writer = await asyncio.open_connection(ip, 80)
        with pytest.raises(ConnectionResetError):
            await reader.read()
        await _close(writer)


async def test_session_affinity_client_ip():
    ip = loopback_ip()
    one, two = loopback_ip(), loopback_ip()
    async with whoami_servers("a", "b") as ports, proxier() as p:
        await p.apply([service("web", ip, 80, affinity=60)],
                      [endpoints("web", [ports["a"], ports["b"]])])
        first = [await ask_name(ip, 80, source=one) for _ in range(5)]
        second = await ask_name(ip, 80, source=two)
        again = await ask_name(ip, 80, source=one)
    # Client one sticks to one backend; client two's pick continues the round robin, so
    # (2 backends) it lands on the other one.
    assert len(set(first)) == 1 and again == first[0]
    assert second != first[0]


async def test_apply_changed_endpoints_keeps_established_connections(zero_copy):
    ip = loopback_ip()
    async with whoami_servers("a", "b") as ports, proxier(zero_copy=zero_copy) as p:
        await p.apply([service("web", ip, 80)], [endpoints("web", [ports["a"]])])
        reader, writer = await asyncio.open_connection(ip, 80)
        assert await reader.readline() == b"a\n"

        result = await p.apply([service("web", ip, 80)], [endpoints("web", [ports["b"]])])
        assert result.added == () and result.removed == ()  # the listener stayed
        assert [await ask_name(ip, 80) for _ in range(3)] == ["b"] * 3
        # The connection to the removed backend goes on until it ends.
        writer.write(b"still there?")
        assert await reader.readexactly(12) == b"still there?"
        await _close(writer)


async def test_backend_aborting_mid_stream_closes_the_client(zero_copy):
    # The backend sends part of an answer and dies with a reset: the client gets what was
    # relayed and then the end of the connection (no hang), and the relay is gone.
    async def abort(reader, writer):
        writer.write(b"partial")
        await writer.drain()
        await reader.readexactly(4)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        writer.transport.abort()

    ip = loopback_ip()
    async with tcp_server(abort) as port, proxier(zero_copy=zero_copy) as p:
        await p.apply([service("web", ip, 80)], [endpoints("web", [port])])
        reader, writer = await asyncio.open_connection(ip, 80)
        assert await reader.readexactly(7) == b"partial"
        writer.write(b"ping")
        assert await reader.read() == b""
        await eventually(lambda: p.connections() == 0, "relay closed")
        await _close(writer)


async def test_backend_closing_mid_stream_while_client_sends(zero_copy):
    # The backend reads a little and closes; the client keeps sending: it sees EOF (and
    # may see its further writes fail), never a hang.
    async def close_early(reader, writer):
        await reader.read(10)
        await _close(writer)

    ip = loopback_ip()
    async with tcp_server(close_early) as port, proxier(zero_copy=zero_copy) as p:
        await p.apply([service("web", ip, 80)], [endpoints("web", [port])])
        reader, writer = await asyncio.open_connection(ip, 80)
        with contextlib.suppress(ConnectionError):
            for _ in range(50):
                writer.write(b"z" * 65536)
                await writer.drain()
        with contextlib.suppress(ConnectionError):
            assert await reader.read() == b""
        await eventually(lambda: p.connections() == 0, "relay closed")
        await _close(writer)


async def test_back_pressure_bounds_what_the_proxy_reads(zero_copy):
    # A backend that never reads: the client's writes stall once the kernel buffers on
    # the way (client, proxy and backend sockets, one pipe) are full - the proxy does not
    # keep reading into memory.
    stalled = asyncio.Event()

    async def never_read(reader, writer):
        await stalled.wait()
        await _close(writer)

    ip = loopback_ip()
    async with tcp_server(never_read) as port, proxier(zero_copy=zero_copy) as p:
        await p.apply([service("web", ip, 80)], [endpoints("web", [port])])
        client = socket.create_connection((ip, 80))
        client.setblocking(False)
        sent, chunk, idle = 0, b"w" * 65536, 0
        # Without back-pressure this never stalls: the guard turns a hang into a failure.
        async with asyncio.timeout(TIMEOUT * 6):
            while idle < 20:  # 20 consecutive 10 ms waits with the socket still full
                try:
                    sent += client.send(chunk)
                    idle = 0
                except BlockingIOError:
                    idle += 1
                    await asyncio.sleep(0.01)
        stalled.set()
        client.close()
    # At most: two connections' worth of the largest socket buffers plus one pipe.
    assert sent <= 2 * (tcp_max("tcp_rmem") + tcp_max("tcp_wmem")) + (1 << 20), sent


async def test_many_concurrent_connections(zero_copy):
    ip = loopback_ip()
    async with whoami_servers("a", "b") as ports, proxier(zero_copy=zero_copy) as p:
        await p.apply([service("web", ip, 80)], [endpoints("web", [ports["a"], ports["b"]])])
        conns = [await asyncio.open_connection(ip, 80) for _ in range(200)]
        names = [(await r.readline()).strip() for r, _ in conns]
        for i, (_, w) in enumerate(conns):
            w.write(b"%d\n" % i)
        echoed = [await r.readline() for r, _ in conns]
        assert echoed == [b"%d\n" % i for i in range(200)]
        assert names.count(b"a") == names.count(b"b") == 100
        for _, w in conns:
            await _close(w)


async def test_removed_service_stops_listening_and_close_ends_connections():
    ip = loopback_ip()
    async with whoami_servers("a") as ports:
        p = Proxier()
        await p.apply([service("web", ip, 80)], [endpoints("web", [ports["a"]])])
        reader, writer = await asyncio.open_connection(ip, 80)
        assert await reader.readline() == b"a\n"
        result = await p.apply([], [])
        assert result.removed == (Listener("TCP", ip, 80),) and p.listeners() == {}
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection(ip, 80)
        # The established connection outlived its listener; close() ends it.
        assert p.connections() == 1
        await p.close()
        await p.close()  # idempotent
        assert await reader.read() == b""
        await _close(writer)


async def test_bind_failure_is_reported_retried_and_spares_the_others():
    taken_ip, free_ip = loopback_ip(), loopback_ip()
    with socket.socket() as blocker:
        blocker.bind((taken_ip, 80))
        blocker.listen()
        async with whoami_servers("a") as ports, proxier(retry_interval=0.05) as p:
            objs = ([service("taken", taken_ip, 80), service("free", free_ip, 80)],
                    [endpoints("taken", [ports["a"]]), endpoints("free", [ports["a"]])])
            result = await p.apply(*objs)
            assert list(result.failed) == [Listener("TCP", taken_ip, 80)]
            assert list(p.listeners()) == [Listener("TCP", free_ip, 80)]
            assert await ask_name(free_ip, 80) == "a"
            blocker.close()
            await eventually(lambda: len(p.listeners()) == 2, "retried bind succeeds")
            assert await ask_name(taken_ip, 80) == "a"


async def test_close_cancels_a_pending_retry():
    ip = loopback_ip()
    with socket.socket() as blocker:
        blocker.bind((ip, 80))
        blocker.listen()
        p = Proxier(ProxyOptions(retry_interval=3600))
        assert (await p.apply([service("web", ip, 80)], [])).failed
        await p.close()
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "proxy-retry-listeners"]


async def test_address_hooks_add_and_release_cluster_ips():
    calls: list[tuple[str, str]] = []

    async def ensure(ip: str) -> None:
        calls.append(("add", ip))

    async def remove(ip: str) -> None:
        calls.append(("del", ip))

    one, two, node = loopback_ip(), loopback_ip(), loopback_ip()
    async with Proxier(ProxyOptions(node_addresses=(node,)), ensure_address=ensure,
                       remove_address=remove) as p:
        await p.apply([service("one", one, 80, node_port=free_port(node)),
                       service("two", two, 80)], [])
        await p.apply([service("two", two, 80)], [])
        await p.apply([service("two", two, 80)], [])
    # ClusterIPs only (never the node address), each added once, released when unused.
    assert sorted(calls[:2]) == sorted([("add", one), ("add", two)])
    assert calls[2:] == [("del", one)]


# --- UDP ----------------------------------------------------------------------------------

class _UdpWhoami(asyncio.DatagramProtocol):
    def __init__(self, name: str) -> None:
        self.name = name.encode()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        assert self.transport is not None
        self.transport.sendto(self.name + b":" + data, addr)


@contextlib.asynccontextmanager
async def udp_servers(*names: str) -> AsyncIterator[dict[str, int]]:
    loop = asyncio.get_running_loop()
    transports, ports = [], {}
    try:
        for name in names:
            transport, _ = await loop.create_datagram_endpoint(
                lambda n=name: _UdpWhoami(n), local_addr=("127.0.0.1", 0))
            transports.append(transport)
            ports[name] = transport.get_extra_info("sockname")[1]
        yield ports
    finally:
        for transport in transports:
            transport.close()


class _UdpClient(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.replies: asyncio.Queue[tuple[bytes, tuple]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr) -> None:
        self.replies.put_nowait((data, addr))


@contextlib.asynccontextmanager
async def udp_client(source: str = "127.0.0.1") -> AsyncIterator[tuple[asyncio.DatagramTransport,
                                                                       _UdpClient]]:
    transport, protocol = await asyncio.get_running_loop().create_datagram_endpoint(
        _UdpClient, local_addr=(source, 0))
    try:
        yield transport, protocol
    finally:
        transport.close()


async def udp_ask(client, target: tuple[str, int], message: bytes,
                  retries: int = 50) -> tuple[bytes, tuple]:
    """Send until a reply comes (UDP may drop; a refused backend loses the first one)."""
    transport, protocol = client
    for _ in range(retries):
        transport.sendto(message, target)
        try:
            return await asyncio.wait_for(protocol.replies.get(), 0.2)
        except TimeoutError:
            continue
    raise AssertionError(f"no UDP reply from {target}")


async def test_udp_flows_round_robin_and_replies_come_from_the_cluster_ip():
    ip = loopback_ip()
    async with udp_servers("a", "b") as ports, proxier() as p:
        await p.apply([service("dns", ip, 53, protocol="UDP")],
                      [endpoints("dns", [ports["a"], ports["b"]], protocol="UDP")])
        async with udp_client() as c1, udp_client() as c2:
            first = [await udp_ask(c1, (ip, 53), b"q%d" % i) for i in range(3)]
            other = await udp_ask(c2, (ip, 53), b"x")
        # One flow per client address: c1's three queries reach one backend, from the
        # ClusterIP:port it asked; c2's flow takes the next backend in round robin.
        names = {reply.split(b":")[0] for reply, _ in first}
        assert len(names) == 1
        assert [reply.split(b":")[1] for reply, _ in first] == [b"q0", b"q1", b"q2"]
        assert {addr for _, addr in first} == {(ip, 53)}
        assert other[0].split(b":")[0] not in names
        assert len(p.udp_flows(Listener("UDP", ip, 53))) == 2


async def test_udp_idle_flows_expire():
    ip = loopback_ip()
    async with udp_servers("a") as ports, proxier(udp_idle_timeout=0.1) as p:
        await p.apply([service("dns", ip, 53, protocol="UDP")],
                      [endpoints("dns", [ports["a"]], protocol="UDP")])
        async with udp_client() as c:
            await udp_ask(c, (ip, 53), b"q")
        await eventually(lambda: not p.udp_flows(Listener("UDP", ip, 53)), "flow expired")


async def test_udp_refused_backend_moves_the_flow_to_the_next():
    ip = loopback_ip()
    async with udp_servers("live") as ports, proxier() as p:
        dead = free_port("127.0.0.1", socket.SOCK_DGRAM)
        await p.apply([service("dns", ip, 53, protocol="UDP")],
                      [endpoints("dns", [dead, ports["live"]], protocol="UDP")])
        for _ in range(3):
            async with udp_client() as c:
                reply, _ = await udp_ask(c, (ip, 53), b"q")
                assert reply == b"live:q"


async def test_udp_flows_to_removed_endpoints_are_closed():
    ip = loopback_ip()
    listener = Listener("UDP", ip, 53)
    async with udp_servers("a", "b") as ports, proxier() as p:
        svc = service("dns", ip, 53, protocol="UDP")
        await p.apply([svc], [endpoints("dns", [ports["a"]], protocol="UDP")])
        async with udp_client() as c:
            assert (await udp_ask(c, (ip, 53), b"1"))[0] == b"a:1"
            await p.apply([svc], [endpoints("dns", [ports["b"]], protocol="UDP")])
            assert p.udp_flows(listener) == {}
            # The same client address now gets a new flow to the remaining backend.
            assert (await udp_ask(c, (ip, 53), b"2"))[0] == b"b:2"


async def test_udp_without_endpoints_drops():
    ip = loopback_ip()
    async with proxier() as p:
        await p.apply([service("dns", ip, 53, protocol="UDP")], [])
        async with udp_client() as c:
            with pytest.raises(AssertionError, match="no UDP reply"):
                await udp_ask(c, (ip, 53), b"q", retries=2)
        assert p.udp_flows(Listener("UDP", ip, 53)) == {}
