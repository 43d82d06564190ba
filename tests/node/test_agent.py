"""The node agent end to end: a real master and `bramble node` in this process, on a real
Podman (see agent_fixtures.py). Pods are created through the API with spec.nodeName set,
and what the API then reports is checked against what Kubernetes would report, and against
what Podman really runs.

One master and one node serve the whole module; every test deletes its pods afterwards and
waits until the agent removed them from Podman and from the disk.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import os
import re
import signal
from pathlib import Path
from typing import Any

import pytest

from bramble.kube.errors import NotFound
from bramble.node import sync as node_sync
from bramble.node.runtime.podman import NotFound as RuntimeNotFound
from bramble.node.runtime.types import LABEL_POD_UID
from tests.conftest import free_port
from tests.images import BUSYBOX_IMAGE
from tests.node.agent_fixtures import (  # noqa: F401  (the fixtures: agent, pods)
    NAMESPACE,
    NODE,
    AgentNode,
    Pods,
    agent_fixture,
    leftover_cgroups,
    pod_path,
    pods_fixture,
    until,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

Pod = dict[str, Any]

# A main process that ends at once on SIGTERM (sh as PID 1 would ignore it), so that
# deleting the pod does not wait for its grace period.
SLEEP = "trap 'exit 0' TERM; sleep 3600 & wait"
CONTAINER_ID = re.compile(r"^podman://[0-9a-f]{64}$")


def manifest(name: str, *containers: dict[str, Any], **spec: Any) -> Pod:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": NODE, "terminationGracePeriodSeconds": 2,
                     "containers": list(containers), **spec}}


def container(script: str = SLEEP, name: str = "main", **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": BUSYBOX_IMAGE, "imagePullPolicy": "Never",
            "command": ["sh", "-c", script], **extra}


# --- reading a pod's status -------------------------------------------------------------


def phase(pod: Pod) -> str:
    return (pod.get("status") or {}).get("phase", "")


def cstatus(pod: Pod, name: str = "main", *, init: bool = False) -> dict[str, Any]:
    key = "initContainerStatuses" if init else "containerStatuses"
    for status in (pod.get("status") or {}).get(key) or []:
        if status.get("name") == name:
            return status
    return {}


def condition(pod: Pod, type_: str) -> dict[str, Any]:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return c
    return {}


def state(pod: Pod, name: str = "main") -> dict[str, Any]:
    return cstatus(pod, name).get("state") or {}


def waiting_reason(pod: Pod, name: str = "main") -> str:
    return (state(pod, name).get("waiting") or {}).get("reason", "")


def running_and_ready(pod: Pod) -> bool:
    return phase(pod) == "Running" and condition(pod, "Ready").get("status") == "True"


def container_id(pod: Pod, name: str = "main") -> str:
    return cstatus(pod, name).get("containerID", "").removeprefix("podman://")


# --- looking into containers ----------------------------------------------------------------


async def run_in(agent: AgentNode, cid: str, *cmd: str) -> tuple[int, str]:
    """Exec `cmd` in the container: (exit code, stdout)."""
    session = await agent.runtime.exec(cid, list(cmd))
    async with session:
        out, _ = await session.output()
        return await session.wait(), out.decode()


async def logs(agent: AgentNode, cid: str) -> str:
    return b"".join([chunk async for chunk in agent.runtime.logs(cid)]).decode()


async def logs_containing(agent: AgentNode, cid: str, marker: str) -> str:
    async def check() -> str | None:
        text = await logs(agent, cid)
        return text if marker in text else None

    return await until(f"{marker!r} in the logs of {cid[:12]}", check)


async def main_pid(agent: AgentNode, cid: str) -> int:
    """The host PID of the container's main process."""
    return int((await agent.runtime.inspect(cid))["State"]["Pid"])


def kill_if_still(pid: int, script: str) -> None:
    """SIGKILL our container's main process (found by PID, checked by its command line),
    so that a test exposing a too long stop does not make the next ones wait for it."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return
    if script in cmdline:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


async def create_object(agent: AgentNode, plural: str, obj: dict[str, Any]) -> None:
    await agent.api.request("POST", f"/api/v1/namespaces/{NAMESPACE}/{plural}", json=obj)


async def delete_object(agent: AgentNode, plural: str, name: str) -> None:
    with contextlib.suppress(NotFound):
        await agent.api.request("DELETE", f"/api/v1/namespaces/{NAMESPACE}/{plural}/{name}")


# --- the tests ---------------------------------------------------------------------------------


async def test_pod_runs_and_reports_status_as_kubernetes(agent: AgentNode, pods: Pods) -> None:
    created = await pods.create(manifest("basic", container()))
    uid = created["metadata"]["uid"]
    pod = await pods.wait("basic", "Running and Ready", running_and_ready)
    status = pod["status"]

    conditions = {c["type"]: c for c in status["conditions"]}
    assert set(conditions) == {"PodReadyToStartContainers", "Initialized", "Ready",
                               "ContainersReady", "PodScheduled"}
    for c in conditions.values():
        assert c["status"] == "True", c
        assert c["lastTransitionTime"].endswith("Z") and c["lastProbeTime"] is None
    assert ipaddress.ip_address(status["podIP"]) in ipaddress.ip_network(agent.subnet)
    assert status["podIPs"] == [{"ip": status["podIP"]}]
    assert status["hostIP"] == "127.0.0.1" and status["hostIPs"] == [{"ip": "127.0.0.1"}]
    assert status["startTime"].endswith("Z")
    assert status["qosClass"] == "BestEffort"

    (main,) = status["containerStatuses"]
    assert main["name"] == "main" and main["image"] == BUSYBOX_IMAGE
    assert main["imageID"] == await agent.runtime.image_id(BUSYBOX_IMAGE)
    assert CONTAINER_ID.match(main["containerID"]), main["containerID"]
    assert main["started"] is True and main["ready"] is True
    assert main["restartCount"] == 0 and main["lastState"] == {}
    assert list(main["state"]) == ["running"] and main["state"]["running"]["startedAt"]

    # What the API says runs is what Podman runs: that container, in the pod's sandbox.
    observed = (await agent.runtime.observe({LABEL_POD_UID: uid}))[uid]
    assert observed.sandbox is not None and observed.sandbox.state == "running"
    assert observed.sandbox.ip == status["podIP"]
    assert [(c.id, c.state) for c in observed.containers] == [(container_id(pod), "running")]
    inspected = await agent.runtime.inspect(container_id(pod))
    assert inspected["Pod"] == observed.sandbox.id and inspected["State"]["Running"]


async def test_host_port_answers_on_loopback(agent: AgentNode, pods: Pods) -> None:
    port = free_port()
    await pods.create(manifest("web", container(
        "mkdir -p /www && echo hello-bramble > /www/index.html && "
        "exec httpd -f -p 8080 -h /www",
        ports=[{"containerPort": 8080, "hostPort": port}])))
    await pods.wait("web", "Running", running_and_ready)

    async def fetch() -> bytes | None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return None
        try:
            writer.write(b"GET /index.html HTTP/1.0\r\n\r\n")
            await writer.drain()
            answer = await reader.read()
        except OSError:
            return None
        finally:
            writer.close()
        return answer if b"hello-bramble" in answer else None

    answer = await until(f"an answer on 127.0.0.1:{port}", fetch)
    assert b" 200 " in answer.split(b"\r\n")[0]


async def test_failing_container_goes_to_crash_loop_back_off(agent: AgentNode,
                                                             pods: Pods) -> None:
    created = await pods.create(manifest("crash", container("echo boom; exit 3")))
    uid = created["metadata"]["uid"]

    def backing_off(pod: Pod) -> bool:
        return waiting_reason(pod) == "CrashLoopBackOff"

    pod = await pods.wait("crash", "CrashLoopBackOff", backing_off)
    first = cstatus(pod)
    assert first["restartCount"] >= 1
    assert first["lastState"]["terminated"]["exitCode"] == 3
    assert first["lastState"]["terminated"]["reason"] == "Error"
    assert first["lastState"]["terminated"]["containerID"] == first["containerID"]
    message = first["state"]["waiting"]["message"]
    assert message.startswith("back-off 10s restarting failed container=main pod=crash_"
                              f"{NAMESPACE}({uid})"), message
    assert first["ready"] is False and first["started"] is False
    assert phase(pod) == "Running"  # restartPolicy Always: Kubernetes says Running
    assert condition(pod, "Ready")["status"] == "False"

    # The back-off ends, the container runs (and fails) again: the count grows.
    pod = await pods.wait("crash", "a restart after the back-off", lambda p: backing_off(p) and
                          cstatus(p)["restartCount"] > first["restartCount"])
    again = cstatus(pod)
    assert again["lastState"]["terminated"]["exitCode"] == 3
    assert again["containerID"] != first["containerID"]


@pytest.mark.parametrize(("code", "final", "reason"), [(0, "Succeeded", "Completed"),
                                                       (1, "Failed", "Error")])
async def test_restart_policy_never_ends_in_final_phase(agent: AgentNode, pods: Pods, code: int,
                                                        final: str, reason: str) -> None:
    name = f"once-{code}"
    await pods.create(manifest(name, container(f"sleep 2; echo done; exit {code}"),
                               restartPolicy="Never"))
    await pods.wait(name, "Running", lambda p: phase(p) == "Running")
    pod = await pods.wait(name, "a final phase", lambda p: phase(p) in ("Succeeded", "Failed"))
    assert phase(pod) == final
    main = cstatus(pod)
    assert main["restartCount"] == 0 and main["ready"] is False and main["started"] is False
    terminated = main["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (code, reason)
    assert terminated["startedAt"] and terminated["finishedAt"]
    expected = "PodCompleted" if final == "Succeeded" else "PodFailed"
    assert (condition(pod, "Ready")["status"], condition(pod, "Ready")["reason"]) == (
        "False", expected)


async def test_completed_pod_keeps_its_containers_and_logs(agent: AgentNode,
                                                            pods: Pods) -> None:
    await pods.create(manifest("completed", container("echo done"), restartPolicy="Never"))
    pod = await pods.wait("completed", "Succeeded", lambda p: phase(p) == "Succeeded")
    cid = container_id(pod)
    assert (await agent.runtime.inspect(cid))["State"]["ExitCode"] == 0
    assert await logs(agent, cid) == "done\n"


async def test_init_containers_run_in_order_before_the_app(agent: AgentNode,
                                                           pods: Pods) -> None:
    shared = [{"name": "work", "mountPath": "/work"}]
    await pods.create(manifest(
        "init", container("cat /work/order; echo main >> /work/order; " + SLEEP,
                          volumeMounts=shared),
        initContainers=[
            # The first one is the slow one: run at once, the second would write first.
            container("sleep 1; echo init-1 >> /work/order", name="init-1",
                      volumeMounts=shared),
            container("echo init-2 >> /work/order", name="init-2", volumeMounts=shared)],
        volumes=[{"name": "work", "emptyDir": {}}]))
    pod = await pods.wait("init", "Running", running_and_ready)
    for name in ("init-1", "init-2"):
        status = cstatus(pod, name, init=True)
        assert status["state"]["terminated"]["exitCode"] == 0, status
        assert status["state"]["terminated"]["reason"] == "Completed"
        assert status["ready"] is True and status["restartCount"] == 0
    assert condition(pod, "Initialized")["status"] == "True"
    # The app saw both init containers' lines, in order, before it added its own.
    assert await logs_containing(agent, container_id(pod), "init-2") == "init-1\ninit-2\n"
    code, order = await run_in(agent, container_id(pod), "cat", "/work/order")
    assert (code, order) == (0, "init-1\ninit-2\nmain\n")


async def test_env_from_values_fields_config_maps_and_secrets(agent: AgentNode,
                                                              pods: Pods) -> None:
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    await create_object(agent, "configmaps", {"metadata": {"name": "env-cm"},
                                              "data": {"color": "blue", "size": "L"}})
    await create_object(agent, "secrets", {"metadata": {"name": "env-secret"},
                                           "data": {"password": b64("s3cret"),
                                                    "user": b64("admin")}})
    try:
        env = [
            {"name": "PLAIN", "value": "hello"},
            {"name": "EXPANDED", "value": "$(PLAIN)-world"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "LABEL", "valueFrom": {"fieldRef": {
                "fieldPath": "metadata.labels['tier']"}}},
            {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "env-cm",
                                                                "key": "color"}}},
            {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "env-secret",
                                                                "key": "password"}}},
        ]
        env_from = [{"configMapRef": {"name": "env-cm"}, "prefix": "CM_"},
                    {"secretRef": {"name": "env-secret"}}]
        body = manifest("env", container("env; echo END; " + SLEEP, env=env, envFrom=env_from))
        body["metadata"]["labels"] = {"tier": "backend"}
        created = await pods.create(body)
        pod = await pods.wait("env", "Running", running_and_ready)
        text = await logs_containing(agent, container_id(pod), "END")
        seen = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        expected = {
            "PLAIN": "hello", "EXPANDED": "hello-world", "POD_NAME": "env",
            "POD_NS": NAMESPACE, "POD_UID": created["metadata"]["uid"],
            "POD_IP": pod["status"]["podIP"], "HOST_IP": pod["status"]["hostIP"],
            "NODE": NODE, "LABEL": "backend", "COLOR": "blue", "PASSWORD": "s3cret",
            "CM_color": "blue", "CM_size": "L", "password": "s3cret", "user": "admin",
        }
        assert {k: seen.get(k) for k in expected} == expected
    finally:
        await delete_object(agent, "configmaps", "env-cm")
        await delete_object(agent, "secrets", "env-secret")


async def test_config_map_volume_shows_its_keys_read_only(agent: AgentNode,
                                                          pods: Pods) -> None:
    await create_object(agent, "configmaps", {"metadata": {"name": "vol-cm"},
                                              "data": {"greeting": "hello", "name": "pi"}})
    try:
        await pods.create(manifest(
            "cmvol", container(volumeMounts=[{"name": "cfg", "mountPath": "/etc/cfg"}]),
            volumes=[{"name": "cfg", "configMap": {"name": "vol-cm"}}]))
        pod = await pods.wait("cmvol", "Running", running_and_ready)
        cid = container_id(pod)
        assert await run_in(agent, cid, "cat", "/etc/cfg/greeting") == (0, "hello")
        assert await run_in(agent, cid, "ls", "/etc/cfg") == (0, "greeting\nname\n")
        code, _ = await run_in(agent, cid, "touch", "/etc/cfg/new")
        assert code != 0  # configMap volumes are read-only
    finally:
        await delete_object(agent, "configmaps", "vol-cm")


async def test_config_map_update_reaches_the_file_without_restart(
        agent: AgentNode, pods: Pods, monkeypatch: pytest.MonkeyPatch) -> None:
    # The agent resyncs a quiet pod every REFRESH_SECONDS (30 s); a test must not wait that.
    monkeypatch.setattr(node_sync, "REFRESH_SECONDS", 0.5)
    await create_object(agent, "configmaps", {"metadata": {"name": "live-cm"},
                                              "data": {"greeting": "hello"}})
    try:
        await pods.create(manifest(
            "cmlive", container(volumeMounts=[{"name": "cfg", "mountPath": "/etc/cfg"}]),
            volumes=[{"name": "cfg", "configMap": {"name": "live-cm"}}]))
        pod = await pods.wait("cmlive", "Running", running_and_ready)
        cid = container_id(pod)
        assert await run_in(agent, cid, "cat", "/etc/cfg/greeting") == (0, "hello")
        await agent.api.request("PATCH", f"/api/v1/namespaces/{NAMESPACE}/configmaps/live-cm",
                                json={"data": {"greeting": "bonjour"}},
                                content_type="application/merge-patch+json")

        async def updated() -> bool:
            return await run_in(agent, cid, "cat", "/etc/cfg/greeting") == (0, "bonjour")

        # Ten resyncs (0.5 s each) fit in this bound.
        await until("the updated ConfigMap in the file", updated, within=5, interval=0.5)
        pod = await pods.get("cmlive")
        assert pod is not None
        assert container_id(pod) == cid and cstatus(pod)["restartCount"] == 0
    finally:
        await delete_object(agent, "configmaps", "live-cm")


async def test_liveness_probe_failure_restarts_the_container(agent: AgentNode,
                                                             pods: Pods) -> None:
    await pods.create(manifest("liveness", container(
        "touch /tmp/healthy; sleep 2; rm /tmp/healthy; " + SLEEP,
        livenessProbe={"exec": {"command": ["cat", "/tmp/healthy"]},
                       "periodSeconds": 1, "failureThreshold": 1})))
    pod = await pods.wait("liveness", "Running", running_and_ready)
    first = container_id(pod)
    pod = await pods.wait("liveness", "a restart", lambda p: cstatus(p).get("restartCount", 0) >= 1
                          and "running" in state(p))
    main = cstatus(pod)
    assert container_id(pod) != first
    killed = main["lastState"]["terminated"]
    assert CONTAINER_ID.match(killed["containerID"])
    assert killed["containerID"] != main["containerID"]


async def test_failing_readiness_probe_keeps_the_pod_unready(agent: AgentNode,
                                                             pods: Pods) -> None:
    await pods.create(manifest("readiness", container(
        readinessProbe={"exec": {"command": ["cat", "/tmp/ready"]},
                        "periodSeconds": 1, "failureThreshold": 1})))

    def unready(p: Pod) -> bool:
        return ("running" in state(p) and cstatus(p)["started"] is True
                and cstatus(p)["ready"] is False)

    pod = await pods.wait("readiness", "running, not ready", unready)
    assert phase(pod) == "Running"
    for type_ in ("Ready", "ContainersReady"):
        c = condition(pod, type_)
        assert (c["status"], c["reason"]) == ("False", "ContainersNotReady")
        assert c["message"] == "containers with unready status: [main]"

    # The probe is what holds it: make it pass, then fail again.
    cid = container_id(pod)
    assert (await run_in(agent, cid, "touch", "/tmp/ready"))[0] == 0
    pod = await pods.wait("readiness", "Ready", running_and_ready)
    assert cstatus(pod)["ready"] is True
    assert (await run_in(agent, cid, "rm", "/tmp/ready"))[0] == 0
    pod = await pods.wait("readiness", "unready again", lambda p: unready(p) and condition(
        p, "Ready")["status"] == "False")
    assert container_id(pod) == cid and cstatus(pod)["restartCount"] == 0


async def test_memory_limit_exceeded_is_oom_killed(agent: AgentNode, pods: Pods) -> None:
    # sh itself holds ~100 MB in a variable: the kernel kills the container's PID 1.
    await pods.create(manifest("oom", container(
        "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo ${#x}",
        resources={"limits": {"memory": "32Mi"}})))

    def oom_killed(p: Pod) -> bool:
        last = cstatus(p).get("lastState") or {}
        return (last.get("terminated") or {}).get("reason") == "OOMKilled"

    pod = await pods.wait("oom", "lastState OOMKilled", oom_killed)
    main = cstatus(pod)
    assert main["lastState"]["terminated"]["exitCode"] == 137
    assert main["restartCount"] >= 1
    assert pod["status"]["qosClass"] == "Burstable"


async def test_oom_killed_with_restart_policy_never_reports_it(agent: AgentNode,
                                                               pods: Pods) -> None:
    await pods.create(manifest("oom-once", container(
        "sleep 2; x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo ${#x}",
        resources={"limits": {"memory": "32Mi"}}), restartPolicy="Never"))
    await pods.wait("oom-once", "Running", lambda p: phase(p) == "Running")
    pod = await pods.wait("oom-once", "Failed", lambda p: phase(p) == "Failed")
    terminated = state(pod).get("terminated") or {}
    assert (terminated.get("reason"), terminated.get("exitCode")) == ("OOMKilled", 137)
    assert cstatus(pod)["restartCount"] == 0


async def test_graceful_delete_removes_pod_and_containers(agent: AgentNode,
                                                          pods: Pods) -> None:
    # `sleep` under sh as PID 1 ignores SIGTERM: the stop takes the whole grace period.
    created = await pods.create(manifest("graceful", container("sleep 3600"),
                                         terminationGracePeriodSeconds=3))
    uid = created["metadata"]["uid"]
    await pods.wait("graceful", "Running", running_and_ready)
    observed = (await agent.runtime.observe({LABEL_POD_UID: uid}))[uid]
    assert observed.sandbox is not None and len(observed.containers) == 1

    marked = await agent.api.request("DELETE", pod_path("graceful"))
    assert marked["metadata"]["deletionTimestamp"]
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 3

    async def gone() -> bool:
        return await pods.get("graceful") is None

    await until("the pod gone from the API", gone)
    await until("the pod gone from Podman and the disk", lambda: pods.gone_from_node(uid))
    for c in observed.containers:
        with pytest.raises(RuntimeNotFound):
            await agent.runtime.inspect(c.id)
    assert not (agent.data_dir / "pods" / uid).exists()


async def test_terminating_pod_does_not_stall_the_others(agent: AgentNode, pods: Pods) -> None:
    script = "sleep 3600"  # sh as PID 1 ignores SIGTERM: the stop takes the grace period
    await pods.create(manifest("slow-stop", container(script),
                               terminationGracePeriodSeconds=30))
    pod = await pods.wait("slow-stop", "Running", running_and_ready)
    pid = await main_pid(agent, container_id(pod))
    await agent.api.request("DELETE", pod_path("slow-stop"))
    try:
        await pods.create(manifest("meanwhile", container()))
        # Far less than the 30 s the other pod's stop takes; kubelet: about a second.
        await pods.wait("meanwhile", "Running while another pod terminates",
                        running_and_ready, within=8)
    finally:
        kill_if_still(pid, script)


async def test_force_delete_does_not_wait_the_spec_grace_period(agent: AgentNode,
                                                                pods: Pods) -> None:
    script = "sleep 3600"  # sh as PID 1 ignores SIGTERM: only SIGKILL ends it
    created = await pods.create(manifest("forced", container(script),
                                         terminationGracePeriodSeconds=30))
    uid = created["metadata"]["uid"]
    pod = await pods.wait("forced", "Running", running_and_ready)
    pid = await main_pid(agent, container_id(pod))
    await agent.api.request("DELETE", pod_path("forced"), json={"gracePeriodSeconds": 0})
    try:
        # The kubelet's bound is 2 s; 8 s is slack for a slow machine, far below 30 s.
        await until("the force-deleted pod gone from Podman", lambda: pods.gone_from_node(uid),
                    within=8)
    finally:
        kill_if_still(pid, script)


async def test_force_delete_cuts_a_graceful_termination_short(agent: AgentNode,
                                                              pods: Pods) -> None:
    # `kubectl delete pod` (grace 30), then `kubectl delete pod --force --grace-period=0`
    # while the first is still waiting: the kubelet honours the shorter grace period.
    script = "sleep 3600"  # sh as PID 1 ignores SIGTERM: only SIGKILL ends it
    created = await pods.create(manifest("hurried", container(script),
                                         terminationGracePeriodSeconds=30))
    uid = created["metadata"]["uid"]
    pod = await pods.wait("hurried", "Running", running_and_ready)
    pid = await main_pid(agent, container_id(pod))
    await agent.api.request("DELETE", pod_path("hurried"))
    try:
        cid = container_id(pod)
        await until("the agent stopping the container", lambda: _stopping(agent, cid))
        await agent.api.request("DELETE", pod_path("hurried"),
                                json={"gracePeriodSeconds": 0})
        # Far below the 30 s the first deletion granted.
        await until("the force-deleted pod gone from Podman", lambda: pods.gone_from_node(uid),
                    within=8)
    finally:
        kill_if_still(pid, script)


async def _stopping(agent: AgentNode, cid: str) -> bool:
    """Podman's own word that a stop is under way (SIGTERM sent, grace running)."""
    return (await agent.runtime.inspect(cid))["State"]["Status"] == "stopping"


async def test_missing_config_map_is_create_container_config_error(
        agent: AgentNode, pods: Pods, monkeypatch: pytest.MonkeyPatch) -> None:
    # The agent retries a pod it could not configure at its next resync (REFRESH_SECONDS).
    monkeypatch.setattr(node_sync, "REFRESH_SECONDS", 0.5)
    env = [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "late-cm", "key": "x"}}}]
    await pods.create(manifest("nocm", container(env=env)))
    pod = await pods.wait("nocm", "CreateContainerConfigError",
                          lambda p: waiting_reason(p) == "CreateContainerConfigError")
    assert state(pod)["waiting"]["message"] == 'configmap "late-cm" not found'
    assert phase(pod) == "Pending" and "containerID" not in cstatus(pod)
    # Once the ConfigMap exists, the container starts.
    await create_object(agent, "configmaps", {"metadata": {"name": "late-cm"},
                                              "data": {"x": "1"}})
    try:
        await pods.wait("nocm", "Running once the ConfigMap exists", running_and_ready)
    finally:
        await delete_object(agent, "configmaps", "late-cm")


async def test_image_not_present_with_pull_policy_never(agent: AgentNode, pods: Pods) -> None:
    body = manifest("noimage", container())
    body["spec"]["containers"][0]["image"] = "localhost/not-loaded:1"
    await pods.create(body)
    pod = await pods.wait("noimage", "ErrImageNeverPull",
                          lambda p: waiting_reason(p) == "ErrImageNeverPull")
    assert state(pod)["waiting"]["message"] == (
        'Container image "localhost/not-loaded:1" is not present with pull policy of Never')
    assert phase(pod) == "Pending"
    assert condition(pod, "Ready")["status"] == "False"


async def test_removed_pod_leaves_no_cgroup(agent: AgentNode, pods: Pods) -> None:
    # Podman 4.3 (cgroupfs, hybrid host) leaves empty pod cgroups in name=systemd and
    # unified; the runtime removes them after the pod (runtime.remove_empty_cgroups).
    created = await pods.create(manifest("cgroup", container()))
    uid = created["metadata"]["uid"]
    await pods.wait("cgroup", "Running", running_and_ready)
    sandbox = (await agent.runtime.observe({LABEL_POD_UID: uid}))[uid].sandbox
    assert sandbox is not None
    await agent.api.request("DELETE", pod_path("cgroup"), json={"gracePeriodSeconds": 0})
    await until("the pod gone from Podman", lambda: pods.gone_from_node(uid))
    assert leftover_cgroups([sandbox.id]) == []


# --- the agent restarted -------------------------------------------------------------------


async def test_restarted_agent_adopts_a_running_pod(agent: AgentNode, pods: Pods) -> None:
    # Each liveness probe run leaves a line in the container: proof that an agent syncs it.
    created = await pods.create(manifest("adopted", container(livenessProbe={
        "exec": {"command": ["sh", "-c", "echo probed >> /tmp/probes"]}, "periodSeconds": 1})))
    uid = created["metadata"]["uid"]
    pod = await pods.wait("adopted", "Running", running_and_ready)
    cid = container_id(pod)
    before = (await agent.runtime.observe({LABEL_POD_UID: uid}))[uid]

    async def probe_runs() -> int:
        code, out = await run_in(agent, cid, "cat", "/tmp/probes")
        return out.count("probed") if code == 0 else 0

    await agent.restart()
    seen = await probe_runs()
    await until("the restarted agent probing the adopted pod",
                lambda: _more(probe_runs, seen + 2), interval=0.5)

    pod = await pods.get("adopted")
    assert pod is not None and running_and_ready(pod)
    assert container_id(pod) == cid
    assert cstatus(pod)["restartCount"] == 0 and cstatus(pod)["lastState"] == {}
    after = (await agent.runtime.observe({LABEL_POD_UID: uid}))[uid]
    assert after.sandbox == before.sandbox
    assert [(c.id, c.state) for c in after.containers] == [(cid, "running")]


async def _more(count: Any, at_least: int) -> bool:
    return await count() >= at_least


async def test_pod_deleted_while_agent_stopped_is_removed_at_start(agent: AgentNode,
                                                                   pods: Pods) -> None:
    created = await pods.create(manifest("orphan", container()))
    uid = created["metadata"]["uid"]
    await pods.wait("orphan", "Running", running_and_ready)
    await agent.stop()
    try:
        await agent.api.request("DELETE", pod_path("orphan"), json={"gracePeriodSeconds": 0})
        assert await pods.get("orphan") is None
    finally:
        await agent.start()
    await until("the orphaned pod removed from Podman and the disk",
                lambda: pods.gone_from_node(uid))


async def test_orphan_found_at_start_is_killed_promptly(agent: AgentNode, pods: Pods) -> None:
    script = "sleep 3600"  # sh as PID 1 ignores SIGTERM: only SIGKILL ends it
    created = await pods.create(manifest("orphan-slow", container(script)))
    uid = created["metadata"]["uid"]
    pod = await pods.wait("orphan-slow", "Running", running_and_ready)
    pid = await main_pid(agent, container_id(pod))
    await agent.stop()
    try:
        await agent.api.request("DELETE", pod_path("orphan-slow"),
                                json={"gracePeriodSeconds": 0})
    finally:
        await agent.start()
    try:
        await until("the orphan gone from Podman", lambda: pods.gone_from_node(uid),
                    within=8)
    finally:
        kill_if_still(pid, script)
