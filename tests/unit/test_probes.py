"""Probe state machines (thresholds, timing, startup gating) and probe targets, as the
kubelet's prober worker behaves - with explicit times."""

import pytest

from bramble.node.pods import format_time
from bramble.node.pods.probes import (
    FAILURE,
    LIVENESS,
    READINESS,
    READY,
    RESTART,
    STARTED,
    STARTUP,
    SUCCESS,
    UNREADY,
    USER_AGENT,
    ContainerProbes,
    ProbeError,
    ProbeSpec,
    ProbeState,
    probe_target,
    sync_probes,
)
from bramble.node.runtime.types import ObservedContainer, ObservedPod

T0 = 1_700_000_000.0
F, S = FAILURE, SUCCESS


def test_spec_defaults():
    assert ProbeSpec.from_api(LIVENESS, {"exec": {"command": ["true"]}}) == ProbeSpec(
        LIVENESS, initial_delay=0, period=10, timeout=1, success_threshold=1,
        failure_threshold=3)
    spec = ProbeSpec.from_api(READINESS, {"initialDelaySeconds": 5, "periodSeconds": 2,
                                          "timeoutSeconds": 3, "successThreshold": 2,
                                          "failureThreshold": 4,
                                          "terminationGracePeriodSeconds": 7})
    assert (spec.initial_delay, spec.period, spec.timeout, spec.success_threshold,
            spec.failure_threshold, spec.termination_grace_period) == (5, 2, 3, 2, 4, 7)


RUNS = [
    # (kind, successThreshold, failureThreshold, results, transitions, result in force)
    (LIVENESS, 1, 3, [F, F], [None, None], S),  # 2 < 3: still healthy
    (LIVENESS, 1, 3, [F, F, F], [None, None, RESTART], F),  # the 3rd failure in a row
    (LIVENESS, 1, 3, [F, F, S, F, F], [None, None, None, None, None], S),  # a success resets
    (LIVENESS, 1, 1, [F, F], [RESTART, None], F),  # on hold after the restart verdict
    (READINESS, 1, 3, [S], [READY], S),  # starts as failure: the first success flips it
    (READINESS, 2, 3, [S, S, S], [None, READY, None], S),  # needs 2 in a row
    (READINESS, 1, 2, [S, F, F, F], [READY, None, UNREADY, None], F),
    (READINESS, 1, 3, [F, F, F, F], [None, None, None, None], F),  # already unready
    (STARTUP, 1, 3, [F, S], [None, STARTED], S),
    (STARTUP, 1, 2, [F, F], [None, RESTART], F),
]


@pytest.mark.parametrize(("kind", "success", "failure", "results", "transitions", "final"), RUNS)
def test_thresholds(kind, success, failure, results, transitions, final):
    state = ProbeState(ProbeSpec(kind, success_threshold=success, failure_threshold=failure),
                       started_at=T0)
    got = [state.record(result, T0 + 10 * i) for i, result in enumerate(results)]
    assert got == transitions
    assert state.result == final


def test_timing():
    state = ProbeState(ProbeSpec(LIVENESS, initial_delay=15, period=10), started_at=T0)
    assert state.next_due() == T0 + 15  # started at T0 + 15 s initial delay
    assert not state.due(T0 + 14.9)
    assert state.due(T0 + 15)
    state.record(S, T0 + 16)
    assert state.next_due() == T0 + 26  # last run at T0+16 + 10 s period
    assert not state.due(T0 + 25)
    state.record(F, T0 + 26)
    state.record(F, T0 + 36)
    assert state.record(F, T0 + 46) == RESTART
    assert state.next_due() is None and not state.due(T0 + 1000)  # on hold


CONTAINER = {
    "name": "app", "image": "x",
    "startupProbe": {"httpGet": {"port": 80}, "periodSeconds": 5, "failureThreshold": 2},
    "livenessProbe": {"tcpSocket": {"port": 80}, "initialDelaySeconds": 30},
    "readinessProbe": {"httpGet": {"port": 80}, "periodSeconds": 3},
}


def test_startup_gates_liveness_and_readiness():
    probes = ContainerProbes(CONTAINER, container_id="c1", started_at=T0)
    assert not probes.started and not probes.ready and probes.failed is None
    assert probes.due(T0) == [STARTUP]  # only startup until it passes
    assert probes.next_due() == T0
    assert probes.record(STARTUP, F, T0) is None
    assert probes.due(T0 + 5) == [STARTUP]
    assert probes.record(STARTUP, S, T0 + 5) == STARTED
    assert probes.started and not probes.ready  # readiness has not passed yet
    # Readiness (no initial delay) is due at once; liveness at T0 + 30.
    assert probes.due(T0 + 5) == [READINESS]
    assert probes.next_due() == T0  # readiness: started_at + 0, overdue
    assert probes.record(READINESS, S, T0 + 5) == READY
    assert probes.ready
    assert probes.due(T0 + 8) == [READINESS]  # T0+5 + 3 s period
    assert probes.due(T0 + 30) == [LIVENESS, READINESS]
    for t in (30, 40, 50):
        verdict = probes.record(LIVENESS, F, T0 + t)
    assert verdict == RESTART and probes.failed == LIVENESS


def test_startup_failure_means_restart():
    probes = ContainerProbes(CONTAINER, container_id="c1", started_at=T0)
    probes.record(STARTUP, F, T0)
    assert probes.record(STARTUP, F, T0 + 5) == RESTART
    assert probes.failed == STARTUP and not probes.started


def test_no_probes_is_started_and_ready():
    probes = ContainerProbes({"name": "app", "image": "x"}, container_id="c1", started_at=T0)
    assert probes.started and probes.ready and probes.due(T0) == [] and probes.next_due() is None


def running(cid, name, started):
    return ObservedContainer(id=cid, name=name, state="running", started_at=format_time(started))


def test_sync_probes_keeps_state_per_container_generation():
    pod = {"spec": {"containers": [CONTAINER, {"name": "plain", "image": "x"}]}}
    first = sync_probes(pod, ObservedPod(uid="u", containers=(running("c1", "app", T0),
                                                              running("p1", "plain", T0))),
                        {}, now=T0 + 1)
    assert set(first) == {"app"}  # no probes, no state
    assert first["app"].started_at == T0 and first["app"].container_id == "c1"
    same = sync_probes(pod, ObservedPod(uid="u", containers=(running("c1", "app", T0),)),
                       first, now=T0 + 2)
    assert same["app"] is first["app"]
    replaced = sync_probes(pod, ObservedPod(uid="u", containers=(
        ObservedContainer(id="c1", name="app", state="exited"),
        ObservedContainer(id="c2", name="app", state="running", started_at=format_time(T0 + 60),
                          labels={"io.bramble.container.restarts": "1"}))), first, now=T0 + 61)
    assert replaced["app"].container_id == "c2" and replaced["app"].started_at == T0 + 60
    stopped = sync_probes(pod, ObservedPod(uid="u", containers=(
        ObservedContainer(id="c1", name="app", state="exited"),)), first, now=T0 + 3)
    assert stopped == {}


# --- targets -------------------------------------------------------------------------------------

WEB = {"name": "web", "image": "x", "ports": [{"name": "http", "containerPort": 8080},
                                              {"name": "grpc", "containerPort": 9000}]}
DEFAULT_HEADERS = (("User-Agent", USER_AGENT), ("Accept", "*/*"))

TARGETS = [
    # (probe, kind, url or (host, port), extra checks)
    ({"httpGet": {"port": "http", "path": "/healthz"}}, "http",
     "http://10.0.0.5:8080/healthz", {"headers": DEFAULT_HEADERS}),
    ({"httpGet": {"port": 80, "scheme": "HTTPS", "host": "example.com", "path": "ready"}},
     "http", "https://example.com:80/ready", {}),
    ({"httpGet": {"port": 80}}, "http", "http://10.0.0.5:80/", {}),
    ({"httpGet": {"port": "8081"}}, "http", "http://10.0.0.5:8081/", {}),  # a number as text
    ({"httpGet": {"port": 80, "httpHeaders": [{"name": "user-agent", "value": "me"},
                                              {"name": "X-Probe", "value": "1"}]}}, "http",
     "http://10.0.0.5:80/",
     {"headers": (("User-Agent", "me"), ("X-Probe", "1"), ("Accept", "*/*"))}),
    ({"httpGet": {"port": 80, "httpHeaders": [{"name": "Accept", "value": ""}]}}, "http",
     "http://10.0.0.5:80/", {"headers": (("User-Agent", USER_AGENT),)}),  # empty: removed
    ({"tcpSocket": {"port": "http"}}, "tcp", ("10.0.0.5", 8080), {}),
    ({"tcpSocket": {"port": 22, "host": "10.0.0.9"}}, "tcp", ("10.0.0.9", 22), {}),
    ({"grpc": {"port": 9000, "service": "db"}}, "grpc", ("10.0.0.5", 9000), {"service": "db"}),
    ({"exec": {"command": ["cat", "/tmp/ok"]}, "timeoutSeconds": 5}, "exec", None,
     {"command": ("cat", "/tmp/ok"), "timeout": 5.0}),
]


@pytest.mark.parametrize(("probe", "kind", "where", "extra"), TARGETS)
def test_probe_target(probe, kind, where, extra):
    target = probe_target(probe, "10.0.0.5", container=WEB)
    assert target.kind == kind
    if isinstance(where, str):
        assert target.url == where
    elif where is not None:
        assert (target.host, target.port) == where
    for key, value in extra.items():
        assert getattr(target, key) == value
    if kind == "http" and "headers" not in extra:
        assert dict(target.headers)["User-Agent"] == USER_AGENT


def test_ipv6_url():
    target = probe_target({"httpGet": {"port": 80, "path": "/"}}, "fd00::5")
    assert target.url == "http://[fd00::5]:80/"


PROBE_ERRORS = [
    ({"httpGet": {"port": "metrics"}}, "port metrics not found"),
    ({"tcpSocket": {"port": 0}}, "invalid port number: 0"),
    ({"tcpSocket": {"port": 70000}}, "invalid port number: 70000"),
    ({}, "missing probe handler"),
]


@pytest.mark.parametrize(("probe", "message"), PROBE_ERRORS)
def test_probe_target_errors(probe, message):
    with pytest.raises(ProbeError) as err:
        probe_target(probe, "10.0.0.5", container=WEB)
    assert str(err.value) == message


def test_record_rejects_unknown_results():
    state = ProbeState(ProbeSpec(LIVENESS), started_at=T0)
    with pytest.raises(ValueError):
        state.record("timeout", T0)
