"""pod_status reports what the kubelet reports: phase (getPhase), conditions, container
states, lastState, restart counts, readiness, waiting reasons."""

import pytest

from bramble.node.pods import Waiting, format_time
from bramble.node.pods.probes import READINESS, STARTUP, SUCCESS, ContainerProbes
from bramble.node.pods.status import get_phase, pod_status, should_restart
from bramble.node.runtime.types import (
    LABEL_RESTART_COUNT,
    ObservedContainer,
    ObservedPod,
    ObservedSandbox,
)

UID = "uid-1234"
NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z
NOW_TEXT = "2023-11-14T22:13:20Z"
EARLIER = "2023-11-14T22:00:00Z"
HOST = "192.168.1.10"


def spec(name, image="img:1", **extra):
    return {"name": name, "image": image, **extra}


APP, DB = spec("app"), spec("db")
INIT_A, INIT_B = spec("init-a"), spec("init-b")
SCHEDULED = {"type": "PodScheduled", "status": "True", "lastProbeTime": None,
             "lastTransitionTime": EARLIER}


def make_pod(*containers, init=(), policy="Always", status=None, meta=None, **extra):
    return {"metadata": {"name": "web", "namespace": "shop", "uid": UID, **(meta or {})},
            "spec": {"restartPolicy": policy, "containers": list(containers or [APP]),
                     "initContainers": list(init), **extra},
            "status": {"phase": "Pending", "qosClass": "BestEffort",
                       "conditions": [SCHEDULED], **(status or {})}}


def c(cid, name, state, restart=0, exit_code=None, oom=False, started=NOW - 60,
      finished=NOW - 30, error=""):
    if state == "exited" and exit_code is None:
        exit_code = 0
    return ObservedContainer(
        id=cid, name=name, state=state, exit_code=exit_code, oom_killed=oom,
        labels={LABEL_RESTART_COUNT: str(restart)},
        started_at=format_time(started) if state in ("running", "exited") else "",
        finished_at=format_time(finished) if state == "exited" else "",
        image="docker.io/library/img:1", image_id="sha256:abc", error=error)


def observed(*containers, sandbox="running"):
    box = None if sandbox is None else ObservedSandbox(id="sb", state=sandbox, ip="10.0.0.5")
    return ObservedPod(uid=UID, sandbox=box, containers=tuple(containers))


def status_of(pod, obs, **kw):
    kw.setdefault("host_ip", HOST)
    return pod_status(pod, obs, now=NOW, **kw)


def conditions(status):
    return {c["type"]: (c["status"], c.get("reason", ""), c.get("message", ""))
            for c in status["conditions"]}


def by_name(status, key="containerStatuses"):
    return {s["name"]: s for s in status.get(key, [])}


def test_a_new_pod_in_full():
    status = status_of(make_pod(APP), observed(sandbox=None))
    assert status == {
        "phase": "Pending",
        "conditions": [
            {"type": "PodReadyToStartContainers", "status": "False", "lastProbeTime": None,
             "lastTransitionTime": NOW_TEXT},
            {"type": "Initialized", "status": "True", "lastProbeTime": None,
             "lastTransitionTime": NOW_TEXT},
            {"type": "Ready", "status": "False", "lastProbeTime": None,
             "lastTransitionTime": NOW_TEXT, "reason": "ContainersNotReady",
             "message": "containers with unready status: [app]"},
            {"type": "ContainersReady", "status": "False", "lastProbeTime": None,
             "lastTransitionTime": NOW_TEXT, "reason": "ContainersNotReady",
             "message": "containers with unready status: [app]"},
            SCHEDULED,
        ],
        "hostIP": HOST,
        "hostIPs": [{"ip": HOST}],
        "startTime": NOW_TEXT,
        "containerStatuses": [
            {"name": "app", "state": {"waiting": {"reason": "ContainerCreating"}},
             "lastState": {}, "ready": False, "restartCount": 0, "image": "img:1",
             "imageID": "", "started": False}],
        "qosClass": "BestEffort",
    }


def test_running_and_ready_in_full():
    status = status_of(make_pod(APP, status={"startTime": EARLIER}),
                       observed(c("a1", "app", "running")))
    assert status["phase"] == "Running"
    assert status["podIP"] == "10.0.0.5" and status["podIPs"] == [{"ip": "10.0.0.5"}]
    assert status["startTime"] == EARLIER  # kept
    assert status["containerStatuses"] == [{
        "name": "app", "state": {"running": {"startedAt": "2023-11-14T22:12:20Z"}},
        "lastState": {}, "ready": True, "restartCount": 0,
        "image": "docker.io/library/img:1", "imageID": "sha256:abc",
        "containerID": "podman://a1", "started": True}]
    assert conditions(status) == {
        "PodReadyToStartContainers": ("True", "", ""), "Initialized": ("True", "", ""),
        "Ready": ("True", "", ""), "ContainersReady": ("True", "", ""),
        "PodScheduled": ("True", "", "")}


def test_init_containers_pending():
    status = status_of(make_pod(APP, init=[INIT_A, INIT_B]),
                       observed(c("i1", "init-a", "exited")))
    assert status["phase"] == "Pending"
    init = by_name(status, "initContainerStatuses")
    assert [s["name"] for s in status["initContainerStatuses"]] == ["init-a", "init-b"]
    assert init["init-a"]["state"]["terminated"]["reason"] == "Completed"
    assert init["init-a"]["ready"] is True  # exited 0
    assert init["init-b"]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert by_name(status)["app"]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert conditions(status)["Initialized"] == (
        "False", "ContainersNotInitialized", "containers with incomplete status: [init-b]")


def test_statuses_sorted_by_name_init_in_spec_order():
    pod = make_pod(spec("zeta"), spec("alpha"), init=[spec("z-init"), spec("a-init")])
    status = status_of(pod, observed())
    assert [s["name"] for s in status["containerStatuses"]] == ["alpha", "zeta"]
    assert [s["name"] for s in status["initContainerStatuses"]] == ["z-init", "a-init"]


def test_crash_loop_back_off():
    gens = observed(c("a1", "app", "exited", restart=0, exit_code=1),
                    c("a2", "app", "exited", restart=1, exit_code=2, started=NOW - 10,
                      finished=NOW - 5))
    message = f"back-off 10s restarting failed container=app pod=web_shop({UID})"
    status = status_of(make_pod(APP), gens,
                       waiting_reasons={"app": Waiting("CrashLoopBackOff", message)})
    app = by_name(status)["app"]
    assert app["state"] == {"waiting": {"reason": "CrashLoopBackOff", "message": message}}
    assert app["lastState"] == {"terminated": {
        "exitCode": 2, "reason": "Error", "startedAt": "2023-11-14T22:13:10Z",
        "finishedAt": "2023-11-14T22:13:15Z", "containerID": "podman://a2"}}
    assert app["restartCount"] == 1 and app["ready"] is False and app["started"] is False
    assert status["phase"] == "Running"  # Always: waiting with a last termination is "stopped"


def test_without_a_waiting_reason_the_newest_exit_is_the_state_and_the_one_before_last():
    gens = observed(c("a1", "app", "exited", restart=0, exit_code=1),
                    c("a2", "app", "exited", restart=1, exit_code=0))
    app = by_name(status_of(make_pod(APP), gens))["app"]
    assert app["state"]["terminated"]["containerID"] == "podman://a2"
    assert app["state"]["terminated"]["reason"] == "Completed"
    assert app["lastState"]["terminated"]["containerID"] == "podman://a1"


def test_a_waiting_reason_only_for_a_container_that_will_restart():
    gens = observed(c("a1", "app", "exited", exit_code=1))
    status = status_of(make_pod(APP, policy="Never"), gens,
                       waiting_reasons={"app": ("CrashLoopBackOff", "x")})
    assert "terminated" in by_name(status)["app"]["state"]
    fresh = status_of(make_pod(APP), observed(), waiting_reasons={
        "app": ("ErrImagePull", 'pull access denied for img')})
    assert by_name(fresh)["app"]["state"] == {"waiting": {
        "reason": "ErrImagePull", "message": "pull access denied for img"}}


def test_terminated_reasons_and_messages():
    gens = observed(c("a1", "app", "exited", exit_code=137, oom=True),
                    c("d1", "db", "exited", exit_code=127, error="exec: not found"))
    status = status_of(make_pod(APP, DB, policy="Never"), gens)
    assert by_name(status)["app"]["state"]["terminated"]["reason"] == "OOMKilled"
    db = by_name(status)["db"]["state"]["terminated"]
    assert (db["reason"], db["message"]) == ("Error", "exec: not found")


def test_created_container_is_waiting_without_reason():
    status = status_of(make_pod(APP), observed(c("a1", "app", "created")))
    assert by_name(status)["app"]["state"] == {"waiting": {}}


PROBED = spec("app", readinessProbe={"httpGet": {"port": 80}},
              startupProbe={"httpGet": {"port": 80}})


def probes(startup=None, readiness=None, cid="a1"):
    state = ContainerProbes(PROBED, container_id=cid, started_at=NOW - 60)
    if startup:
        state.record(STARTUP, startup, NOW - 50)
    if readiness:
        state.record(READINESS, readiness, NOW - 40)
    return state


READINESS_CASES = [
    # (probe states, started, ready, Ready condition message)
    ({}, False, False, "containers with unready status: [app]"),  # no state yet: not started
    ({"app": probes()}, False, False, "containers with unready status: [app]"),
    ({"app": probes(startup=SUCCESS)}, True, False, "containers with unready status: [app]"),
    ({"app": probes(startup=SUCCESS, readiness=SUCCESS)}, True, True, ""),
    ({"app": probes(startup=SUCCESS, readiness=SUCCESS, cid="old")}, False, False,
     "containers with unready status: [app]"),  # another generation's results do not count
]


@pytest.mark.parametrize(("states", "started", "ready", "message"), READINESS_CASES)
def test_readiness_and_started(states, started, ready, message):
    status = status_of(make_pod(PROBED), observed(c("a1", "app", "running")),
                       probe_states=states)
    app = by_name(status)["app"]
    assert (app["started"], app["ready"]) == (started, ready)
    assert conditions(status)["Ready"][2] == message


PHASES = [
    # (id, policy, init specs, app specs, observed, terminal, phase)
    ("nothing yet", "Always", [], [APP], [], False, "Pending"),
    ("one running, one not started", "Always", [], [APP, DB],
     [c("a1", "app", "running")], False, "Pending"),
    ("all running", "Always", [], [APP, DB],
     [c("a1", "app", "running"), c("d1", "db", "running")], False, "Running"),
    ("one running, one exited", "Never", [], [APP, DB],
     [c("a1", "app", "running"), c("d1", "db", "exited", exit_code=1)], False, "Running"),
    ("Always, all exited: restarting", "Always", [], [APP],
     [c("a1", "app", "exited")], False, "Running"),
    ("Always, all exited, pod terminal: by exit codes", "Always", [], [APP],
     [c("a1", "app", "exited")], True, "Succeeded"),
    ("terminal with one failure", "Always", [], [APP, DB],
     [c("a1", "app", "exited"), c("d1", "db", "exited", exit_code=143)], True, "Failed"),
    ("OnFailure, all succeeded", "OnFailure", [], [APP, DB],
     [c("a1", "app", "exited"), c("d1", "db", "exited")], False, "Succeeded"),
    ("OnFailure, one failed: restarting", "OnFailure", [], [APP, DB],
     [c("a1", "app", "exited"), c("d1", "db", "exited", exit_code=1)], False, "Running"),
    ("Never, all succeeded", "Never", [], [APP], [c("a1", "app", "exited")], False, "Succeeded"),
    ("Never, one failed", "Never", [], [APP, DB],
     [c("a1", "app", "exited"), c("d1", "db", "exited", exit_code=1)], False, "Failed"),
    ("init running", "Always", [INIT_A], [APP], [c("i1", "init-a", "running")], False,
     "Pending"),
    ("init failed, Never", "Never", [INIT_A], [APP],
     [c("i1", "init-a", "exited", exit_code=1)], False, "Failed"),
    ("init failed, OnFailure: retried", "OnFailure", [INIT_A], [APP],
     [c("i1", "init-a", "exited", exit_code=1)], False, "Pending"),
    ("init done, app running", "Always", [INIT_A], [APP],
     [c("i1", "init-a", "exited"), c("a1", "app", "running")], False, "Running"),
]


@pytest.mark.parametrize(("policy", "init", "apps", "containers", "terminal", "phase"),
                         [p[1:] for p in PHASES], ids=[p[0] for p in PHASES])
def test_phase(policy, init, apps, containers, terminal, phase):
    pod = make_pod(*apps, init=init, policy=policy)
    assert status_of(pod, observed(*containers), terminal=terminal)["phase"] == phase


def test_terminal_conditions():
    succeeded = status_of(make_pod(APP, policy="Never"), observed(c("a1", "app", "exited")))
    assert conditions(succeeded)["Ready"] == ("False", "PodCompleted", "")
    assert conditions(succeeded)["ContainersReady"] == ("False", "PodCompleted", "")
    assert conditions(succeeded)["Initialized"] == ("True", "PodCompleted", "")
    failed = status_of(make_pod(APP, policy="Never"),
                       observed(c("a1", "app", "exited", exit_code=1)))
    assert conditions(failed)["Ready"] == ("False", "PodFailed", "")


def test_a_terminal_phase_is_never_left():
    pod = make_pod(APP, status={"phase": "Succeeded", "reason": "Done", "message": "ok"})
    status = status_of(pod, observed(c("a1", "app", "running")))
    assert status["phase"] == "Succeeded"
    assert (status["reason"], status["message"]) == ("Done", "ok")  # same phase: kept


def test_phase_reason_dropped_when_the_phase_changes():
    pod = make_pod(APP, status={"phase": "Pending", "reason": "Old"})
    assert "reason" not in status_of(pod, observed(c("a1", "app", "running")))


def test_transition_times_kept_while_the_status_holds():
    old = [SCHEDULED,
           {"type": "Ready", "status": "False", "lastProbeTime": None,
            "lastTransitionTime": EARLIER, "reason": "ContainersNotReady"},
           {"type": "Initialized", "status": "True", "lastProbeTime": None,
            "lastTransitionTime": EARLIER},
           {"type": "example.com/gate", "status": "True", "lastTransitionTime": EARLIER}]
    status = status_of(make_pod(APP, status={"conditions": old}),
                       observed(c("a1", "app", "running")))
    times = {c["type"]: c["lastTransitionTime"] for c in status["conditions"]}
    assert times == {"example.com/gate": EARLIER,  # not the kubelet's: kept as it was
                     "PodReadyToStartContainers": NOW_TEXT, "Initialized": EARLIER,
                     "Ready": NOW_TEXT,  # False -> True: now
                     "ContainersReady": NOW_TEXT, "PodScheduled": EARLIER}
    assert status["conditions"][0]["type"] == "example.com/gate"


def test_readiness_gates():
    pod = make_pod(APP, readinessGates=[{"conditionType": "example.com/lb"},
                                        {"conditionType": "example.com/dns"}],
                   status={"conditions": [SCHEDULED, {"type": "example.com/lb",
                                                      "status": "False"}]})
    status = status_of(pod, observed(c("a1", "app", "running")))
    assert conditions(status)["Ready"] == (
        "False", "ReadinessGatesNotReady",
        'the status of pod readiness gate "example.com/lb" is not "True", but False, '
        'corresponding condition of pod readiness gate "example.com/dns" does not exist.')
    assert conditions(status)["ContainersReady"] == ("True", "", "")


def test_a_running_container_that_vanished_terminated():
    pod = make_pod(APP, status={"containerStatuses": [
        {"name": "app", "state": {"running": {"startedAt": EARLIER}}, "restartCount": 2,
         "lastState": {}}]})
    status = status_of(pod, observed())
    app = by_name(status)["app"]
    assert app["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert app["lastState"]["terminated"]["reason"] == "ContainerStatusUnknown"
    assert app["lastState"]["terminated"]["exitCode"] == 137
    assert app["restartCount"] == 3  # 2 + the restart it will take
    assert status["phase"] == "Running"  # stopped, not waiting: not back to Pending


def test_a_vanished_container_keeps_its_old_terminated_status():
    old = {"name": "app", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
           "restartCount": 1, "lastState": {}, "ready": False, "image": "img:1",
           "imageID": "x", "containerID": "podman://gone", "started": False}
    status = status_of(make_pod(APP, policy="Never", status={"containerStatuses": [old]}),
                       observed(sandbox="exited"))
    assert by_name(status)["app"]["state"] == old["state"]
    assert status["phase"] == "Succeeded"


def test_unknown_state_after_running_is_a_termination():
    pod = make_pod(APP, status={"containerStatuses": [
        {"name": "app", "state": {"running": {}}, "restartCount": 0}]})
    app = by_name(status_of(pod, observed(c("a1", "app", "unknown"))))["app"]
    assert app["state"]["terminated"]["reason"] == "ContainerStatusUnknown"
    assert app["restartCount"] == 1


def test_pruned_init_containers_of_an_initialized_pod_count_as_completed():
    status = status_of(make_pod(APP, init=[INIT_A]), observed(c("a1", "app", "running")))
    init = by_name(status, "initContainerStatuses")["init-a"]
    assert init["state"]["terminated"]["reason"] == "Completed"
    assert init["ready"] is True
    assert status["phase"] == "Running"


def test_pod_ip():
    stopped = status_of(make_pod(APP, status={"podIP": "10.0.0.4"}), observed(sandbox="exited"))
    assert stopped["podIP"] == "10.0.0.4"  # kept once assigned
    host = status_of(make_pod(APP, hostNetwork=True), observed(sandbox=None))
    assert host["podIP"] == HOST and host["podIPs"] == [{"ip": HOST}]
    none = status_of(make_pod(APP), observed(sandbox=None), host_ip="")
    assert "podIP" not in none and "hostIP" not in none


SHOULD_RESTART = [
    # (policy, current, restart?)
    ("Never", None, True),  # never ran
    ("Never", c("a", "app", "running"), False),
    ("Never", c("a", "app", "created"), True),
    ("Never", c("a", "app", "unknown"), True),
    ("Never", c("a", "app", "exited", exit_code=1), False),
    ("OnFailure", c("a", "app", "exited", exit_code=0), False),
    ("OnFailure", c("a", "app", "exited", exit_code=1), True),
    ("Always", c("a", "app", "exited", exit_code=0), True),
]


@pytest.mark.parametrize(("policy", "current", "expected"), SHOULD_RESTART)
def test_should_restart(policy, current, expected):
    assert should_restart(make_pod(APP, policy=policy), current) is expected
    deleted = make_pod(APP, policy=policy, meta={"deletionTimestamp": EARLIER})
    assert should_restart(deleted, current) is False


def test_get_phase_counts_a_missing_status_as_unknown():
    assert get_phase(make_pod(APP, DB), [{"name": "app", "state": {"running": {}}}]) == "Pending"
