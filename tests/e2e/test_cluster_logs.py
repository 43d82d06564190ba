"""Logs across the cluster end to end: `bramble master` and two `bramble node` agents as
processes, real Podman (tests/e2e/cluster_fixtures.py); `bramble logs -l` and the pinned,
real `kubectl logs -l --prefix` merging pods that run on both nodes, following one that
appears while it runs, and resuming - without a line twice or one lost - when a node's
agent restarts under a followed stream."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
from collections import defaultdict
from collections.abc import AsyncIterator

import pytest

from tests.e2e.cluster_fixtures import (  # noqa: F401  (the fixtures: cluster, ns)
    TIMEOUT,
    Cluster,
    Obj,
    cluster_fixture,
    namespace_fixture,
    pods_path,
    wait_for,
)
from tests.e2e.test_kubectl import KUBECTL
from tests.images import BUSYBOX_IMAGE

pytestmark = pytest.mark.asyncio(loop_scope="module")

# Numbered lines, a few a second: gaps and repeats show in the numbers.
COUNTER = 'i=0; while true; do i=$((i+1)); echo "n=$i"; sleep 0.2; done'
LINE = re.compile(r"^\[pod/(?P<pod>[^/]+)/(?P<container>[^\]]+)\] n=(?P<n>\d+)$")


def talker(name: str, node: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "talk"}},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "c", "image": BUSYBOX_IMAGE,
                                     "imagePullPolicy": "Never",
                                     "command": ["sh", "-c", COUNTER]}]}}


def running(*names: str):
    def check(pods: dict[str, Obj]) -> bool:
        return all((pods.get(n) or {}).get("status", {}).get("phase") == "Running"
                   for n in names)
    return check


@contextlib.asynccontextmanager
async def spawned(*argv: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """A following command (it never ends by itself), killed on exit."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


class Lines:
    """The numbered lines read from a following process, by pod."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.by_pod: dict[str, list[int]] = defaultdict(list)
        self.other: list[str] = []

    async def until(self, what: str, done) -> None:
        """Read lines until `done(self)`; TIMEOUT bounds a hang."""
        assert self.proc.stdout is not None
        try:
            async with asyncio.timeout(TIMEOUT):
                while not done(self):
                    raw = await self.proc.stdout.readline()
                    if not raw:
                        err = await self.proc.stderr.read() if self.proc.stderr else b""
                        raise AssertionError(f"the command ended: {err.decode()}")
                    text = raw.decode().rstrip("\n")
                    m = LINE.match(text)
                    if m is None:
                        self.other.append(text)
                    else:
                        self.by_pod[m["pod"]].append(int(m["n"]))
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}; read so far: "
                                 f"{dict(self.by_pod)} {self.other}") from None

    def more_of(self, pod: str, count: int):
        start = len(self.by_pod[pod])
        return lambda s: len(s.by_pod[pod]) >= start + count


def consecutive(numbers: list[int]) -> bool:
    """No number twice and none skipped: one stream's lines, each exactly once."""
    return numbers == list(range(numbers[0], numbers[0] + len(numbers)))


async def test_logs_across_two_nodes_follow_a_new_pod_and_survive_an_agent_restart(
        cluster: Cluster, ns: str) -> None:
    c = cluster
    first, second = c.nodes
    for name, node in (("talk-a", first), ("talk-b", second)):
        await c.api.request("POST", pods_path(ns), json=talker(name, node.name))
    await wait_for(c.api, pods_path(ns), "talk-a and talk-b running",
                   running("talk-a", "talk-b"))
    bramble = [sys.executable, "-m", "bramble", "logs", "--kubeconfig",
               str(c.handle.kubeconfig), "-n", ns]
    kubectl = [KUBECTL, "--kubeconfig", str(c.handle.kubeconfig), "--cache-dir",
               str(c.base / "kubectl-cache"), "-n", ns]

    # Not following: the last 10 lines of each pod (kubectl's default with a selector),
    # prefixed, from both nodes, merged in time order.
    async def both_logged(*extra: str) -> str:
        while True:
            proc = await asyncio.create_subprocess_exec(
                *bramble, "-l", "app=talk", *extra, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
            out, err = await proc.communicate()
            assert proc.returncode == 0, err.decode()
            text = out.decode()
            if text.count("[pod/talk-a/c] ") == 10 and text.count("[pod/talk-b/c] ") == 10:
                return text
            await asyncio.sleep(0.5)  # too young to have 10 lines yet

    text = await asyncio.wait_for(both_logged(), TIMEOUT)
    assert all(LINE.match(line) for line in text.splitlines()), text
    stamped = (await asyncio.wait_for(both_logged("--timestamps"), TIMEOUT)).splitlines()
    times = [line.split(" ")[1] for line in stamped]  # "[pod/talk-a/c] <time> n=7"
    assert times == sorted(times), stamped  # same zone and precision: text order is time

    # The log API's limitBytes and sinceTime, as kubectl sends them (tail, timestamps,
    # since and follow: tests/e2e/test_logs_exec.py).
    async def kubectl_out(*argv: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            *kubectl, *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
        assert proc.returncode == 0, err.decode()
        return out.decode()

    assert await kubectl_out("logs", "talk-b", "--limit-bytes=5") == "n=1\nn"
    stamp, _, line = (await kubectl_out("logs", "talk-b", "--timestamps", "--tail=1")
                      ).strip().partition(" ")
    since = [int(x[2:]) for x in (await kubectl_out("logs", "talk-b",
                                                    f"--since-time={stamp}")).split()]
    # From the second of that line on (the time has whole seconds): that line and later
    # ones, maybe a few before it in the same second, never the pod's first lines.
    last = int(line[2:])
    assert consecutive(since) and since[0] <= last <= since[-1] and since[0] > 1, since

    # kubectl, through the same API.
    proc = await asyncio.create_subprocess_exec(
        *kubectl, "logs", "-l", "app=talk", "--prefix", stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 0, err.decode()
    pods = {LINE.match(line)["pod"] for line in out.decode().splitlines()}  # type: ignore[index]
    assert pods == {"talk-a", "talk-b"}, out.decode()
    async with spawned(*kubectl, "logs", "-l", "app=talk", "-f", "--prefix",
                       "--max-log-requests", "10") as proc:
        followed = Lines(proc)
        await followed.until("kubectl -f: new lines of both pods", lambda s: all(
            len(s.by_pod[p]) >= 12 for p in ("talk-a", "talk-b")))
        assert all(consecutive(followed.by_pod[p]) for p in ("talk-a", "talk-b"))

    # bramble -f: both pods, then one that appears while following (from its first line).
    async with spawned(*bramble, "-l", "app=talk", "-f") as proc:
        lines = Lines(proc)
        await lines.until("both pods followed", lambda s: all(
            len(s.by_pod[p]) >= 12 for p in ("talk-a", "talk-b")))
        await c.api.request("POST", pods_path(ns), json=talker("talk-c", first.name))
        await lines.until("the new pod followed", lambda s: len(s.by_pod["talk-c"]) >= 3)
        assert lines.by_pod["talk-c"][0] == 1  # its whole log: it is new

        # The second node's agent restarts: the stream from it breaks and resumes.
        assert await second.stop() == 0
        await c.start_node(second)
        await lines.until("talk-b resumed after the agent restart",
                          lines.more_of("talk-b", 15))
        for pod, numbers in lines.by_pod.items():
            assert consecutive(numbers), (pod, numbers)

        # A deleted pod's stream ends; the others go on.
        await c.api.request("DELETE", f"{pods_path(ns)}/talk-a")
        await wait_for(c.api, pods_path(ns), "talk-a gone", lambda p: "talk-a" not in p)
        # Its containers stopped before it went: what it said is on its way or read by the
        # time talk-c said 10 more; after that, nothing more of it comes.
        await lines.until("more of talk-c after talk-a went", lines.more_of("talk-c", 10))
        seen = len(lines.by_pod["talk-a"])
        await lines.until("still more of talk-c", lines.more_of("talk-c", 10))
        assert len(lines.by_pod["talk-a"]) == seen
        assert proc.returncode is None  # still following
        for pod, numbers in lines.by_pod.items():
            assert consecutive(numbers), (pod, numbers)
        assert lines.other == [line for line in lines.other if not line.strip()], lines.other
