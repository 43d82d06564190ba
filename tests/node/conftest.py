"""Fixtures for the node's runtime on a real Podman.

`podman_node` (one per test module): a `podman system service` started by PodmanService
under a temporary folder with its own storage, tmp dir, network (own name, bridge and
subnet: netavark's IPAM is machine-wide), cgroup parent, and the busybox test images
loaded. Its teardown removes everything (pods, containers, network, the service, leftover
conmon/cleanup processes, overlay and shm mounts, cgroups, files) and FAILS if anything is
left. `teardown_node` and `leftovers` are usable on their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import random
import shlex
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from bramble.node.runtime.podman import PodmanRuntime, PodmanService, bridge_name
from tests.images import BUSYBOX_IMAGE, build_busybox_image

ENTRY_IMAGE = "localhost/busybox-entry:test"  # ENTRYPOINT ["echo", "entry"], CMD ["cmd"]


@dataclass
class PodmanNode:
    service: PodmanService
    runtime: PodmanRuntime
    data_dir: Path
    network: str
    subnet: str
    cgroup_parent: str
    image: str = BUSYBOX_IMAGE
    entry_image: str = ENTRY_IMAGE


def _routes() -> list[ipaddress.IPv4Network]:
    nets = []
    with open("/proc/net/route") as f:
        next(f)
        for line in f:
            fields = line.split()
            dest = ipaddress.IPv4Address(int(fields[1], 16).to_bytes(4, "little"))
            mask = ipaddress.IPv4Address(int(fields[7], 16).to_bytes(4, "little"))
            nets.append(ipaddress.IPv4Network(f"{dest}/{mask}", strict=False))
    return nets


def free_subnet(second_octets: range = range(200, 251)) -> str:
    """A 10.X.Y.0/24 (X from `second_octets`) that no route of this machine overlaps:
    netavark's IPAM is machine-wide, so every test network needs its own subnet."""
    used = [n for n in _routes() if n.prefixlen > 0]
    for _ in range(200):
        net = ipaddress.IPv4Network(
            f"10.{random.choice(second_octets)}.{random.randint(1, 254)}.0/24")
        if not any(net.overlaps(u) for u in used):
            return str(net)
    raise RuntimeError("no free /24 for a test network")


async def holds_soon(check: Callable[[], bool], what: str, within: float = 10.0) -> None:
    """Poll until `check()` holds (sockets and flows close on their own, a moment later);
    `within` bounds a hang, it is not a speed expectation."""
    try:
        async with asyncio.timeout(within):
            while True:
                if check():
                    return
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"never happened: {what}") from None


def short_dir(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    # A unix socket path must stay under 108 bytes: keep the folder name short.
    return tmp_path_factory.mktemp(name, numbered=True)


def _procs_mentioning(needle: str) -> dict[int, str]:
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if needle in cmdline:
            found[int(entry)] = cmdline.strip()
    return found


def _mounts_under(root: str) -> list[str]:
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point == root or point.startswith(root + "/"):
                points.append(point)
    return points


def _cgroup_dirs(parent: str) -> list[Path]:
    if not parent:
        return []
    base = Path("/sys/fs/cgroup")
    candidates = [base / parent.lstrip("/")]
    candidates += [d / parent.lstrip("/") for d in base.iterdir() if d.is_dir()]
    return [c for c in candidates if c.is_dir()]


def _iptables_lines(subnet: str, network: str = "") -> list[tuple[str, str]]:
    """(table, rule) of every iptables rule for the node's network: naming its subnet, an
    address in it (port forwarding), or the network (netavark's comments)."""
    if not subnet or shutil.which("iptables-save") is None:
        return []
    net = ipaddress.ip_network(subnet)

    def ours(line: str) -> bool:
        if subnet in line or (network and f"name: {network} " in line):
            return True
        for word in line.split():
            with contextlib.suppress(ValueError):
                if ipaddress.ip_address(word.split("/")[0].rsplit(":", 1)[0]) in net:
                    return True
        return False

    found = []
    for table in ("nat", "filter"):
        text = subprocess.run(["iptables-save", "-t", table], capture_output=True,
                              text=True, check=False).stdout
        found += [(table, line) for line in text.splitlines()
                  if line.startswith("-A ") and ours(line)]
    return found


def _netns_in_subnet(subnet: str) -> list[str]:
    """Podman's container network namespaces (/run/netns/netns-*) with an address in the
    subnet: they outlive their processes when a pod is never removed through Podman."""
    if not subnet or not os.path.isdir("/run/netns"):
        return []
    net = ipaddress.ip_network(subnet)
    found = []
    for name in os.listdir("/run/netns"):
        if not name.startswith("netns-"):
            continue
        text = subprocess.run(["ip", "-n", name, "-4", "-o", "addr"], capture_output=True,
                              text=True, check=False).stdout
        addrs = [w.split("/")[0] for line in text.splitlines() for w in line.split()
                 if "/" in w and w[0].isdigit()]
        if any(ipaddress.ip_address(a) in net for a in addrs):
            found.append(name)
    return found


def leftovers(data_dir: Path, cgroup_parent: str = "", network: str = "",
              subnet: str = "") -> list[str]:
    """Everything a node left behind on the machine (empty when clean)."""
    bridge = bridge_name(network) if network else ""
    found = [f"process {pid}: {cmd}" for pid, cmd in _procs_mentioning(str(data_dir)).items()]
    found += [f"mount {m}" for m in _mounts_under(str(data_dir))]
    found += [f"cgroup {c}" for c in _cgroup_dirs(cgroup_parent)]
    if bridge and Path(f"/sys/class/net/{bridge}").exists():
        found.append(f"bridge {bridge}")
    found += [f"iptables -t {table} {rule}"
              for table, rule in _iptables_lines(subnet, network)]
    found += [f"netns {name}" for name in _netns_in_subnet(subnet)]
    if data_dir.exists():
        found.append(f"folder {data_dir}")
    if network:
        found += [f"thread {t.name}" for t in threading.enumerate()
                  if t.name.startswith("podman-") and network in t.name and t.is_alive()]
    return found


def _cgroup_pids(parent: str) -> set[int]:
    pids: set[int] = set()
    for top in _cgroup_dirs(parent):
        for folder, _dirs, files in os.walk(top):
            if "cgroup.procs" in files:
                with contextlib.suppress(OSError):
                    pids.update(int(p) for p in Path(folder, "cgroup.procs").read_text().split())
    return pids


def force_cleanup(data_dir: Path, cgroup_parent: str, network: str = "",
                   subnet: str = "") -> None:
    """What Podman did not clean up (after a failure): by PID (processes naming the data dir,
    processes in our cgroups), by mount point, by cgroup dir, bridge, iptables rule."""
    def ours() -> set[int]:
        return set(_procs_mentioning(str(data_dir))) | _cgroup_pids(cgroup_parent)

    for pid in ours():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while ours() and time.monotonic() < deadline:
        time.sleep(0.05)
    for point in sorted(_mounts_under(str(data_dir)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)
    for top in _cgroup_dirs(cgroup_parent):
        for attempt in range(50):
            try:
                for folder, _dirs, _files in os.walk(top, topdown=False):
                    os.rmdir(folder)
                break
            except FileNotFoundError:
                break
            except OSError:  # EBUSY while the last processes of the cgroup exit
                time.sleep(0.1 if attempt else 0.02)
    for name in _netns_in_subnet(subnet):
        subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True)
    if network and Path(f"/sys/class/net/{bridge_name(network)}").exists():
        subprocess.run(["ip", "link", "del", bridge_name(network)], check=False,
                       capture_output=True)
    chains = set()
    for table, rule in _iptables_lines(subnet, network):
        words = shlex.split(rule)  # iptables-save quotes comments
        target = words[words.index("-j") + 1] if "-j" in words else ""
        if target.startswith("NETAVARK-") and not target.startswith("NETAVARK-HOSTPORT"):
            chains.add((table, target))  # the network's own chains (masquerade, DNAT)
        subprocess.run(["iptables", "-t", table, "-D", *words[1:]], check=False,
                       capture_output=True)
    for table, chain in chains:
        subprocess.run(["iptables", "-t", table, "-F", chain], check=False, capture_output=True)
        subprocess.run(["iptables", "-t", table, "-X", chain], check=False, capture_output=True)
    shutil.rmtree(data_dir, ignore_errors=True)


async def teardown_node(service: PodmanService, runtime: PodmanRuntime | None,
                        data_dir: Path, cgroup_parent: str) -> list[str]:
    """Remove everything of one node; returns what is left (should be nothing)."""
    errors: list[str] = []
    if runtime is not None:
        try:
            await runtime.purge()
        except Exception as err:  # reported, and the rest of the teardown still runs
            errors.append(f"purge: {err!r}")
        await runtime.close()
    await service.close()
    network = runtime.network_name if runtime is not None else ""
    subnet = runtime.subnet if runtime is not None else ""
    await asyncio.to_thread(force_cleanup, data_dir, cgroup_parent, network, subnet)
    return errors + leftovers(data_dir, cgroup_parent, network, subnet)


@contextlib.asynccontextmanager
async def started_node(data_dir: Path, *, load_images: bool = True,
                       ) -> AsyncIterator[PodmanNode]:
    tag = uuid.uuid4().hex[:8]
    cgroup_parent = f"/bramble-test-{tag}"
    service = PodmanService(data_dir / "node")
    runtime = PodmanRuntime(service.socket_path, f"bt-{tag}", free_subnet(),
                            cgroup_parent=cgroup_parent, oom_flag_dir=service.oom_flag_dir)
    node = PodmanNode(service=service, runtime=runtime, data_dir=data_dir / "node",
                      network=runtime.network_name, subnet=runtime.subnet,
                      cgroup_parent=cgroup_parent)
    try:
        await service.start()
        await runtime.ensure_network()
        if load_images:
            images = data_dir / "images"
            for path in await asyncio.to_thread(_build_images, images):
                await runtime.load_image(path)
        yield node
    finally:
        # node.service: a test may have replaced the service (a takeover)
        left = await teardown_node(node.service, runtime, data_dir / "node", cgroup_parent)
        shutil.rmtree(data_dir, ignore_errors=True)
        assert not left, f"the node left things behind: {left}"


def _build_images(dest: Path) -> list[Path]:
    return [build_busybox_image(dest),
            build_busybox_image(dest, ENTRY_IMAGE, entrypoint=("echo", "entry"), cmd=("cmd",))]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def podman_node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[PodmanNode]:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    async with started_node(short_dir(tmp_path_factory, "pm")) as node:
        yield node
