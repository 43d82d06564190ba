"""compute_pod_actions decides as the kubelet's computePodActions: sandbox, init containers one
at a time, restart policies, back-off, spec changes, probes, termination."""

import pytest

from bramble.node.pods import Waiting, format_time
from bramble.node.pods.actions import (
    COMPLETED,
    DELETED,
    FIRST_START,
    INIT_FAILED,
    LIVENESS_FAILED,
    NEW_SANDBOX,
    NOT_IN_SPEC,
    PRUNED,
    RESTART,
    SANDBOX_CHANGED,
    SPEC_CHANGED,
    STARTUP_FAILED,
    TERMINAL,
    UNKNOWN_STATE,
    CreateSandbox,
    KillContainer,
    RemoveContainer,
    RemoveSandbox,
    StartContainer,
    StopSandbox,
    compute_pod_actions,
)
from bramble.node.pods.backoff import Backoff
from bramble.node.pods.probes import FAILURE, LIVENESS, STARTUP, ContainerProbes
from bramble.node.pods.spec import container_hash
from bramble.node.runtime.types import (
    LABEL_CONTAINER_HASH,
    LABEL_RESTART_COUNT,
    ObservedContainer,
    ObservedPod,
    ObservedSandbox,
)

UID = "uid-1234"
NOW = 1_700_000_000.0


def spec(name, image="img:1", **extra):
    return {"name": name, "image": image, **extra}


APP, DB = spec("app"), spec("db")
INIT_A, INIT_B = spec("init-a"), spec("init-b")


def make_pod(*containers, init=(), policy="Always", phase=None, meta=None, status=None, **extra):
    pod = {"metadata": {"name": "web", "namespace": "shop", "uid": UID, **(meta or {})},
           "spec": {"restartPolicy": policy, "terminationGracePeriodSeconds": 30,
                    "containers": list(containers or [APP]), "initContainers": list(init),
                    **extra},
           "status": dict(status or {})}
    if phase:
        pod["status"]["phase"] = phase
    return pod


def c(cid, name, state, restart=0, exit_code=None, image="img:1", oom=False, started=None,
      finished=None):
    if state == "exited" and exit_code is None:
        exit_code = 0
    return ObservedContainer(
        id=cid, name=name, state=state, exit_code=exit_code, oom_killed=oom,
        labels={LABEL_RESTART_COUNT: str(restart),
                LABEL_CONTAINER_HASH: container_hash({"name": name, "image": image})},
        started_at=format_time(started) if started is not None else "",
        finished_at=format_time(finished) if finished is not None else "")


def observed(*containers, sandbox="running"):
    box = None if sandbox is None else ObservedSandbox(id="sb", state=sandbox, ip="10.0.0.5")
    return ObservedPod(uid=UID, sandbox=box, containers=tuple(containers))


def summary(actions):
    out = []
    for step in actions.steps:
        if isinstance(step, KillContainer):
            out.append(("kill", step.container_id, step.reason, step.grace_period))
        elif isinstance(step, StopSandbox):
            out.append(("stop-sandbox", step.reason))
        elif isinstance(step, RemoveSandbox):
            out.append(("remove-sandbox", step.reason))
        elif isinstance(step, RemoveContainer):
            out.append(("remove", step.container_id, step.reason))
        elif isinstance(step, CreateSandbox):
            out.append(("create-sandbox", step.reason))
        elif isinstance(step, StartContainer):
            out.append(("start", step.name, step.restart_count, step.reason)
                       + (("init",) if step.init else ()))
    return out


def failed_probe(kind, cid, container):
    probes = ContainerProbes(container, container_id=cid, started_at=NOW - 100)
    for i in range(3):
        probes.record(kind, FAILURE, NOW - 30 + 10 * i)
    return probes


LIVE = {"livenessProbe": {"exec": {"command": ["true"]}}}
LIVE_GRACE = {"livenessProbe": {"exec": {"command": ["true"]}, "terminationGracePeriodSeconds": 5}}
START = {"startupProbe": {"exec": {"command": ["true"]}}}

SCENARIOS = [
    # (id, pod, observed, probe states, expected steps)
    ("new pod: sandbox, then every app container",
     make_pod(APP, DB), observed(sandbox=None), {},
     [("create-sandbox", NEW_SANDBOX), ("start", "app", 0, FIRST_START),
      ("start", "db", 0, FIRST_START)]),
    ("new pod with init containers: only the first init container",
     make_pod(APP, init=[INIT_A, INIT_B]), observed(sandbox=None), {},
     [("create-sandbox", NEW_SANDBOX), ("start", "init-a", 0, FIRST_START, "init")]),
    ("init container running: wait",
     make_pod(APP, init=[INIT_A, INIT_B]), observed(c("i1", "init-a", "running")), {}, []),
    ("first init container done: the second",
     make_pod(APP, init=[INIT_A, INIT_B]), observed(c("i1", "init-a", "exited")), {},
     [("start", "init-b", 0, FIRST_START, "init")]),
    ("all init containers done: the app containers",
     make_pod(APP, DB, init=[INIT_A, INIT_B]),
     observed(c("i1", "init-a", "exited"), c("i2", "init-b", "exited")), {},
     [("start", "app", 0, FIRST_START), ("start", "db", 0, FIRST_START)]),
    ("failed init container, Always: restart it",
     make_pod(APP, init=[INIT_A, INIT_B]), observed(c("i1", "init-a", "exited", exit_code=1)), {},
     [("start", "init-a", 1, RESTART, "init")]),
    ("failed init container, OnFailure: restart it",
     make_pod(APP, init=[INIT_A], policy="OnFailure"),
     observed(c("i1", "init-a", "exited", restart=2, exit_code=1)), {},
     [("start", "init-a", 3, RESTART, "init")]),
    ("failed init container, Never: the pod is killed",
     make_pod(APP, init=[INIT_A, INIT_B], policy="Never"),
     observed(c("i1", "init-a", "exited", exit_code=1)), {},
     [("stop-sandbox", INIT_FAILED)]),
    ("OOM-killed init container counts as failed",
     make_pod(APP, init=[INIT_A], policy="Never"),
     observed(c("i1", "init-a", "exited", exit_code=137, oom=True)), {},
     [("stop-sandbox", INIT_FAILED)]),
    ("init container in unknown state: kill, then restart",
     make_pod(APP, init=[INIT_A]), observed(c("i1", "init-a", "unknown")), {},
     [("kill", "i1", UNKNOWN_STATE, 30), ("start", "init-a", 1, RESTART, "init")]),
    ("an app container runs: init containers are done even if pruned",
     make_pod(APP, init=[INIT_A]), observed(c("a1", "app", "running")), {}, []),
    ("running and healthy: nothing to do",
     make_pod(APP, DB), observed(c("a1", "app", "running"), c("d1", "db", "running")), {}, []),
    ("exited, Always: restart with the next count",
     make_pod(APP), observed(c("a1", "app", "exited", restart=4, exit_code=0)), {},
     [("start", "app", 5, RESTART)]),
    ("failed, OnFailure: restart",
     make_pod(APP, policy="OnFailure"), observed(c("a1", "app", "exited", exit_code=2)), {},
     [("start", "app", 1, RESTART)]),
    ("succeeded, OnFailure, nothing else runs: stop the sandbox",
     make_pod(APP, policy="OnFailure"), observed(c("a1", "app", "exited")), {},
     [("stop-sandbox", COMPLETED)]),
    ("failed, Never: not restarted, sandbox stopped",
     make_pod(APP, policy="Never"), observed(c("a1", "app", "exited", exit_code=1)), {},
     [("stop-sandbox", COMPLETED)]),
    ("Never: one done, one running: keep going",
     make_pod(APP, DB, policy="Never"),
     observed(c("a1", "app", "exited"), c("d1", "db", "running")), {}, []),
    ("Never: a container that never ran is started",
     make_pod(APP, DB, policy="Never"), observed(c("a1", "app", "running")), {},
     [("start", "db", 0, FIRST_START)]),
    ("created but never started: start a new one",
     make_pod(APP), observed(c("a1", "app", "created")), {}, [("start", "app", 1, RESTART)]),
    ("unknown state: kill before restarting",
     make_pod(APP), observed(c("a1", "app", "unknown")), {},
     [("kill", "a1", UNKNOWN_STATE, 30), ("start", "app", 1, RESTART)]),
    ("image changed: kill and recreate, whatever the policy",
     make_pod(spec("app", image="img:2"), policy="Never"), observed(c("a1", "app", "running")), {},
     [("kill", "a1", SPEC_CHANGED, 30), ("start", "app", 1, SPEC_CHANGED)]),
    ("liveness failed: kill and restart",
     make_pod(spec("app", **LIVE)), observed(c("a1", "app", "running", restart=1)),
     {"app": failed_probe(LIVENESS, "a1", spec("app", **LIVE))},
     [("kill", "a1", LIVENESS_FAILED, 30), ("start", "app", 2, LIVENESS_FAILED)]),
    ("liveness failed: the probe's own grace period",
     make_pod(spec("app", **LIVE_GRACE)), observed(c("a1", "app", "running")),
     {"app": failed_probe(LIVENESS, "a1", spec("app", **LIVE_GRACE))},
     [("kill", "a1", LIVENESS_FAILED, 5), ("start", "app", 1, LIVENESS_FAILED)]),
    ("liveness failed, Never: killed, not restarted, pod done",
     make_pod(spec("app", **LIVE), policy="Never"), observed(c("a1", "app", "running")),
     {"app": failed_probe(LIVENESS, "a1", spec("app", **LIVE))},
     [("kill", "a1", LIVENESS_FAILED, 30), ("stop-sandbox", COMPLETED)]),
    ("startup failed: kill and restart",
     make_pod(spec("app", **START)), observed(c("a1", "app", "running")),
     {"app": failed_probe(STARTUP, "a1", spec("app", **START))},
     [("kill", "a1", STARTUP_FAILED, 30), ("start", "app", 1, STARTUP_FAILED)]),
    ("a failed probe of an earlier generation is ignored",
     make_pod(spec("app", **LIVE)), observed(c("a2", "app", "running", restart=1)),
     {"app": failed_probe(LIVENESS, "a1", spec("app", **LIVE))}, []),
    ("sandbox died, Always: kill what runs, replace it, start everything",
     make_pod(APP, DB),
     observed(c("a1", "app", "running", restart=1), c("d1", "db", "exited"), sandbox="exited"),
     {},
     [("kill", "a1", SANDBOX_CHANGED, 30), ("remove-sandbox", SANDBOX_CHANGED),
      ("create-sandbox", SANDBOX_CHANGED), ("start", "app", 2, SANDBOX_CHANGED),
      ("start", "db", 1, SANDBOX_CHANGED)]),
    ("sandbox died with init containers: init runs again",
     make_pod(APP, init=[INIT_A]),
     observed(c("i1", "init-a", "exited"), c("a1", "app", "exited"), sandbox="exited"), {},
     [("remove-sandbox", SANDBOX_CHANGED), ("create-sandbox", SANDBOX_CHANGED),
      ("start", "init-a", 1, SANDBOX_CHANGED, "init")]),
    ("sandbox died, OnFailure: the succeeded container is not started again",
     make_pod(APP, DB, policy="OnFailure"),
     observed(c("a1", "app", "exited"), c("d1", "db", "exited", exit_code=1), sandbox="exited"),
     {},
     [("remove-sandbox", SANDBOX_CHANGED), ("create-sandbox", SANDBOX_CHANGED),
      ("start", "db", 1, SANDBOX_CHANGED)]),
    ("sandbox stopped, OnFailure, all succeeded: nothing (the pod is done)",
     make_pod(APP, policy="OnFailure"), observed(c("a1", "app", "exited"), sandbox="exited"), {},
     []),
    ("sandbox died, Never: not replaced; what runs is killed",
     make_pod(APP, DB, policy="Never"),
     observed(c("a1", "app", "running"), c("d1", "db", "exited"), sandbox="exited"), {},
     [("kill", "a1", SANDBOX_CHANGED, 30)]),
    ("sandbox gone, runtime lost the containers: counts continue from the API status",
     make_pod(APP, status={"containerStatuses": [
         {"name": "app", "restartCount": 4, "state": {"running": {}}}]}),
     observed(sandbox=None), {},
     [("create-sandbox", NEW_SANDBOX), ("start", "app", 5, FIRST_START)]),
    ("final phase: nothing restarts, what runs is stopped",
     make_pod(APP, DB, phase="Succeeded"),
     observed(c("a1", "app", "running"), c("d1", "db", "exited")), {},
     [("kill", "a1", TERMINAL, 30), ("stop-sandbox", TERMINAL)]),
    ("final phase, already stopped: nothing",
     make_pod(APP, phase="Failed"), observed(c("a1", "app", "exited", exit_code=1),
                                             sandbox="exited"), {}, []),
    ("older generations are pruned (current + lastState kept)",
     make_pod(APP),
     observed(c("a1", "app", "exited", restart=0), c("a2", "app", "exited", restart=1),
              c("a3", "app", "exited", restart=2), c("a4", "app", "running", restart=3)), {},
     [("remove", "a2", PRUNED), ("remove", "a1", PRUNED)]),
    ("a container no spec names is killed and removed",
     make_pod(APP), observed(c("a1", "app", "running"), c("x1", "stray", "running")), {},
     [("kill", "x1", NOT_IN_SPEC, 30), ("remove", "x1", NOT_IN_SPEC)]),
]


@pytest.mark.parametrize(("pod", "obs", "probes", "expected"),
                         [s[1:] for s in SCENARIOS], ids=[s[0] for s in SCENARIOS])
def test_scenarios(pod, obs, probes, expected):
    actions = compute_pod_actions(pod, obs, now=NOW, backoff=Backoff(), probe_states=probes)
    assert summary(actions) == expected
    assert actions.waiting == {} and actions.requeue_at is None


TERMINATION = [
    # (id, pod metadata, override, observed, expected)
    ("grace from deletionGracePeriodSeconds", {"deletionGracePeriodSeconds": 10}, None,
     observed(c("a1", "app", "running"), c("d1", "db", "exited"), c("x1", "x", "unknown")),
     [("kill", "a1", DELETED, 10), ("kill", "x1", DELETED, 10), ("remove-sandbox", DELETED)]),
    ("a zero deletion grace falls back to the spec's 30 s", {"deletionGracePeriodSeconds": 0},
     None, observed(c("a1", "app", "running")),
     [("kill", "a1", DELETED, 30), ("remove-sandbox", DELETED)]),
    ("an override wins (orphans: 1 s)", {"deletionGracePeriodSeconds": 10}, 1,
     observed(c("a1", "app", "running")),
     [("kill", "a1", DELETED, 1), ("remove-sandbox", DELETED)]),
    ("everything stopped: just remove", {}, None,
     observed(c("a1", "app", "exited"), sandbox="exited"), [("remove-sandbox", DELETED)]),
    ("no sandbox: remove the containers one by one", {}, None,
     observed(c("a1", "app", "exited"), sandbox=None), [("remove", "a1", DELETED)]),
    ("nothing left: done", {}, None, observed(sandbox=None), []),
]


@pytest.mark.parametrize(("meta", "override", "obs", "expected"),
                         [s[1:] for s in TERMINATION], ids=[s[0] for s in TERMINATION])
def test_termination(meta, override, obs, expected):
    pod = make_pod(APP, DB, meta={"deletionTimestamp": "2024-01-01T00:00:00Z", **meta})
    actions = compute_pod_actions(pod, obs, now=NOW, backoff=Backoff(), deleting=True,
                                  grace_period_override=override)
    assert summary(actions) == expected


# --- CrashLoopBackOff --------------------------------------------------------------------------


def crash_looping(backoff, name="app", init=False):
    """Two quick exits recorded: the second (at NOW - 4) holds the restart for 10 s."""
    gens = (c("a1", name, "exited", restart=0, exit_code=1, started=NOW - 20, finished=NOW - 19),
            c("a2", name, "exited", restart=1, exit_code=1, started=NOW - 5, finished=NOW - 4))
    backoff.record_pod(ObservedPod(uid=UID, containers=gens[:1]))
    backoff.record_pod(ObservedPod(uid=UID, containers=gens))
    return gens


def test_crash_loop_holds_the_restart():
    backoff = Backoff()
    gens = crash_looping(backoff)
    actions = compute_pod_actions(make_pod(APP), observed(*gens), now=NOW, backoff=backoff)
    assert summary(actions) == []  # held; the sandbox is not stopped either
    assert actions.waiting == {"app": Waiting(
        "CrashLoopBackOff",
        f"back-off 10s restarting failed container=app pod=web_shop({UID})")}
    assert actions.requeue_at == NOW + 6  # exited at NOW - 4, held 10 s

    later = compute_pod_actions(make_pod(APP), observed(*gens), now=NOW + 6, backoff=backoff)
    assert summary(later) == [("start", "app", 2, RESTART)]
    assert later.waiting == {}


def test_crash_loop_holds_init_containers_too():
    backoff = Backoff()
    gens = crash_looping(backoff, name="init-a")
    actions = compute_pod_actions(make_pod(APP, init=[INIT_A]), observed(*gens), now=NOW,
                                  backoff=backoff)
    assert summary(actions) == [] and set(actions.waiting) == {"init-a"}


def test_a_new_image_is_not_held_by_the_old_back_off():
    backoff = Backoff()
    gens = crash_looping(backoff)
    running = c("a3", "app", "running", restart=2)
    actions = compute_pod_actions(make_pod(spec("app", image="img:2")),
                                  observed(*gens, running), now=NOW, backoff=backoff)
    assert summary(actions) == [("kill", "a3", SPEC_CHANGED, 30),
                                ("remove", "a1", PRUNED),  # three generations: the oldest goes
                                ("start", "app", 3, SPEC_CHANGED)]


def test_one_held_container_does_not_stop_the_others():
    backoff = Backoff()
    gens = crash_looping(backoff)
    actions = compute_pod_actions(make_pod(APP, DB), observed(*gens), now=NOW, backoff=backoff)
    assert summary(actions) == [("start", "db", 0, FIRST_START)]
    assert set(actions.waiting) == {"app"}
