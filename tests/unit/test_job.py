"""The Job controller's decisions: what one sync does, counting, back-off, deadline, TTL."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bramble.master.controllers.job import (
    TRACKING_FINALIZER,
    Backoff,
    finish,
    finished_events,
    job_pod,
    plan_job,
    pod_backoff_remaining,
    releasable,
    ttl_remaining,
)
from bramble.master.controllers.replicaset import rfc3339

Obj = dict[str, Any]
NOW = 1_800_000_000.0


def at(offset: float) -> str:
    """A timestamp `offset` seconds from NOW."""
    return rfc3339(NOW + offset)


def job(status: Obj | None = None, **spec: Any) -> Obj:
    restart = spec.pop("restartPolicy", "Never")
    base = {"parallelism": 1, "completions": 1, "backoffLimit": 6,
            "podReplacementPolicy": "TerminatingOrFailed"}
    base.update(spec)
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "j", "namespace": "ns", "uid": "job-uid"},
            "spec": {**base, "selector": {"matchLabels": {"c": "job-uid"}},
                     "template": {"metadata": {"labels": {"c": "job-uid"}},
                                  "spec": {"restartPolicy": restart,
                                           "containers": [{"name": "c", "image": "x"}]}}},
            "status": status if status is not None else {"startTime": at(-10)}}


def pod(name: str, phase: str = "Running", *, tracked: bool = True, ready: bool = False,
        deleting: bool = False, finished: float | None = None, restarts: int = 0) -> Obj:
    meta: Obj = {"name": name, "namespace": "ns", "uid": f"uid-{name}",
                 "creationTimestamp": at(-20),
                 "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "j",
                                      "uid": "job-uid", "controller": True}]}
    if tracked:
        meta["finalizers"] = [TRACKING_FINALIZER]
    if deleting:
        meta["deletionTimestamp"] = at(-1)
    state: Obj = {"running": {}}
    if finished is not None:
        state = {"terminated": {"exitCode": 0 if phase == "Succeeded" else 1,
                                "finishedAt": at(finished)}}
    return {"metadata": meta, "spec": {"nodeName": "n"},
            "status": {"phase": phase,
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                       "lastTransitionTime": at(-15)}],
                       "containerStatuses": [{"name": "c", "restartCount": restarts,
                                              "state": state}]}}


def types(status: Obj) -> list[tuple[str, str]]:
    return [(c["type"], c.get("reason", "")) for c in status.get("conditions") or []]


@pytest.mark.parametrize(("case", "the_job", "pods", "create", "delete", "count", "want"), [
    # completions 3, parallelism 2, nothing yet: min(3 - 0, 2) = 2 pods.
    ("start", job(completions=3, parallelism=2), [], 2, [], [],
     {"active": 2, "ready": 0, "terminating": 0}),
    # One succeeded (tracked): counted now; 3 - 1 = 2 still wanted, 1 active -> 1 more.
    ("one done", job(completions=3, parallelism=2),
     [pod("a", "Succeeded", finished=-1), pod("b", ready=True)], 1, [], ["a"],
     {"active": 2, "ready": 1, "uncounted": {"succeeded": ["uid-a"]}}),
    # Two already counted, one running: 3 - 2 = 1 wanted, 1 active: nothing to do.
    ("last one running", job({"startTime": at(-10), "succeeded": 2}, completions=3,
                             parallelism=2),
     [pod("a", "Succeeded", tracked=False), pod("b", "Succeeded", tracked=False), pod("c")],
     0, [], [], {"active": 1, "succeeded": 2}),
    # Parallelism lowered to 1 with 2 active: the less valuable (not ready) one goes.
    ("scale down", job(completions=5, parallelism=1),
     [pod("a", ready=True), pod("b")], 0, ["b"], [], {"active": 1, "terminating": 1}),
    # No completions: once one succeeded nothing new starts; the others may finish.
    ("work queue", job(completions=None, parallelism=3),
     [pod("a", "Succeeded", finished=-1), pod("b")], 0, [], ["a"], {"active": 1}),
    # A deleted running pod counts as failed at once (TerminatingOrFailed) and is replaced.
    ("deleted pod", job(), [pod("a", deleting=True)], 1, [], ["a"],
     {"active": 1, "terminating": 1, "uncounted": {"failed": ["uid-a"]}}),
    # With podReplacementPolicy Failed it is neither failed nor replaced until it ends.
    ("deleted pod, replace failed only", job(podReplacementPolicy="Failed"),
     [pod("a", deleting=True)], 0, [], [], {"terminating": 1}),
    # Suspended: every active pod goes.
    ("suspended", job(suspend=True, completions=2, parallelism=2), [pod("a"), pod("b")],
     0, ["a", "b"], [], {"terminating": 2}),
])
def test_plan(case: str, the_job: Obj, pods: list[Obj], create: int, delete: list[str],
              count: list[str], want: Obj) -> None:
    plan = plan_job(the_job, pods, NOW, Backoff(0, 0))
    assert (plan.create, sorted(plan.delete), sorted(plan.count)) == (create, delete, count), case
    status = plan.status
    for key, value in want.items():
        if key == "uncounted":
            assert status["uncountedTerminatedPods"] == value, case
        else:
            assert status.get(key) == value, (case, key)
    assert plan.finished is None, case


def test_completion_is_interim_until_counted() -> None:
    # The last success: SuccessCriteriaMet now, Complete once the pod is counted.
    j = job({"startTime": at(-10), "succeeded": 1}, completions=2)
    plan = plan_job(j, [pod("a", "Succeeded", tracked=False),
                        pod("b", "Succeeded", finished=-1)], NOW)
    assert plan.create == 0 and plan.count == ["b"]
    assert types(plan.status) == [("SuccessCriteriaMet", "CompletionsReached")]
    assert plan.status["uncountedTerminatedPods"] == {"succeeded": ["uid-b"]}
    assert plan.finished is not None and plan.finished["type"] == "Complete"
    # The finalizer is still there (its removal failed, say): not finished yet.
    j["status"] = plan.status
    still = [pod("a", "Succeeded", tracked=False), pod("b", "Succeeded", finished=-1)]
    status, done = finish(j, still, plan.finished)
    assert not done and "completionTime" not in status
    # Removed: counted (1 + 1 = 2), Complete with its completionTime.
    counted = [pod("a", "Succeeded", tracked=False), pod("b", "Succeeded", tracked=False)]
    status, done = finish(j, counted, plan.finished)
    assert done and status["succeeded"] == 2 and status["uncountedTerminatedPods"] == {}
    assert types(status) == [("SuccessCriteriaMet", "CompletionsReached"),
                             ("Complete", "CompletionsReached")]
    assert status["completionTime"] == rfc3339(NOW)
    j["status"] = status
    assert finished_events(j, plan.finished) == [("Normal", "Completed", "Job completed")]


@pytest.mark.parametrize(("case", "the_job", "pods", "reason"), [
    # backoffLimit 1: failed 1 + 1 new = 2 > 1.
    ("backoff limit", job({"startTime": at(-10), "failed": 1}, backoffLimit=1),
     [pod("a", "Failed", tracked=False), pod("b", "Failed", finished=-1)],
     "BackoffLimitExceeded"),
    # backoffLimit 0 and a restarted container under OnFailure.
    ("restarts count with OnFailure", job(backoffLimit=0, restartPolicy="OnFailure"),
     [pod("a", restarts=1)], "BackoffLimitExceeded"),
    # OnFailure, backoffLimit 3: 2 + 1 restarts = 3 >= 3.
    ("restarts summed", job(backoffLimit=3, restartPolicy="OnFailure", parallelism=2,
                            completions=2),
     [pod("a", restarts=2), pod("b", restarts=1)], "BackoffLimitExceeded"),
    # Started 10 s ago with activeDeadlineSeconds 10: past it (elapsed >= deadline).
    ("deadline", job(activeDeadlineSeconds=10), [pod("a", ready=True)], "DeadlineExceeded"),
])
def test_failure(case: str, the_job: Obj, pods: list[Obj], reason: str) -> None:
    plan = plan_job(the_job, pods, NOW)
    assert types(plan.status)[-1] == ("FailureTarget", reason), case
    assert plan.finished is not None and plan.finished["type"] == "Failed", case
    assert plan.finished["reason"] == reason
    active = sorted(p["metadata"]["name"] for p in pods if p["status"]["phase"] == "Running")
    assert sorted(plan.delete) == active and plan.create == 0, case
    # Every pod it stops counts as failed.
    assert sorted(plan.status["uncountedTerminatedPods"].get("failed", [])) == sorted(
        f"uid-{p['metadata']['name']}" for p in pods if p["metadata"].get("finalizers")), case
    assert "active" not in plan.status and plan.status["ready"] == 0


def test_failed_job_waits_for_terminating_pods() -> None:
    # FailureTarget saved before; one pod still terminating on its node.
    j = job({"startTime": at(-10), "failed": 2, "conditions": [
        {"type": "FailureTarget", "status": "True", "reason": "DeadlineExceeded",
         "message": "Job was active longer than specified deadline"}]}, activeDeadlineSeconds=5)
    terminating = [pod("a", deleting=True, tracked=False)]
    plan = plan_job(j, terminating, NOW)
    assert plan.finished is not None and plan.finished["type"] == "Failed"
    assert plan.create == 0 and plan.delete == []
    j["status"] = plan.status
    status, done = finish(j, terminating, plan.finished)
    assert not done and status["terminating"] == 1
    status, done = finish(j, [], plan.finished)
    assert done and types(status)[-1] == ("Failed", "DeadlineExceeded")
    assert "completionTime" not in status
    assert finished_events(j, plan.finished) == [
        ("Warning", "DeadlineExceeded", "Job was active longer than specified deadline")]


def test_deadline_requeues_until_due() -> None:
    # Started 10 s ago, activeDeadlineSeconds 25: look again in 15 s.
    plan = plan_job(job(activeDeadlineSeconds=25), [pod("a")], NOW)
    assert plan.finished is None and plan.requeue_after == pytest.approx(15)


def test_start_time_set_once() -> None:
    plan = plan_job(job(status={}), [], NOW)
    assert plan.status["startTime"] == rfc3339(NOW) and plan.create == 1
    assert plan_job(job(status={}, suspend=True), [], NOW).status.get("startTime") is None


def test_suspend_and_resume_conditions() -> None:
    plan = plan_job(job(suspend=True), [], NOW)
    assert types(plan.status) == [("Suspended", "JobSuspended")]
    assert plan.events == [("Normal", "Suspended", "Job suspended")]
    resumed = job(dict(plan.status))
    plan = plan_job(resumed, [], NOW + 30)
    assert [(c["type"], c["status"]) for c in plan.status["conditions"]] == [
        ("Suspended", "False")]
    assert plan.events == [("Normal", "Resumed", "Job resumed")]
    assert plan.status["startTime"] == rfc3339(NOW + 30)  # the deadline counts from here


@pytest.mark.parametrize(("case", "pods", "left"), [
    ("no failures", [pod("a", "Succeeded", finished=-5)], 0.0),
    # One failure 4 s ago: 10 s back-off, 6 s left.
    ("one failure", [pod("a", "Failed", finished=-4)], 6.0),
    # Three failures, the last 5 s ago: 10 * 2^2 = 40 s, 35 s left.
    ("three failures", [pod(x, "Failed", finished=f) for x, f in
                        (("a", -30), ("b", -20), ("c", -5))], 35.0),
    # A success after the first failure resets the count: one failure, 3 s ago.
    ("success resets", [pod("a", "Failed", finished=-30), pod("b", "Succeeded", finished=-20),
                        pod("c", "Failed", finished=-3)], 7.0),
    # Eight failures: 10 * 2^7 = 1280 s, capped at 360 s; the last 60 s ago.
    ("capped", [pod(f"p{i}", "Failed", finished=-60 - i) for i in range(8)], 300.0),
    ("long ago", [pod("a", "Failed", finished=-100)], 0.0),
])
def test_pod_backoff(case: str, pods: list[Obj], left: float) -> None:
    assert pod_backoff_remaining(job(), pods, NOW, Backoff(10, 360)) == pytest.approx(left), case


def test_creation_waits_for_the_backoff() -> None:
    plan = plan_job(job(), [pod("a", "Failed", finished=-4)], NOW, Backoff(10, 360))
    assert plan.create == 0 and plan.requeue_after == pytest.approx(6)
    assert plan.count == ["a"]  # counted meanwhile
    plan = plan_job(job(), [pod("a", "Failed", finished=-11)], NOW, Backoff(10, 360))
    assert plan.create == 1


@pytest.mark.parametrize(("case", "ttl", "conditions", "left"), [
    ("no ttl", None, [("Complete", -5)], None),
    ("not finished", 10, [("SuccessCriteriaMet", -5)], None),
    ("complete 5 s ago, ttl 10", 10, [("Complete", -5)], 5.0),
    ("failed 15 s ago, ttl 10", 10, [("FailureTarget", -16), ("Failed", -15)], -5.0),
    ("ttl 0", 0, [("Complete", 0)], 0.0),
])
def test_ttl(case: str, ttl: int | None, conditions: list, left: float | None) -> None:
    j = job({"conditions": [{"type": t, "status": "True", "lastTransitionTime": at(o)}
                            for t, o in conditions]}, ttlSecondsAfterFinished=ttl)
    got = ttl_remaining(j, NOW)
    assert got == (pytest.approx(left) if left is not None else None), case


def test_pods_whose_finalizer_nobody_else_removes() -> None:
    live = job()
    assert not releasable(pod("a"), live)                   # a sync counts it
    assert not releasable(pod("a", tracked=False), None)    # nothing to remove
    assert releasable(pod("a"), None)                        # its Job is gone
    replaced = job()
    replaced["metadata"]["uid"] = "other"
    assert releasable(pod("a"), replaced)                    # a new Job of the same name
    orphan = pod("a")
    orphan["metadata"]["ownerReferences"] = []
    assert releasable(orphan, live)                          # orphaned by the GC
    foreign = pod("a")
    foreign["metadata"]["ownerReferences"][0]["kind"] = "CronThing"
    assert not releasable(foreign, None)
    done = job({"conditions": [{"type": "Complete", "status": "True"}]})
    assert releasable(pod("a"), done)


def test_job_pod() -> None:
    p = job_pod(job())
    assert p["metadata"]["generateName"] == "j-"
    assert p["metadata"]["finalizers"] == [TRACKING_FINALIZER]
    assert p["metadata"]["labels"] == {"c": "job-uid"}
    assert p["metadata"]["ownerReferences"][0]["kind"] == "Job"
    assert p["spec"]["restartPolicy"] == "Never"


def test_the_api_generates_the_selector() -> None:
    from bramble.master.api.defaults import default
    obj = {"metadata": {"name": "pi", "uid": "u1"}, "spec": {"template": {
        "metadata": {"labels": {"app": "pi"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}}}}
    default("batch/v1/Job", obj)
    generated = {"app": "pi", "job-name": "pi", "batch.kubernetes.io/job-name": "pi",
                 "controller-uid": "u1", "batch.kubernetes.io/controller-uid": "u1"}
    assert obj["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}}
    assert obj["spec"]["template"]["metadata"]["labels"] == generated
    assert obj["metadata"]["labels"] == generated  # as Kubernetes shows them on the Job
    before = copy.deepcopy(obj)
    default("batch/v1/Job", obj)
    assert obj == before
    manual = {"metadata": {"name": "pi", "uid": "u1"}, "spec": {
        "manualSelector": True, "selector": {"matchLabels": {"app": "pi"}},
        "template": {"metadata": {"labels": {"app": "pi"}}, "spec": {}}}}
    default("batch/v1/Job", manual)
    assert manual["spec"]["selector"] == {"matchLabels": {"app": "pi"}}
    assert manual["spec"]["template"]["metadata"]["labels"] == {"app": "pi"}
