"""`kubectl logs`, `exec`, `port-forward` and `bramble push` end to end: the pinned real
kubectl (or the bramble CLI) -> the in-process master (master/api/proxy.py) -> an in-process
node agent's HTTPS server (node/server.py) -> real Podman. Each test gets its own master and node (own Podman service, storage, network
and subnet); the teardown removes every pod, container, process, mount and file and fails
if anything is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import socket
import stat
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bramble.client import Client
from bramble.kubeconfig import load as load_kubeconfig
from bramble.node.agent import NodeConfig, RunningNode, serve
from bramble.node.join import join
from bramble.node.runtime.podman import PodmanRuntime, PodmanService
from tests.conftest import MasterHandle, free_port
from tests.images import BUSYBOX_IMAGE, build_busybox_image
from tests.node.conftest import free_subnet, teardown_node

KUBECTL = str(Path(sys.executable).parent / "kubectl")
PODS = "/api/v1/namespaces/default/pods"
TIMEOUT = 60  # a bound against hangs, not a speed expectation

pytestmark = pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed")


@dataclass
class Cluster:
    master: MasterHandle
    node: RunningNode
    config: NodeConfig
    client: Client  # admin
    cache: Path

    async def kubectl(self, *args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
        proc = await self.spawn(*args, stdin=stdin is not None)
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin), TIMEOUT)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        return proc.returncode or 0, out.decode(), err.decode()

    async def bramble(self, command: str, *args: str,
                      stdin: bytes | None = None) -> tuple[int, str, str]:
        """The bramble CLI as a user runs it, with the admin kubeconfig."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bramble", command, "--kubeconfig",
            str(self.master.kubeconfig), *args,
            stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(stdin), TIMEOUT)
        return proc.returncode or 0, out.decode(), err.decode()

    async def spawn(self, *args: str, stdin: bool = False) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            KUBECTL, "--kubeconfig", str(self.master.kubeconfig), "--cache-dir",
            str(self.cache), *args, stdin=asyncio.subprocess.PIPE if stdin else
            asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)

    async def run_pod(self, name: str, script: str, *, restart: str = "Never",
                      volumes: bool = False) -> None:
        container: dict[str, Any] = {"name": "c", "image": BUSYBOX_IMAGE,
                                     "imagePullPolicy": "Never",
                                     "command": ["sh", "-c", script]}
        spec: dict[str, Any] = {"nodeName": self.node.name, "restartPolicy": restart,
                                "terminationGracePeriodSeconds": 0, "containers": [container]}
        if volumes:
            spec["volumes"] = [{"name": "data", "emptyDir": {}}]
            container["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
        await self.client.request("POST", PODS, json={
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})

    async def wait_pod(self, name: str, done: Callable[[dict[str, Any]], bool]) -> dict:
        """The pod once `done(pod)` holds (from a watch)."""
        async def watch() -> dict:
            stream = self.client.watch(PODS, {"fieldSelector": f"metadata.name={name}"})
            async with contextlib.aclosing(stream):
                async for _kind, pod in stream:
                    if done(pod):
                        return pod
            raise AssertionError(f"the watch of pod {name} ended")
        return await asyncio.wait_for(watch(), TIMEOUT)


def running(restarts: int = 0) -> Callable[[dict[str, Any]], bool]:
    def check(pod: dict[str, Any]) -> bool:
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        return bool(statuses) and "running" in (statuses[0].get("state") or {}) and \
            statuses[0].get("restartCount", 0) >= restarts
    return check


@pytest.fixture
async def cluster(master: MasterHandle, tmp_path_factory: pytest.TempPathFactory,
                  ) -> AsyncIterator[Cluster]:
    base = tmp_path_factory.mktemp("le")  # short: the Podman socket path has a size limit
    tag = uuid.uuid4().hex[:6]
    config = NodeConfig(data_dir=base / "node", master=master.url,
                        token=(master.data_dir / "join-token").read_text().strip(),
                        name=f"pi-{tag}", network=f"ble-{tag}", subnet=free_subnet(range(98, 99)),
                        server_bind="127.0.0.1", server_port=free_port(),
                        pod_routes=False, service_proxy=False)
    shutdown = asyncio.Event()
    started: asyncio.Future[RunningNode] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(config, shutdown, started), name="test-node")
    try:
        done, _ = await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()
        node = started.result()
        await asyncio.wait_for(node.server.registered.wait(), TIMEOUT)
        async with Client.from_kubeconfig(str(master.kubeconfig)) as client:
            cluster = Cluster(master, node, config, client, base / "kubectl-cache")
            # The test image reaches the node as a user's would: `bramble push`.
            code, out, err = await cluster.bramble(
                "push", str(build_busybox_image(base / "images")))
            assert (code, out) == (0, f"{node.name}: loaded {BUSYBOX_IMAGE}\n"), err
            yield cluster
    finally:
        shutdown.set()
        await asyncio.wait_for(task, 30)
        # The agent leaves pods running by design: remove them through a service of our own.
        service = PodmanService(config.data_dir / "podman")
        await service.start()
        runtime = PodmanRuntime(service.socket_path, config.network, config.subnet)
        left = await teardown_node(service, runtime, config.data_dir, "")
        shutil.rmtree(base, ignore_errors=True)
        assert not left, f"the node left things behind: {left}"


async def eventually_logs(c: Cluster, name: str, expected: str) -> str:
    """`kubectl logs` once `expected` is in it (Podman writes the log file asynchronously)."""
    async def poll() -> str:
        while True:
            code, out, err = await c.kubectl("logs", name)
            assert code == 0, err
            if expected in out:
                return out
            await asyncio.sleep(0.1)
    return await asyncio.wait_for(poll(), TIMEOUT)


async def test_logs_tail_timestamps_since(cluster: Cluster) -> None:
    c = cluster
    await c.run_pod("talk", "for i in 1 2 3 4 5; do echo line-$i; done; exec sleep 3600")
    await c.wait_pod("talk", running())
    out = await eventually_logs(c, "talk", "line-5")
    assert out.splitlines() == [f"line-{i}" for i in range(1, 6)]

    code, out, err = await c.kubectl("logs", "talk", "--tail=2")
    assert (code, out.splitlines()) == (0, ["line-4", "line-5"]), err
    code, out, err = await c.kubectl("logs", "talk", "-c", "c", "--tail=1", "--timestamps")
    assert code == 0, err
    stamp, _, line = out.strip().partition(" ")
    assert line == "line-5" and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[.\d]*(Z|[+-].*)",
                                              stamp), out
    code, out, err = await c.kubectl("logs", "talk", "--since=1h")
    assert (code, len(out.splitlines())) == (0, 5), err

    code, _, err = await c.kubectl("logs", "talk", "-c", "nope")
    assert code != 0 and "container nope is not valid for pod talk" in err
    code, _, err = await c.kubectl("logs", "talk", "--previous")
    assert code != 0 and 'previous terminated container "c" in pod "talk" not found' in err


async def test_logs_follow_sees_new_lines_and_ends_with_the_container(cluster: Cluster,
                                                                      ) -> None:
    c = cluster
    # restartPolicy Always: the agent removes a completed (Never) pod's containers at once,
    # which can cut Podman's log stream before its last line; a restart keeps the exited
    # container (as the previous generation) while the next one starts.
    await c.run_pod("follow", "echo one; while [ ! -e /tmp/go ]; do sleep 0.1; done; "
                              "echo two", restart="Always")
    await c.wait_pod("follow", running())
    proc = await c.spawn("logs", "-f", "follow")
    try:
        assert proc.stdout is not None
        first = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
        assert first == b"one\n"
        code, _, err = await c.kubectl("exec", "follow", "--", "touch", "/tmp/go")
        assert code == 0, err
        second = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
        assert second == b"two\n"
        # The container exits after "two": the stream, and kubectl, end by themselves.
        assert await asyncio.wait_for(proc.wait(), TIMEOUT) == 0
        assert await proc.stdout.read() == b""
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_logs_previous_after_a_restart(cluster: Cluster) -> None:
    c = cluster
    # The emptyDir outlives the container: each generation prints its own number.
    await c.run_pod("crash", "n=$(cat /data/n 2>/dev/null || echo 0); n=$((n+1)); "
                             "echo $n > /data/n; echo gen-$n; "
                             "if [ $n -lt 2 ]; then exit 1; fi; exec sleep 3600",
                    restart="Always", volumes=True)
    await c.wait_pod("crash", running(restarts=1))
    out = await eventually_logs(c, "crash", "gen-2")
    assert out == "gen-2\n"
    code, out, err = await c.kubectl("logs", "crash", "--previous")
    assert (code, out) == (0, "gen-1\n"), err


async def test_exec_output_exit_codes_and_stdin(cluster: Cluster) -> None:
    c = cluster
    await c.run_pod("shell", "exec sleep 3600")
    await c.wait_pod("shell", running())

    assert await c.kubectl("exec", "shell", "--", "echo", "hi") == (0, "hi\n", "")
    code, out, err = await c.kubectl("exec", "shell", "--", "sh", "-c", "exit 3")
    assert code == 3, (out, err)
    code, out, err = await c.kubectl("exec", "shell", "--", "sh", "-c", "echo oops >&2")
    assert (code, out, err) == (0, "", "oops\n")
    data = b"piped\n" + b"x" * 100_000 + b"\nend\n"
    code, out, err = await c.kubectl("exec", "-i", "shell", "--", "cat", stdin=data)
    assert (code, out.encode()) == (0, data), err
    code, out, err = await c.kubectl("exec", "-i", "shell", "--", "sh", "-c",
                                     "wc -l; exit 4", stdin=b"a\nb\n")
    assert (code, out.strip()) == (4, "2"), err

    code, _, err = await c.kubectl("exec", "shell", "-c", "nope", "--", "true")
    assert code != 0 and "nope" in err

    # v4.channel.k8s.io too (frames relayed unchanged); kubectl's SPDY fallback gets a Status.
    url = f"{c.master.url}{PODS}/shell/exec?command=cat&stdin=true&stdout=true"
    ctx, headers = c.master.ssl_context(), c.master.headers()
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url, protocols=("v4.channel.k8s.io",), ssl=ctx,
                                   headers=headers) as ws:
            assert ws.protocol == "v4.channel.k8s.io"
            await ws.send_bytes(b"\x00abc")
            await ws.send_bytes(b"\xff\x00")  # close stdin
            frames = [msg.data async for msg in ws]
        assert frames == [b"\x01abc", b'\x03{"metadata":{},"status":"Success"}']
        async with http.post(url, ssl=ctx, headers=headers | {
                "Connection": "Upgrade", "Upgrade": "SPDY/3.1"}) as resp:
            assert resp.status == 400
            assert "SPDY upgrades are not supported" in (await resp.json())["message"]


async def forwarded_port(proc: asyncio.subprocess.Process) -> int:
    """The local port from kubectl's "Forwarding from 127.0.0.1:PORT -> N" line."""
    assert proc.stdout is not None
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)).decode()
        assert line, "kubectl port-forward ended before forwarding"
        if m := re.match(r"Forwarding from 127\.0\.0\.1:(\d+) ->", line):
            return int(m.group(1))


def exchange(port: int, send: bytes, *, shut: bool = True) -> bytes:
    """Send `send` to 127.0.0.1:port, half-close, and read until the far side closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(send)
        if shut:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


async def test_port_forward_reaches_the_pods_localhost(cluster: Cluster) -> None:
    c = cluster
    # httpd listens on the pod's 127.0.0.1 only: reachable through port-forward (which
    # enters the pod's network namespace, as the kubelet does), not through the pod IP.
    # nc's stdin stays open (a sleep): like the kubelet, the agent ends a forwarded
    # connection when the pod closes its side, so the receiver must not close first.
    await c.run_pod("web", "mkdir -p /www && echo hello > /www/index.html && "
                           "dd if=/dev/urandom of=/www/big bs=1024 count=1024 2>/dev/null && "
                           "sha256sum /www/big > /www/big.sum; "
                           "(sleep 3600 | nc -l -p 7000 | sha256sum > /tmp/up.sum) & "
                           "exec httpd -f -p 127.0.0.1:8080 -h /www")
    await c.wait_pod("web", running())
    proc = await c.spawn("port-forward", "pod/web", ":8080", ":7000")
    try:
        web_port = await forwarded_port(proc)
        up_port = await forwarded_port(proc)

        async def get(path: str) -> bytes:
            request = f"GET {path} HTTP/1.0\r\nHost: pod\r\n\r\n".encode()
            while True:  # httpd may still be starting
                reply = await asyncio.to_thread(exchange, web_port, request, shut=False)
                if reply:
                    head, _, body = reply.partition(b"\r\n\r\n")
                    assert head.split(b"\r\n")[0].endswith(b" 200 OK"), head
                    return body
                await asyncio.sleep(0.2)

        assert await asyncio.wait_for(get("/index.html"), TIMEOUT) == b"hello\n"
        # Several connections at once over the one session, 1 MiB each way.
        bodies = await asyncio.gather(*(get("/big") for _ in range(3)))
        digest = (await get("/big.sum")).split()[0].decode()
        assert all(hashlib.sha256(b).hexdigest() == digest and len(b) == 1 << 20
                   for b in bodies)
        upload = os.urandom(1 << 20)
        assert await asyncio.to_thread(exchange, up_port, upload) == b""
        async def uploaded() -> str:
            while True:  # sha256sum writes once nc has seen the end of the upload
                code, out, err = await c.kubectl("exec", "web", "--", "cat", "/tmp/up.sum")
                if code == 0 and out.strip():
                    return out.split()[0]
                await asyncio.sleep(0.2)
        assert await asyncio.wait_for(uploaded(), TIMEOUT) == hashlib.sha256(upload).hexdigest()
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.communicate(), TIMEOUT)

    # Nothing listens on port 9 in the pod: the connection ends and kubectl says why (and,
    # as kubectl does since 1.30 on a forwarding error, stops).
    proc = await c.spawn("port-forward", "pod/web", ":9")
    try:
        assert await asyncio.to_thread(exchange, await forwarded_port(proc), b"x") == b""
        _, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert "error forwarding port 9 to pod web" in err.decode()

    code, _, err = await c.kubectl("port-forward", "pod/missing", ":8080")
    assert code != 0 and 'pods "missing" not found' in err


async def test_bramble_logs_and_exec(cluster: Cluster) -> None:
    c = cluster
    await c.run_pod("cli", "echo first; echo second; exec sleep 3600")
    await c.wait_pod("cli", running())
    await eventually_logs(c, "cli", "second")
    assert await c.bramble("logs", "cli") == (0, "first\nsecond\n", "")
    assert await c.bramble("logs", "cli", "--tail", "1", "-c", "c") == (0, "second\n", "")
    assert (await c.bramble("logs", "cli", "--since", "1h"))[:2] == (0, "first\nsecond\n")
    code, _, err = await c.bramble("logs", "cli", "--since", "soon")
    assert code == 1 and "invalid duration 'soon'" in err
    code, _, err = await c.bramble("logs", "nope")
    assert code == 1 and 'pods "nope" not found' in err

    result = await c.bramble("exec", "cli", "--", "echo", "hi")
    assert result == (0, "hi\n", ""), result[2]
    code, out, err = await c.bramble("exec", "cli", "--", "sh", "-c", "echo out; echo err >&2; "
                                                                      "exit 5")
    assert (code, out, err) == (5, "out\n", "err\n")
    code, out, _ = await c.bramble("exec", "cli", "-i", "--", "wc", "-c", stdin=b"x" * 70_000)
    assert (code, out.strip()) == (0, "70000")
    code, _, err = await c.bramble("exec", "cli", "--", "/no/such/command")
    assert code != 0, err
    code, _, err = await c.bramble("exec", "nope", "--", "true")
    assert code == 1 and 'pods "nope" not found' in err


async def test_push_reports_bad_archives_and_unknown_nodes(cluster: Cluster,
                                                            tmp_path: Path) -> None:
    c = cluster
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not an image archive\n" * 100)
    code, out, err = await c.bramble("push", str(junk))
    assert code == 1 and out == ""
    assert err.startswith(f"{c.node.name}: error: loading the image failed: the archive is "
                          f"not an image archive"), err
    code, _, err = await c.bramble("push", str(junk), "--node", "nope")
    assert code == 1 and 'node "nope" not found' in err
    code, _, err = await c.bramble("push", str(tmp_path / "missing.tar"))
    assert code == 1 and "missing.tar: no such file" in err
    # Nothing is left spooled on the node.
    assert list((c.config.data_dir / "images-incoming").iterdir()) == []


async def test_only_the_master_reaches_the_node(cluster: Cluster, tmp_path: Path) -> None:
    c = cluster
    await c.run_pod("quiet", "echo secret; exec sleep 3600")
    await c.wait_pod("quiet", running())
    await eventually_logs(c, "quiet", "secret")
    ctx = c.master.ssl_context()
    # Another node's credential, as a joining node gets it.
    other = load_kubeconfig(await join(c.master.url, c.config.token, "other-pi",
                                       tmp_path / "other-pi")).token
    async with aiohttp.ClientSession() as http:
        own = load_kubeconfig(c.config.data_dir / "node.kubeconfig").token
        admin = c.master.token

        for token in (other, own):  # nodes may read no pod's logs and exec in no pod
            for sub in ("log", "exec?command=true&stdout=true"):
                async with http.get(f"{c.master.url}{PODS}/quiet/{sub}", ssl=ctx,
                                    headers={"Authorization": f"Bearer {token}"}) as resp:
                    assert resp.status == 403, await resp.text()
        async with http.post(f"{c.master.url}/bramble/v1/nodes/{c.node.name}/endpoint",
                             ssl=ctx, headers={"Authorization": f"Bearer {other}"},
                             json=c.node.server.registration() | {"port": 1}) as resp:
            assert resp.status == 403  # no node may redirect another node's traffic
        async with http.post(f"{c.master.url}/bramble/v1/images", ssl=ctx, data=b"x",
                             headers={"Authorization": f"Bearer {own}"}) as resp:
            assert resp.status == 403  # nor push images to the others

        # The node's own server: only its kubelet token (which only the master holds).
        pinned = aiohttp.Fingerprint(bytes.fromhex(c.node.server.identity.cert_sha256))
        url = f"https://127.0.0.1:{c.node.server.port}/containerLogs/default/quiet/c"
        for headers in ({}, {"Authorization": f"Bearer {other}"},
                        {"Authorization": f"Bearer {admin}"},
                        {"Authorization": "Basic Zm9vOmJhcg=="}):
            async with http.get(url, ssl=pinned, headers=headers) as resp:
                assert resp.status == 401
                assert (await resp.json())["reason"] == "Unauthorized"
        async with http.get(url, ssl=pinned, headers={
                "Authorization": f"Bearer {c.node.server.identity.token}"}) as resp:
            assert (resp.status, await resp.text()) == (200, "secret\n")

    # The secrets are private on both sides.
    for path in (c.master.data_dir / "node-endpoints.json",
                 c.config.data_dir / "server" / "token", c.config.data_dir / "server" / "server.key"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
