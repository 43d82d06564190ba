"""PodmanRuntime against a real Podman service (one per module, see conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import signal
import socket
import threading
import uuid
from pathlib import Path

import pytest

from bramble.node.runtime.podman import (
    STDERR,
    ContainerRuntimeError,
    ImagePullError,
    NotFound,
    PodmanRuntime,
    PodmanService,
    ServiceError,
    ping,
)
from bramble.node.runtime.types import (
    LABEL_CONTAINER_NAME,
    LABEL_POD_NAME,
    LABEL_POD_UID,
    ContainerSpec,
    Mount,
    ObservedContainer,
    PortMapping,
    SandboxSpec,
)
from tests.node.conftest import (
    PodmanNode,
    force_cleanup,
    free_subnet,
    leftovers,
    started_node,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

WAIT = 20  # seconds: a guard against hangs, not a speed assertion


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def new_pod(node: PodmanNode, *, ports: tuple[PortMapping, ...] = ()) -> tuple[str, str]:
    uid = str(uuid.uuid4())
    name = f"default_p-{uid[:8]}"
    sandbox = await node.runtime.create_sandbox(SandboxSpec(
        name=name, hostname=f"p-{uid[:8]}", ports=ports,
        labels={LABEL_POD_UID: uid, LABEL_POD_NAME: f"p-{uid[:8]}"}))
    return uid, sandbox


async def run(node: PodmanNode, uid: str, sandbox: str, name: str, *command: str,
              image: str = "", start: bool = True, **spec: object) -> str:
    cid = await node.runtime.create_container(sandbox, ContainerSpec(
        name=f"{sandbox[:12]}-{name}", image=image or node.image,
        labels={LABEL_POD_UID: uid, LABEL_CONTAINER_NAME: name},
        command=tuple(command), **spec))  # type: ignore[arg-type]
    if start:
        await node.runtime.start(cid)
    return cid


async def observed(node: PodmanNode, uid: str, name: str) -> ObservedContainer:
    pods = await node.runtime.observe({LABEL_POD_UID: uid})
    matches = [c for c in pods[uid].containers if c.name == name]
    assert matches, f"container {name} not observed in {pods[uid]}"
    return matches[-1]


async def until_exited(node: PodmanNode, uid: str, name: str) -> ObservedContainer:
    async with asyncio.timeout(WAIT):
        while True:
            c = await observed(node, uid, name)
            if c.state == "exited":
                return c
            await asyncio.sleep(0.05)


async def output(node: PodmanNode, cid: str) -> str:
    return b"".join([chunk async for chunk in node.runtime.logs(cid)]).decode()


async def test_version_and_info_are_cached(podman_node: PodmanNode) -> None:
    version = await podman_node.runtime.version()
    assert version and version[0].isdigit()
    assert await podman_node.runtime.version() is version
    info = await podman_node.runtime.info()
    assert str(podman_node.data_dir) in info["store"]["graphRoot"]
    assert await podman_node.runtime.info() is info


async def test_attach_to_a_running_service_and_network(podman_node: PodmanNode) -> None:
    attached = PodmanService(socket_path=podman_node.service.socket_path)
    async with attached:
        assert not attached.owned and attached.pid is None
    await attached.close()  # idempotent, and it never stops a service it did not start
    assert await ping(podman_node.service.socket_path)
    assert await podman_node.runtime.ensure_network() == podman_node.network  # idempotent
    # Another subnet for a network pods use: refused, the pods keep their network.
    uid, sandbox = await new_pod(podman_node)
    try:
        async with PodmanRuntime(podman_node.service.socket_path, podman_node.network,
                                 "10.254.254.0/24") as other:
            with pytest.raises(ContainerRuntimeError, match="is in use"):
                await other.ensure_network()
    finally:
        await podman_node.runtime.remove_sandbox(sandbox)


async def test_a_network_nobody_uses_is_made_again_for_a_new_subnet(
        podman_node: PodmanNode) -> None:
    # The node joined another cluster, which gave it another podCIDR.
    first, second = free_subnet(), free_subnet(range(96, 97))
    name = f"{podman_node.network}-x"
    async with PodmanRuntime(podman_node.service.socket_path, name, first) as runtime:
        try:
            await runtime.ensure_network()
            assert await runtime.ensure_network(second) == name
            inspected = await asyncio.to_thread(lambda: runtime._api().get(
                f"/networks/{name}/json").json())
            assert [s["subnet"] for s in inspected["subnets"]] == [second]
        finally:
            await runtime.remove_network()


async def test_a_service_that_cannot_start_is_reported(tmp_path: Path) -> None:
    service = PodmanService(tmp_path / "n", podman="false")
    with pytest.raises(ServiceError, match="exited with 1"):
        await service.start()
    await service.close()
    assert service.pid is None


async def test_images_are_loaded_and_a_missing_one_fails_to_pull(podman_node: PodmanNode,
                                                                 tmp_path: Path) -> None:
    runtime = podman_node.runtime
    assert await runtime.image_present(podman_node.image)
    assert (await runtime.image_id(podman_node.image)).startswith("sha256:")
    assert not await runtime.image_present("localhost/bramble-missing:1")
    with pytest.raises(NotFound):
        await runtime.image_id("localhost/bramble-missing:1")
    # No registry here: a pull fails at once with Podman's reason, not after retries.
    for ref in ("bramble-missing:1", "docker.io/library/bramble-missing:1"):
        with pytest.raises(ImagePullError, match="bramble-missing"):
            await runtime.pull(ref)
    # A plain rootfs tar is imported under the name it is given.
    from tests.images import rootfs_tar
    rootfs = tmp_path / "rootfs.tar"
    rootfs.write_bytes(rootfs_tar(("sh", "echo")))
    assert await runtime.load_image(rootfs, "localhost/rootfs:test") == ["localhost/rootfs:test"]
    assert await runtime.image_present("localhost/rootfs:test")
    with pytest.raises(ContainerRuntimeError, match="reference"):
        await runtime.load_image(rootfs)


async def test_running_container_is_observed_with_its_sandbox(podman_node: PodmanNode) -> None:
    uid, sandbox = await new_pod(podman_node)
    cid = await run(podman_node, uid, sandbox, "main", "sleep", "3600")
    pods = await podman_node.runtime.observe({LABEL_POD_UID: uid})
    pod = pods[uid]
    assert pod.sandbox is not None and pod.sandbox.id == sandbox
    assert pod.sandbox.state == "running"
    assert ipaddress.ip_address(pod.sandbox.ip) in ipaddress.ip_network(podman_node.subnet)
    assert await podman_node.runtime.sandbox_ip(sandbox) == pod.sandbox.ip
    (main,) = pod.containers
    assert (main.id, main.name, main.state) == (cid, "main", "running")
    assert main.labels[LABEL_POD_UID] == uid and main.labels[LABEL_CONTAINER_NAME] == "main"
    assert main.started_at.endswith("Z") and main.finished_at == "" and main.exit_code is None
    assert main.image == podman_node.image and main.image_id.startswith("sha256:")
    # The unfiltered view holds it too; the infra container is not a pod container.
    everything = await podman_node.runtime.observe()
    assert [c.id for c in everything[uid].containers] == [cid]
    await podman_node.runtime.remove_sandbox(sandbox)
    assert uid not in await podman_node.runtime.observe({LABEL_POD_UID: uid})


async def test_exit_code_and_died_event(podman_node: PodmanNode) -> None:
    runtime = podman_node.runtime
    uid, sandbox = await new_pod(podman_node)
    async with runtime.events() as events:  # streaming from now on
        cid = await run(podman_node, uid, sandbox, "fails", "sh", "-c", "exit 3")
        async with asyncio.timeout(WAIT):
            async for event in events:
                if event.container_id == cid and event.action == "died":
                    break
    assert event.pod_uid == uid
    c = await until_exited(podman_node, uid, "fails")
    assert (c.exit_code, c.oom_killed) == (3, False)
    assert c.finished_at.endswith("Z")
    await runtime.remove_sandbox(sandbox)


async def test_memory_limit_oom_kill(podman_node: PodmanNode) -> None:
    uid, sandbox = await new_pod(podman_node)
    # sh itself holds 100 MB in a variable: the kernel kills the container's PID 1.
    await run(podman_node, uid, sandbox, "hog", "sh", "-c",
              "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo ${#x}",
              memory_limit=32 * 1024 * 1024)
    c = await until_exited(podman_node, uid, "hog")
    assert c.exit_code == 137
    assert c.oom_killed


async def test_host_port_is_published(podman_node: PodmanNode) -> None:
    port = free_port()
    uid, sandbox = await new_pod(podman_node, ports=(PortMapping(8080, port),))
    await run(podman_node, uid, sandbox, "web", "sh", "-c",
              "mkdir -p /www && echo hello-bramble > /www/index.html && "
              "exec httpd -f -p 8080 -h /www")
    answer = b""
    async with asyncio.timeout(WAIT):
        while b"hello-bramble" not in answer:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"GET /index.html HTTP/1.0\r\n\r\n")
                answer = await reader.read()
                writer.close()
            except OSError:
                await asyncio.sleep(0.05)
    assert answer.startswith(b"HTTP/1.") and b" 200 " in answer.split(b"\r\n")[0]
    await podman_node.runtime.remove_sandbox(sandbox)


async def test_logs_tail_and_follow(podman_node: PodmanNode) -> None:
    runtime = podman_node.runtime
    uid, sandbox = await new_pod(podman_node)
    cid = await run(podman_node, uid, sandbox, "talker", "sh", "-c",
                    "for i in 1 2 3; do echo out$i; echo err$i >&2; done")
    await until_exited(podman_node, uid, "talker")
    # stdout and stderr are two pipes: each keeps its order, their interleaving varies
    words = (await output(podman_node, cid)).split()
    assert [w for w in words if w.startswith("out")] == ["out1", "out2", "out3"]
    assert [w for w in words if w.startswith("err")] == ["err1", "err2", "err3"]
    tail = b"".join([c async for c in runtime.logs(cid, tail=2)]).decode()
    assert tail.split() == words[-2:]
    stamped = b"".join([c async for c in runtime.logs(cid, tail=1, timestamps=True)]).decode()
    assert stamped.split()[-1] == words[-1] and stamped[:4].isdigit()

    # follow: streams lines as they come, ends when the container ends
    cid = await run(podman_node, uid, sandbox, "ticker", "sh", "-c",
                    "for i in 1 2 3; do echo tick$i; sleep 0.2; done")
    async with asyncio.timeout(WAIT):
        followed = b"".join([c async for c in runtime.logs(cid, follow=True)]).decode()
    assert followed.split() == ["tick1", "tick2", "tick3"]

    # follow of a container that runs on: the consumer stops, the stream thread ends
    cid = await run(podman_node, uid, sandbox, "sleeper", "sh", "-c", "echo ready; sleep 3600")
    async with asyncio.timeout(WAIT):
        async with contextlib.aclosing(runtime.logs(cid, follow=True)) as stream:
            async for chunk in stream:
                assert b"ready" in chunk
                break
    async with asyncio.timeout(WAIT):
        while True:  # the stream's thread ends once the consumer is gone
            if not any("podman-logs" in t.name for t in threading.enumerate()):
                break
            await asyncio.sleep(0.02)
    await runtime.remove_sandbox(sandbox)


async def test_command_args_env_workdir_and_mounts(podman_node: PodmanNode,
                                                   tmp_path: Path) -> None:
    runtime = podman_node.runtime
    uid, sandbox = await new_pod(podman_node)
    # Kubernetes semantics against an image with ENTRYPOINT [echo, entry] and CMD [cmd]:
    await run(podman_node, uid, sandbox, "image-defaults", image=podman_node.entry_image)
    await run(podman_node, uid, sandbox, "args-only", image=podman_node.entry_image,
              args=("a1", "a2"))
    await run(podman_node, uid, sandbox, "command-only", "echo", "own",
              image=podman_node.entry_image)
    await run(podman_node, uid, sandbox, "both", "echo", "own", image=podman_node.entry_image,
              args=("b1",))
    expected = {"image-defaults": "entry cmd", "args-only": "entry a1 a2",
                "command-only": "own", "both": "own b1"}
    for name, line in expected.items():
        c = await until_exited(podman_node, uid, name)
        assert (await output(podman_node, c.id)).strip() == line, name

    volume = tmp_path / "volume"
    (volume / "sub").mkdir(parents=True)
    (volume / "file.txt").write_text("from-host\n")
    (volume / "sub" / "inner.txt").write_text("from-subpath\n")
    script = ("echo FOO=$FOO BAR=$BAR; pwd; cat /data/file.txt /sub/inner.txt; "
              "touch /data/new 2>/dev/null && echo data-writable || echo data-readonly; "
              "touch /rw/new && echo rw-writable; id -u")
    await run(podman_node, uid, sandbox, "shaped", "sh", "-c", script,
              env=(("FOO", "foo value"), ("BAR", "bar")), working_dir="/tmp",
              mounts=(Mount(str(volume), "/data", read_only=True),
                      Mount(str(volume), "/sub", read_only=True, sub_path="sub"),
                      Mount(str(volume), "/rw", sub_path="made-by-kubelet")),
              cpu_quota_millis=500)
    c = await until_exited(podman_node, uid, "shaped")
    lines = (await output(podman_node, c.id)).splitlines()
    assert lines == ["FOO=foo value BAR=bar", "/tmp", "from-host", "from-subpath",
                     "data-readonly", "rw-writable", "0"], lines
    assert c.exit_code == 0
    assert (volume / "made-by-kubelet" / "new").exists()
    body = await runtime.inspect(c.id)
    assert body["HostConfig"]["CpuQuota"] == 50_000 and body["HostConfig"]["CpuPeriod"] == 100_000

    await run(podman_node, uid, sandbox, "nobody", "id", "-u", user="65534")
    await run(podman_node, uid, sandbox, "readonly", "sh", "-c",
              "touch /x 2>/dev/null && echo rw || echo ro", read_only_rootfs=True)
    for name, line in {"nobody": "65534", "readonly": "ro"}.items():
        c = await until_exited(podman_node, uid, name)
        assert (await output(podman_node, c.id)).strip() == line, name
    with pytest.raises(ContainerRuntimeError, match="subPath"):
        await run(podman_node, uid, sandbox, "escape", "true",
                  mounts=(Mount(str(volume), "/x", sub_path="../etc"),))
    await runtime.remove_sandbox(sandbox)


async def test_stop_with_timeout_and_kill(podman_node: PodmanNode) -> None:
    runtime = podman_node.runtime
    uid, sandbox = await new_pod(podman_node)
    # PID 1 ignores SIGTERM: stop escalates to SIGKILL after the grace period.
    stubborn = await run(podman_node, uid, sandbox, "stubborn", "sh", "-c",
                         "trap '' TERM; while true; do sleep 0.1; done")
    polite = await run(podman_node, uid, sandbox, "polite", "sh", "-c",
                       "trap 'exit 0' TERM; while true; do sleep 0.1; done")
    victim = await run(podman_node, uid, sandbox, "victim", "sleep", "3600")
    await asyncio.sleep(0.3)  # the traps are set
    await asyncio.gather(runtime.stop(stubborn, timeout=1), runtime.stop(polite, timeout=10),
                         runtime.kill(victim, signal.SIGKILL))
    assert (await until_exited(podman_node, uid, "stubborn")).exit_code == 137
    assert (await until_exited(podman_node, uid, "polite")).exit_code == 0
    assert (await until_exited(podman_node, uid, "victim")).exit_code == 137
    await runtime.stop(polite, timeout=1)  # stopping a stopped container is fine
    await runtime.remove_container(victim)
    await runtime.remove_container(victim)  # removal is idempotent
    with pytest.raises(NotFound):
        await runtime.start(victim)
    await runtime.remove_sandbox(sandbox)
    await runtime.remove_sandbox(sandbox)


async def test_exec(podman_node: PodmanNode) -> None:
    runtime = podman_node.runtime
    uid, sandbox = await new_pod(podman_node)
    cid = await run(podman_node, uid, sandbox, "box", "sleep", "3600")

    async with await runtime.exec(cid, ["echo", "hi"]) as session:
        assert await session.output() == (b"hi\n", b"")
        assert await session.wait() == 0

    async with await runtime.exec(cid, ["sh", "-c", "echo oops >&2; exit 4"]) as session:
        chunk = await session.read()
        assert chunk == (STDERR, b"oops\n")
        assert await session.wait() == 4

    async with await runtime.exec(cid, ["sh", "-c", "cat; echo done"], stdin=True) as session:
        await session.write(b"typed\n")
        await session.close_stdin()
        assert await session.output() == (b"typed\ndone\n", b"")
        assert await session.wait() == 0

    async with await runtime.exec(cid, ["sh", "-c", "echo tty:$(tty)"], tty=True) as session:
        out, err = await session.output()
        assert out.startswith(b"tty:/dev/pts/") and err == b""
        assert await session.wait() == 0

    with pytest.raises(NotFound):
        await runtime.exec("no-such-container", ["true"])

    stats = await runtime.stats()
    cpu, memory = stats[cid]
    assert cpu >= 0 and memory > 0
    await runtime.remove_sandbox(sandbox)


async def test_service_restart_keeps_containers_and_events(podman_node: PodmanNode) -> None:
    runtime = podman_node.runtime
    uid, sandbox = await new_pod(podman_node)
    survivor = await run(podman_node, uid, sandbox, "survivor", "sleep", "3600")
    async with runtime.events() as events:
        await podman_node.service.restart()
        assert (await observed(podman_node, uid, "survivor")).state == "running"
        # The same event stream reconnects by itself after the restart.
        short = await run(podman_node, uid, sandbox, "short", "true")
        async with asyncio.timeout(WAIT):
            async for event in events:
                if event.container_id == short and event.action == "died":
                    break
    assert (await observed(podman_node, uid, "survivor")).id == survivor
    await runtime.remove_sandbox(sandbox)


async def test_teardown_leaves_nothing_behind(tmp_path_factory: pytest.TempPathFactory) -> None:
    # A second node with a pod, an exec and a running container, torn down by the fixture
    # code: started_node() asserts that no process, mount, cgroup, bridge or file is left.
    async with started_node(tmp_path_factory.mktemp("pn"), load_images=False) as node:
        from tests.images import build_busybox_image
        path = await asyncio.to_thread(build_busybox_image, node.data_dir.parent / "img")
        await node.runtime.load_image(path)
        uid, sandbox = await new_pod(node)
        cid = await run(node, uid, sandbox, "left-running", "sleep", "3600")
        async with await node.runtime.exec(cid, ["true"]) as session:
            assert await session.wait() == 0
        # An agent that died left its service running: the next one takes the store over.
        orphan = node.service.pid
        assert orphan is not None
        successor = PodmanService(node.data_dir)
        await successor.start()
        with pytest.raises(ProcessLookupError):
            os.kill(orphan, 0)
        assert (await observed(node, uid, "left-running")).state == "running"
        await node.service.close()  # its process is gone already: a no-op
        node.service = successor  # torn down (and checked) by the fixture code
        pid = successor.pid
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_forced_cleanup_after_a_crash(tmp_path_factory: pytest.TempPathFactory) -> None:
    # The agent and its service die with a pod running (its infra process, conmon, netns,
    # bridge, port forwarding): the fixture's forced cleanup still leaves nothing behind.
    data_dir = tmp_path_factory.mktemp("pc") / "node"
    tag = uuid.uuid4().hex[:8]
    service = PodmanService(data_dir)
    runtime = PodmanRuntime(service.socket_path, f"bt-{tag}", free_subnet(),
                            cgroup_parent=f"/bramble-test-{tag}")
    try:
        await service.start()
        await runtime.ensure_network()
        await runtime.create_sandbox(SandboxSpec(
            name="crashed", hostname="crashed", labels={LABEL_POD_UID: tag},
            ports=(PortMapping(8080, free_port()),)))
        assert leftovers(data_dir, runtime.cgroup_parent, runtime.network_name, runtime.subnet)
        assert service.pid is not None
        os.kill(service.pid, signal.SIGKILL)
        await runtime.close()
    finally:
        await service.close()
        await asyncio.to_thread(force_cleanup, data_dir, runtime.cgroup_parent,
                                runtime.network_name, runtime.subnet)
    assert leftovers(data_dir, runtime.cgroup_parent, runtime.network_name, runtime.subnet) == []
