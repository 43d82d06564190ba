"""Service proxy benchmark: prints figures, asserts nothing.

Side by side, direct to the backend vs through a ClusterIP of the proxy:
- throughput: one connection streaming --gib GiB to a sink, best of --rounds;
- request/response latency: --requests round trips of 64 bytes on one connection;
- --conns concurrent connections held open together (each does a round trip while all
  are open), counting errors;
- the proxy process: its RSS serving 20 Services (idle, after the runs, peak) and its CPU
  seconds per GiB relayed.

Three processes (backend: a sink and an echo server; the proxy: a Proxier serving 20
Services; the client), so that no two share a GIL. Two topologies:
- netns (the default as root): "pods" as network namespaces on a bridge inside a "node"
  namespace, like Podman's pods on a Pi. The client in pod A, the backend in pod B, the
  proxy in the node namespace with its ClusterIPs (10.43.0.10-29) made local by
  address.ensure_address. Direct = pod A -> pod B over the bridge; ClusterIP = pod A ->
  node (proxy) -> pod B. Nothing is created outside the three namespaces, which are
  deleted at the end.
- loopback: everything on 127.0.0.0/8 (ClusterIPs 127.0.0.10-29), no privileges needed.
  Direct loopback TCP is the cheapest path there is, so this ratio is the pessimistic one.

    python tests/bench/bench_proxy.py [--topology netns|loopback] [--gib 1] [--rounds 3]
                                      [--requests 5000] [--conns 1000] [--copy]
    (--copy: the plain recv/send relay instead of splice)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

SERVICES = 20
PORT = 8080
MSG = 64
SUBNET = "10.77.0"  # inside the bench's own namespaces only


def raise_nofile() -> int:
    """The soft fd limit up to the hard one (only this process)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- backend process ----------------------------------------------------------------------

def _sink_conn(conn: socket.socket) -> None:
    buf = bytearray(1 << 20)
    total = 0
    with conn:
        while n := conn.recv_into(buf):
            total += n
        conn.sendall(str(total).encode())


def _sink(sock: socket.socket) -> None:
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=_sink_conn, args=(conn,), daemon=True).start()


def _echo(sock: socket.socket) -> None:
    """A selector-based echo server (one thread, many connections)."""
    sel = selectors.DefaultSelector()
    sock.setblocking(False)
    sel.register(sock, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            if key.fileobj is sock:
                try:
                    conn, _ = sock.accept()
                except BlockingIOError:
                    continue
                conn.setblocking(False)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sel.register(conn, selectors.EVENT_READ)
                continue
            conn = key.fileobj
            try:
                data = conn.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                sel.unregister(conn)
                conn.close()
                continue
            try:
                conn.sendall(data)  # small messages: they fit the send buffer
            except OSError:
                sel.unregister(conn)
                conn.close()


def backend_main(host: str) -> None:
    raise_nofile()
    sink, echo = socket.socket(), socket.socket()
    for s in (sink, echo):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, 0))
        s.listen(4096)
    threading.Thread(target=_sink, args=(sink,), daemon=True).start()
    threading.Thread(target=_echo, args=(echo,), daemon=True).start()
    print(sink.getsockname()[1], echo.getsockname()[1], flush=True)
    sys.stdin.read()  # until the parent closes our stdin


# --- proxy process ------------------------------------------------------------------------

def proxy_main(backend_ip: str, sink_port: int, echo_port: int, cluster_prefix: str,
               zero_copy: bool, hooks: bool) -> None:
    # The interpreter with asyncio (imported above) but without bramble: the baseline.
    baseline_kb = status_kb(os.getpid(), "VmRSS")
    from bramble.node.proxy import Proxier, ProxyOptions
    from bramble.node.proxy.address import ensure_address, remove_address

    raise_nofile()

    def service(i: int) -> tuple[dict, dict]:
        name = f"svc{i}"
        backend = sink_port if i % 2 == 0 else echo_port
        svc = {"metadata": {"name": name, "namespace": "default"},
               "spec": {"type": "ClusterIP", "clusterIP": f"{cluster_prefix}.{10 + i}",
                        "ports": [{"port": PORT, "protocol": "TCP"}]}}
        ep = {"metadata": {"name": name, "namespace": "default"},
              "subsets": [{"addresses": [{"ip": backend_ip}], "ports": [{"port": backend}]}]}
        return svc, ep

    async def run() -> None:
        pairs = [service(i) for i in range(SERVICES)]
        proxier = Proxier(ProxyOptions(zero_copy=zero_copy),
                          ensure_address=ensure_address if hooks else None,
                          remove_address=remove_address if hooks else None)
        async with proxier:
            result = await proxier.apply([s for s, _ in pairs], [e for _, e in pairs])
            assert not result.failed, result.failed
            print("ready", baseline_kb, flush=True)
            stop = asyncio.Event()
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
            await stop.wait()

    asyncio.run(run())


# --- client (measuring) process -----------------------------------------------------------

def stream(host: str, port: int, total: int) -> float:
    """MB/s of `total` bytes sent over one connection and counted by the sink."""
    chunk = memoryview(bytearray(1 << 20))
    with socket.create_connection((host, port)) as conn:
        start = time.perf_counter()
        sent = 0
        while sent < total:
            conn.sendall(chunk)
            sent += len(chunk)
        conn.shutdown(socket.SHUT_WR)
        received = int(conn.recv(64))
        elapsed = time.perf_counter() - start
    assert received == total, (received, total)
    return total / elapsed / 1e6


def latencies(host: str, port: int, count: int) -> list[float]:
    msg = b"x" * MSG
    out = []
    with socket.create_connection((host, port)) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(count + 100):
            start = time.perf_counter()
            conn.sendall(msg)
            got = 0
            while got < MSG:
                got += len(conn.recv(MSG - got))
            if i >= 100:  # warm-up
                out.append((time.perf_counter() - start) * 1e3)
    return out


async def hold(host: str, port: int, count: int) -> tuple[int, int, float]:
    """Open `count` connections, all held at once; each does a round trip. Returns
    (completed round trips, errors, seconds)."""
    errors = 0
    opened: list[asyncio.StreamWriter] = []
    all_open = asyncio.Event()
    start = time.perf_counter()

    async def one() -> bool:
        nonlocal errors
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            errors += 1
            return False
        finally:
            if len(opened) + errors + 1 >= count:
                all_open.set()
        opened.append(writer)
        await all_open.wait()
        try:
            writer.write(b"y" * MSG)
            await writer.drain()
            await reader.readexactly(MSG)
            return True
        except (OSError, asyncio.IncompleteReadError):
            errors += 1
            return False

    results = await asyncio.gather(*(one() for _ in range(count)))
    elapsed = time.perf_counter() - start
    for writer in opened:
        writer.close()
    await asyncio.gather(*(w.wait_closed() for w in opened), return_exceptions=True)
    return sum(results), errors, elapsed


def print_latency(direct: list[float], proxied: list[float], requests: int) -> None:
    print(f"latency, {requests} round trips of {MSG} B on one connection (ms):")
    for name, values in (("direct", direct), ("ClusterIP", proxied)):
        print(f"  {name:10} p50 {pct(values, 0.5):.3f}  p99 {pct(values, 0.99):.3f}"
              f"  mean {statistics.fmean(values):.3f}")
    print(f"  added by the proxy: p50 {pct(proxied, 0.5) - pct(direct, 0.5):.3f} ms, "
          f"p99 {pct(proxied, 0.99) - pct(direct, 0.99):.3f} ms")


def measure_main(what: str, host: str, port: int, args: argparse.Namespace) -> None:
    """One measurement, printed as JSON (run inside the client's namespace)."""
    raise_nofile()
    if what == "stream":
        out: object = stream(host, port, int(args.gib * (1 << 30)))
    elif what == "latency":
        out = latencies(host, port, args.requests)
    else:
        out = asyncio.run(hold(host, port, args.conns))
    print(json.dumps(out), flush=True)


# --- topologies ---------------------------------------------------------------------------

def sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True)


class Loopback:
    name = "loopback (127.0.0.0/8)"
    backend_ip = "127.0.0.1"
    cluster_prefix = "127.0.0"
    hooks = False

    def __init__(self) -> None:
        self.client: list[str] = []
        self.backend: list[str] = []
        self.node: list[str] = []

    def close(self) -> None:
        pass


class Netns:
    """Pod A and pod B namespaces on a bridge inside a node namespace."""

    name = "netns (pod A -> bridge -> pod B; the proxy in the node namespace)"
    backend_ip = f"{SUBNET}.3"
    cluster_prefix = "10.43.0"
    hooks = True

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.names = {role: f"bpb-{tag}-{role}" for role in ("node", "poda", "podb")}
        try:
            for ns in self.names.values():
                sh("ip", "netns", "add", ns)
                sh("ip", "-n", ns, "link", "set", "lo", "up")
            node = self.names["node"]
            sh("ip", "-n", node, "link", "add", "br0", "type", "bridge")
            sh("ip", "-n", node, "addr", "add", f"{SUBNET}.1/24", "dev", "br0")
            sh("ip", "-n", node, "link", "set", "br0", "up")
            for i, pod in ((2, "poda"), (3, "podb")):
                ns = self.names[pod]
                sh("ip", "-n", node, "link", "add", f"v{pod}", "type", "veth", "peer", "name",
                   "eth0", "netns", ns)
                sh("ip", "-n", node, "link", "set", f"v{pod}", "master", "br0", "up")
                sh("ip", "-n", ns, "addr", "add", f"{SUBNET}.{i}/24", "dev", "eth0")
                sh("ip", "-n", ns, "link", "set", "eth0", "up")
                sh("ip", "-n", ns, "route", "add", "default", "via", f"{SUBNET}.1")
        except BaseException:
            self.close()
            raise
        self.client = ["ip", "netns", "exec", self.names["poda"]]
        self.backend = ["ip", "netns", "exec", self.names["podb"]]
        self.node = ["ip", "netns", "exec", self.names["node"]]

    def close(self) -> None:
        for ns in self.names.values():
            subprocess.run(["ip", "netns", "delete", ns], stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--role", choices=["main", "backend", "proxy", "measure"], default="main")
    parser.add_argument("--topology", choices=["netns", "loopback"])
    parser.add_argument("--what")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--ports", nargs=2, type=int)
    parser.add_argument("--prefix")
    parser.add_argument("--hooks", action="store_true")
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--conns", type=int, default=1000)
    parser.add_argument("--copy", action="store_true", help="relay without splice")
    args = parser.parse_args()
    if args.role == "backend":
        backend_main(args.host)
        return
    if args.role == "proxy":
        proxy_main(args.host, *args.ports, args.prefix, zero_copy=not args.copy,
                   hooks=args.hooks)
        return
    if args.role == "measure":
        measure_main(args.what, args.host, args.port, args)
        return

    topology_name = args.topology or (
        "netns" if os.geteuid() == 0 and shutil.which("ip") else "loopback")
    topo: Loopback | Netns = Netns() if topology_name == "netns" else Loopback()
    me = [sys.executable, __file__]
    common = ["--gib", str(args.gib), "--requests", str(args.requests),
              "--conns", str(args.conns)]
    backend = proxy = None
    try:
        backend = subprocess.Popen(topo.backend + me + ["--role", "backend", "--host",
                                                        topo.backend_ip],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert backend.stdout is not None
        sink_port, echo_port = map(int, backend.stdout.readline().split())
        proxy = subprocess.Popen(
            topo.node + me + ["--role", "proxy", "--host", topo.backend_ip, "--ports",
                              str(sink_port), str(echo_port), "--prefix", topo.cluster_prefix]
            + (["--hooks"] if topo.hooks else []) + (["--copy"] if args.copy else []),
            stdout=subprocess.PIPE, text=True)
        assert proxy.stdout is not None
        ready, baseline_kb = proxy.stdout.readline().split()
        assert ready == "ready"
        time.sleep(0.5)
        idle_rss = status_kb(proxy.pid, "VmRSS") / 1024
        sink_svc, echo_svc = f"{topo.cluster_prefix}.10", f"{topo.cluster_prefix}.11"

        def run(what: str, host: str, port: int) -> object:
            out = subprocess.run(topo.client + me + ["--role", "measure", "--what", what,
                                                     "--host", host, "--port", str(port)]
                                 + common, check=True, capture_output=True, text=True).stdout
            return json.loads(out)

        mode = "copy (recv/send)" if args.copy else "zero-copy (splice)"
        print(f"service proxy benchmark: {topo.name}; relay {mode}; {os.cpu_count()} CPUs; "
              f"load average {os.getloadavg()[0]:.2f}; {SERVICES} services")

        direct, proxied, cpu = [], [], []
        for _ in range(args.rounds):  # interleaved, so that load changes hit both alike
            direct.append(run("stream", topo.backend_ip, sink_port))
            before = cpu_seconds(proxy.pid)
            proxied.append(run("stream", sink_svc, PORT))
            after = cpu_seconds(proxy.pid)
            cpu.append(((after[0] - before[0]) / args.gib, (after[1] - before[1]) / args.gib))
        d, p = max(direct), max(proxied)
        print(f"throughput, {args.gib:g} GiB on one connection (best of {args.rounds}):")
        print(f"  direct     {d:7.0f} MB/s   (all: {', '.join(f'{x:.0f}' for x in direct)})")
        print(f"  ClusterIP  {p:7.0f} MB/s   (all: {', '.join(f'{x:.0f}' for x in proxied)})"
              f"  = {100 * p / d:.0f}% of direct")
        user = min(c[0] for c in cpu)
        system = min(c[1] for c in cpu)
        print(f"  proxy CPU per GiB relayed: {user + system:.2f} s "
              f"(user {user:.2f} s, kernel {system:.2f} s)")

        ld = run("latency", topo.backend_ip, echo_port)
        lp = run("latency", echo_svc, PORT)
        assert isinstance(ld, list) and isinstance(lp, list)
        print_latency(ld, lp, args.requests)

        print(f"{args.conns} concurrent connections, all open at once, one round trip each:")
        for name, host, port in (("direct", topo.backend_ip, echo_port),
                                 ("ClusterIP", echo_svc, PORT)):
            ok, errors, elapsed = run("hold", host, port)  # type: ignore[misc]
            print(f"  {name:10} {ok} ok, {errors} errors, {elapsed:.2f} s")

        print(f"proxy process memory ({SERVICES} services): RSS idle {idle_rss:.1f} MiB, "
              f"after the runs {status_kb(proxy.pid, 'VmRSS') / 1024:.1f} MiB, "
              f"peak {status_kb(proxy.pid, 'VmHWM') / 1024:.1f} MiB; of which the interpreter "
              f"with asyncio, before importing the proxy, {int(baseline_kb) / 1024:.1f} MiB")
    finally:
        if proxy is not None:
            proxy.send_signal(signal.SIGTERM)
            proxy.wait(timeout=10)
        if backend is not None:
            assert backend.stdin is not None
            backend.stdin.close()
            backend.wait(timeout=10)
        topo.close()


if __name__ == "__main__":
    main()
