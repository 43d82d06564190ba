"""The Deployment controller's pure core (master/controllers/rollout.py): surge and
unavailability arithmetic, the template hash, annotations, sizes, conditions, status, and
whole rollouts as sequences of plans over a simulated cluster."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bramble.master.controllers import rollout as r
from bramble.master.controllers.replicaset import rfc3339

Obj = dict[str, Any]
NOW = 1_700_000_000.0


def ts(offset: float) -> str:
    return rfc3339(NOW + offset)


def deployment(replicas: int = 3, *, surge: Any = 1, unavailable: Any = 0,
               strategy: str = "RollingUpdate", image: str = "v1", generation: int = 1,
               status: Obj | None = None, annotations: Obj | None = None, **spec: Any) -> Obj:
    s: Obj = {"type": strategy}
    if strategy == "RollingUpdate":
        s["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "uid": "uid-web",
                         "generation": generation, "annotations": annotations or {}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "strategy": s, "revisionHistoryLimit": 10,
                     "progressDeadlineSeconds": 600,
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}},
                     **spec},
            "status": status or {}}


def rs(name: str, replicas: int, *, created: float = -100, available: int | None = None,
       image: str = "v1", revision: int | None = None, max_replicas: int | None = None,
       desired: int | None = None, actual: int | None = None) -> Obj:
    annotations = {}
    if revision is not None:
        annotations[r.REVISION] = str(revision)
    if max_replicas is not None:
        annotations[r.MAX_REPLICAS] = str(max_replicas)
    if desired is not None:
        annotations[r.DESIRED_REPLICAS] = str(desired)
    avail = replicas if available is None else available
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}",
                         "creationTimestamp": ts(created), "generation": 1,
                         "annotations": annotations,
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                              "name": "web", "uid": "uid-web",
                                              "controller": True}]},
            "spec": {"replicas": replicas,
                     "selector": {"matchLabels": {"app": "web", r.HASH_LABEL: name}},
                     "template": {"metadata": {"labels": {"app": "web", r.HASH_LABEL: name}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}},
            "status": {"replicas": replicas if actual is None else actual,
                       "readyReplicas": avail, "availableReplicas": avail,
                       "observedGeneration": 1}}


# --- maxSurge and maxUnavailable ------------------------------------------------------------------

@pytest.mark.parametrize(("surge", "unavailable", "desired", "expected"), [
    (1, 0, 3, (1, 0)),
    ("25%", "25%", 4, (1, 1)),      # 25% of 4 = 1 both ways
    ("25%", "25%", 3, (1, 0)),      # surge ceil(0.75) = 1, unavailable floor(0.75) = 0
    ("25%", "25%", 10, (3, 2)),     # ceil(2.5) = 3, floor(2.5) = 2
    ("50%", "0%", 5, (3, 0)),       # ceil(2.5) = 3
    ("0%", "10%", 5, (0, 1)),       # floor(0.5) = 0, both 0 -> unavailable 1
    (0, 0, 5, (0, 1)),              # the fencepost: a rollout must be able to move
    ("100%", 2, 4, (4, 2)),
])
def test_resolve_fenceposts(surge: Any, unavailable: Any, desired: int,
                            expected: tuple[int, int]) -> None:
    assert r.resolve_fenceposts(surge, unavailable, desired) == expected


@pytest.mark.parametrize(("d", "surge", "unavailable"), [
    (deployment(4, surge="25%", unavailable="25%"), 1, 1),
    (deployment(2, surge=0, unavailable=5), 0, 2),  # never more than replicas
    (deployment(0, surge=1, unavailable=1), 1, 0),  # nothing to lose at 0 replicas
    (deployment(3, strategy="Recreate"), 0, 0),
])
def test_max_surge_and_unavailable(d: Obj, surge: int, unavailable: int) -> None:
    assert (r.max_surge(d), r.max_unavailable(d)) == (surge, unavailable)


def test_scaled_value_refuses_a_bare_string() -> None:
    with pytest.raises(ValueError):
        r.scaled_value("5", 10, True)


# --- hash ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "expected"), [
    (b"", 0x811C9DC5), (b"a", 0xE40C292C), (b"foobar", 0xBF9CF968),  # FNV-1a test vectors
])
def test_fnv32a(data: bytes, expected: int) -> None:
    assert r.fnv32a(data) == expected


def test_safe_encode() -> None:
    # ord("0") = 48, 48 % 27 = 21 -> "4"; "1" -> 22 -> "5"; "9" -> 57 % 27 = 3 -> "f"
    assert r.safe_encode("0191") == "45f5"


def test_hash_follows_the_template_and_collisions() -> None:
    t1 = deployment()["spec"]["template"]
    reordered = {"spec": t1["spec"], "metadata": t1["metadata"]}
    assert r.compute_hash(t1, None) == r.compute_hash(reordered, None)  # key order is not content
    assert r.compute_hash(t1, None) != r.compute_hash(deployment(image="v2")["spec"]["template"],
                                                      None)
    assert len({r.compute_hash(t1, c) for c in (None, 0, 1, 2)}) == 4
    assert set(r.compute_hash(t1, None)) <= set("bcdfghjklmnpqrstvwxz2456789")


def test_equal_ignore_hash() -> None:
    a = rs("a", 1)["spec"]["template"]
    b = deployment()["spec"]["template"]
    assert r.equal_ignore_hash(a, b)
    b_empty = copy.deepcopy(b)
    b_empty["metadata"]["annotations"] = {}  # an empty map equals a missing one
    assert r.equal_ignore_hash(a, b_empty)
    assert not r.equal_ignore_hash(a, deployment(image="v2")["spec"]["template"])


# --- annotations --------------------------------------------------------------------------------

def test_new_rs_annotations_on_create() -> None:
    d = deployment(4, surge=1, annotations={r.CHANGE_CAUSE: "v2 please",
                                            r.LAST_APPLIED: "{...}", r.REVISION: "7"})
    new = rs("n", 0)
    assert r.set_new_rs_annotations(d, new, 3, exists=False)
    # Copied: change-cause; skipped: last-applied and the deployment's own revision;
    # desired = 4, max = 4 + 1 surge.
    assert new["metadata"]["annotations"] == {
        r.CHANGE_CAUSE: "v2 please", r.REVISION: "3", r.DESIRED_REPLICAS: "4",
        r.MAX_REPLICAS: "5"}
    assert not r.set_new_rs_annotations(d, new, 3, exists=True)  # nothing left to change


def test_rollback_keeps_revision_history() -> None:
    d = deployment()
    old = rs("o", 0, revision=1)
    assert r.set_new_rs_annotations(d, old, 4, exists=True)
    assert old["metadata"]["annotations"][r.REVISION] == "4"
    assert old["metadata"]["annotations"][r.REVISION_HISTORY] == "1"
    r.set_new_rs_annotations(d, old, 6, exists=True)
    assert old["metadata"]["annotations"][r.REVISION_HISTORY] == "1,4"
    # A smaller "new" revision never lowers it.
    assert not r.set_new_rs_annotations(d, old, 2, exists=True)


def test_revision_history_is_bounded() -> None:
    d = deployment()
    old = rs("o", 0, revision=9)
    old["metadata"]["annotations"][r.REVISION_HISTORY] = "1,2,3"
    # 5 characters allowed: "1,2,3" + ",9" = 7 > 5; dropping "1," leaves "2,3,9" (5).
    r.set_new_rs_annotations(d, old, 10, exists=True, history_chars=5)
    assert old["metadata"]["annotations"][r.REVISION_HISTORY] == "2,3,9"


# --- sizes --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("d", "rss", "new_size", "expected"), [
    # 3 replicas + 1 surge = 4 at most; 3 old + 0 new: 1 may be added.
    (deployment(3, surge=1), [3], 0, 1),
    # Already 4 pods in total: the new one stays at 1.
    (deployment(3, surge=1), [3], 1, 1),
    # 10 + 3 surge = 13; 10 old: up to 3, but never more than replicas - new (10 - 0).
    (deployment(10, surge=3), [10], 0, 3),
    # Old ones scaled down to 2: 13 - (2 + 5) = 6, capped at 10 - 5 = 5 -> 10.
    (deployment(10, surge=3), [2], 5, 10),
    (deployment(5, strategy="Recreate"), [5], 0, 5),  # Recreate: everything at once
])
def test_new_rs_new_replicas(d: Obj, rss: list[int], new_size: int, expected: int) -> None:
    new = rs("new", new_size, created=0)
    olds = [rs(f"o{i}", n) for i, n in enumerate(rss)]
    assert r.new_rs_new_replicas(d, [*olds, new], new) == expected


# Kubernetes' TestScale cases: maxSurge 0 and maxUnavailable 0 (so 1 after the fencepost);
# every ReplicaSet was annotated with max-replicas = the old size.
@pytest.mark.parametrize(("old_size", "new_size", "sizes", "expected"), [
    # 5 -> 10: v2 2 * 10/5 = 4, v1 3 * 10/5 = 6
    (5, 10, {"v2": 2, "v1": 3}, {"v2": 4, "v1": 6}),
    # 5 -> 3: v1 round(3 * 3/5 = 1.8) = 2, v2 round(2 * 3/5 = 1.2) = 1
    (5, 3, {"v2": 2, "v1": 3}, {"v2": 1, "v1": 2}),
    # 9 -> 4: v2 round(8 * 4/9 = 3.56) = 4 (-4), v1 round(1 * 4/9 = 0.44) = 0 (-1)
    (9, 4, {"v2": 8, "v1": 1}, {"v2": 4, "v1": 0}),
    # 7 -> 10: v2 round(3 * 10/7 = 4.29) = 4, v3 round(2 * 10/7 = 2.86) = 3, v1 the last +1
    (7, 10, {"v3": 2, "v2": 3, "v1": 2}, {"v3": 3, "v2": 4, "v1": 3}),
    # 13 -> 8: v2 round(8 * 8/13 = 4.92) = 5, v1 round(3 * 8/13 = 1.85) = 2, v3 -1
    (13, 8, {"v3": 2, "v2": 8, "v1": 3}, {"v3": 1, "v2": 5, "v1": 2}),
    # Leftovers go to the largest (ties: the newest when growing, the oldest when shrinking).
    (3, 4, {"v3": 1, "v2": 1, "v1": 1}, {"v3": 2, "v2": 1, "v1": 1}),
    (3, 2, {"v3": 1, "v2": 1, "v1": 1}, {"v3": 1, "v2": 1, "v1": 0}),
])
def test_proportional_scaling(old_size: int, new_size: int, sizes: dict[str, int],
                              expected: dict[str, int]) -> None:
    d = deployment(new_size, surge=0, unavailable=0)
    ages = {"v3": -10, "v2": -20, "v1": -30}
    rss = [rs(n, size, created=ages[n], max_replicas=old_size) for n, size in sizes.items()]
    got = {r.name_of(x): size for x, size in r.proportional_sizes(d, rss)}
    assert got == expected


def test_find_active_or_latest() -> None:
    new, old1, old2 = rs("new", 0, created=-1), rs("o1", 0, created=-50), rs("o2", 0,
                                                                            created=-20)
    assert r.find_active_or_latest(new, [old1, old2]) is new      # none active: the new
    assert r.find_active_or_latest(None, [old1, old2]) is old2    # ... else the newest old
    old1["spec"]["replicas"] = 2
    assert r.find_active_or_latest(new, [old1, old2]) is old1     # the only active one
    new["spec"]["replicas"] = 1
    assert r.find_active_or_latest(new, [old1, old2]) is None     # two active: mid-rollout


# --- conditions and status ----------------------------------------------------------------------

def test_set_condition_keeps_times_when_nothing_changes() -> None:
    status: Obj = {}
    r.set_condition(status, r.new_condition(r.AVAILABLE, "True", r.MIN_AVAILABLE, "m", NOW))
    r.set_condition(status, r.new_condition(r.AVAILABLE, "True", r.MIN_AVAILABLE, "m", NOW + 9))
    assert status["conditions"][0]["lastUpdateTime"] == ts(0)
    # Same status, new reason: updated, but the transition time is kept.
    r.set_condition(status, r.new_condition(r.AVAILABLE, "True", "Other", "m", NOW + 9))
    assert status["conditions"][0]["lastUpdateTime"] == ts(9)
    assert status["conditions"][0]["lastTransitionTime"] == ts(0)


def test_status_from_replica_sets() -> None:
    d = deployment(4, surge=1, unavailable=1, generation=3)
    new, old = rs("new", 2, available=1, actual=2), rs("old", 3, available=3)
    status = r.calculate_status([old, new], new, d, NOW)
    # replicas: 2 + 3 actual; updated: the new one's 2; available 1 + 3 = 4;
    # unavailable: 5 wanted in spec - 4 available = 1; Available: 4 >= 4 - 1.
    assert {k: v for k, v in status.items() if k != "conditions"} == {
        "observedGeneration": 3, "replicas": 5, "updatedReplicas": 2, "readyReplicas": 4,
        "availableReplicas": 4, "unavailableReplicas": 1}
    [available] = status["conditions"]
    assert (available["type"], available["status"], available["reason"]) == \
        ("Available", "True", r.MIN_AVAILABLE)


@pytest.mark.parametrize(("new_available", "old_status", "reason", "cond_status"), [
    # Everything updated and available: complete.
    (3, {}, r.NEW_RS_AVAILABLE, "True"),
    # One more available than last time: progress, the update time moves.
    (2, {"replicas": 3, "updatedReplicas": 3, "availableReplicas": 1}, r.RS_UPDATED, "True"),
    # No progress since the last update, 600 s deadline passed: timed out.
    (2, {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 2, "availableReplicas": 2},
     r.TIMED_OUT, "False"),
])
def test_rollout_status_progress(new_available: int, old_status: Obj, reason: str,
                                 cond_status: str) -> None:
    stale = r.new_condition(r.PROGRESSING, "True", r.RS_UPDATED, "x", NOW - 601)
    d = deployment(3, status={**old_status, "observedGeneration": 1, "conditions": [stale]})
    new = rs("new", 3, available=new_available)
    status = r.rollout_status([new], new, d, NOW)
    cond = r.get_condition(status, r.PROGRESSING)
    assert (cond["reason"], cond["status"]) == (reason, cond_status)
    if reason == r.RS_UPDATED:
        assert cond["lastUpdateTime"] == ts(0) and cond["lastTransitionTime"] == ts(-601)
        assert cond["message"] == 'ReplicaSet "new" is progressing.'
    if reason == r.TIMED_OUT:
        assert cond["message"] == 'ReplicaSet "new" has timed out progressing.'
        assert r.stuck_recheck(d, status, NOW) is None


def test_stuck_recheck_is_the_deadline() -> None:
    cond = r.new_condition(r.PROGRESSING, "True", r.RS_UPDATED, "x", NOW - 100)
    d = deployment(3, status={"conditions": [cond]})
    # Updated 100 s ago, 600 s deadline: look again in 500 s (just after).
    assert r.stuck_recheck(d, d["status"], NOW) == pytest.approx(500.1)


def test_replica_failure_moves_to_the_deployment() -> None:
    new = rs("new", 3, available=0, actual=0)
    new["status"]["conditions"] = [{"type": "ReplicaFailure", "status": "True",
                                    "lastTransitionTime": ts(0), "reason": "FailedCreate",
                                    "message": "forbidden"}]
    status = r.rollout_status([new], new, deployment(3), NOW)
    failure = r.get_condition(status, r.REPLICA_FAILURE)
    assert failure["reason"] == "FailedCreate" and failure["lastUpdateTime"] == ts(0)


def test_cleanup_victims() -> None:
    d = deployment(revisionHistoryLimit=1)
    olds = [rs("r1", 0, revision=1), rs("r2", 0, revision=2), rs("r3", 0, revision=3),
            rs("busy", 1, revision=0)]
    # 4 old, limit 1: the 3 lowest revisions are candidates; "busy" still has a replica.
    assert [r.name_of(x) for x in r.cleanup_victims(d, olds)] == ["r1", "r2"]
    assert r.cleanup_victims(deployment(), olds) == []  # 4 <= 10


def test_old_pods_running() -> None:
    new, old = rs("new", 1), rs("old", 0, actual=0)
    running = {"status": {"phase": "Running"}}
    done = {"status": {"phase": "Succeeded"}}
    assert r.old_pods_running(new, [old], {"uid-old": [running]})
    assert not r.old_pods_running(new, [old], {"uid-old": [done], "uid-new": [running]})
    assert r.old_pods_running(new, [rs("old", 0, actual=1)], {})  # status still counts one


# --- whole syncs --------------------------------------------------------------------------------

def kinds(plan: r.Plan) -> list[str]:
    return [type(a).__name__ for a in plan.actions]


def test_first_sync_creates_the_replica_set() -> None:
    d = deployment(3, surge=1, annotations={r.CHANGE_CAUSE: "first"})
    plan = r.plan(d, [], now=NOW)
    assert kinds(plan) == ["CreateReplicaSet", "RecordEvent", "UpdateStatus", "SetRevision"]
    created = plan.actions[0].rs
    pod_hash = r.compute_hash(d["spec"]["template"], None)
    assert created["metadata"]["name"] == f"web-{pod_hash}"
    assert created["spec"]["replicas"] == 3
    assert created["spec"]["selector"]["matchLabels"] == {"app": "web", r.HASH_LABEL: pod_hash}
    assert created["spec"]["template"]["metadata"]["labels"][r.HASH_LABEL] == pod_hash
    assert created["metadata"]["annotations"] == {
        r.CHANGE_CAUSE: "first", r.REVISION: "1", r.DESIRED_REPLICAS: "3",
        r.MAX_REPLICAS: "4"}
    assert created["metadata"]["ownerReferences"][0]["uid"] == "uid-web"
    assert plan.actions[1] == r.RecordEvent(
        "Normal", "ScalingReplicaSet", f"Scaled up replica set web-{pod_hash} from 0 to 3")
    status = plan.actions[2].status
    cond = r.get_condition(status, r.PROGRESSING)
    assert (cond["reason"], cond["message"]) == (
        r.NEW_RS_CREATED, f'Created new replica set "web-{pod_hash}"')
    assert plan.actions[3] == r.SetRevision("1")


def test_hash_collision_bumps_the_count() -> None:
    d = deployment(3)
    pod_hash = r.compute_hash(d["spec"]["template"], None)
    foreign = rs(f"web-{pod_hash}", 1, image="other")
    foreign["metadata"]["ownerReferences"] = []
    plan = r.plan(d, [], {f"web-{pod_hash}": foreign}, now=NOW)
    assert kinds(plan) == ["UpdateStatus"]
    assert plan.actions[0].status["collisionCount"] == 1
    d["status"] = plan.actions[0].status
    again = r.plan(d, [], {f"web-{pod_hash}": foreign}, now=NOW)
    assert again.actions[0].rs["metadata"]["name"] == \
        f"web-{r.compute_hash(d['spec']['template'], 1)}"


class Cluster:
    """A simulated cluster for whole rollouts: ReplicaSet controllers that make pods at
    once, and pods that become available one step after they are made."""

    def __init__(self, d: Obj) -> None:
        self.d = d
        self.rss: dict[str, Obj] = {}
        self.pods: dict[str, tuple[int, int]] = {}  # name -> (pods, available)
        self.clock = NOW
        self.revision = ""

    def sync(self) -> r.Plan:
        plan = r.plan(self.d, list(self.rss.values()), pods_by_rs={
            f"uid-{n}": [{"status": {"phase": "Running"}}] * p
            for n, (p, _) in self.pods.items()}, now=self.clock)
        for action in plan.actions:
            if isinstance(action, r.CreateReplicaSet):
                new = copy.deepcopy(action.rs)
                name = r.name_of(new)
                new["metadata"].update(uid=f"uid-{name}", creationTimestamp=rfc3339(
                    self.clock), generation=1)
                new["status"] = {}
                self.rss[name] = new
                self.pods[name] = (0, 0)
            elif isinstance(action, r.UpdateReplicaSet):
                name = r.name_of(action.rs)
                status = self.rss[name]["status"]
                self.rss[name] = copy.deepcopy(action.rs)
                self.rss[name]["status"] = status
            elif isinstance(action, r.DeleteReplicaSet):
                del self.rss[action.name]
                self.pods.pop(action.name, None)
            elif isinstance(action, r.UpdateStatus):
                self.d["status"] = copy.deepcopy(action.status)
            elif isinstance(action, r.SetRevision):
                self.d["metadata"]["annotations"][r.REVISION] = action.revision
        return plan

    def tick(self) -> None:
        """Pods made last tick become available; ReplicaSets make or delete pods (the
        unavailable first) and report it."""
        self.clock += 1
        for name, rs_obj in self.rss.items():
            pods, available = self.pods[name]
            available = pods  # last tick's pods are up now
            want = r.replicas(rs_obj)
            available = min(available, want)
            self.pods[name] = (want, available)
            rs_obj["status"] = {"replicas": want, "readyReplicas": available,
                                "availableReplicas": available, "observedGeneration": 1}

    def available(self) -> int:
        return sum(a for _, a in self.pods.values())

    def settle(self, steps: int = 50, check: Any = None) -> int:
        for step in range(steps):
            plan = self.sync()
            if check:
                check(self)
            if not plan.actions:
                self.tick()
                if not self.sync().actions and all(
                        r.replicas(x) == x["status"].get("replicas", 0)
                        == x["status"].get("availableReplicas", 0) for x in self.rss.values()):
                    return step
            self.tick()
            if check:
                check(self)
        raise AssertionError("the rollout did not settle")


@pytest.mark.parametrize(("replicas", "surge", "unavailable"), [
    (3, 1, 0), (4, 1, 1), (10, "25%", "25%"), (5, 0, 2), (6, "50%", 0), (1, 0, 1),
])
def test_rolling_update_keeps_availability_and_surge(replicas: int, surge: Any,
                                                     unavailable: Any) -> None:
    d = deployment(replicas, surge=surge, unavailable=unavailable)
    c = Cluster(d)
    c.settle()
    assert c.available() == replicas
    most = replicas + r.max_surge(d)
    least = replicas - r.max_unavailable(d)

    def check(cluster: Cluster) -> None:
        assert sum(r.replicas(x) for x in cluster.rss.values()) <= most
        assert cluster.available() >= least

    d["spec"]["template"]["spec"]["containers"][0]["image"] = "v2"
    d["metadata"]["generation"] = 2
    c.settle(check=check)
    new = r.find_new_rs(d, c.rss.values())
    assert new is not None and r.replicas(new) == replicas and c.available() == replicas
    assert all(r.replicas(x) == 0 for x in c.rss.values() if x is not new)
    assert d["metadata"]["annotations"][r.REVISION] == "2"
    assert r.get_condition(d["status"], r.PROGRESSING)["reason"] == r.NEW_RS_AVAILABLE
    assert d["status"]["observedGeneration"] == 2


def test_recreate_scales_down_before_up() -> None:
    d = deployment(3, strategy="Recreate")
    c = Cluster(d)
    c.settle()
    d["spec"]["template"]["spec"]["containers"][0]["image"] = "v2"
    d["metadata"]["generation"] = 2
    plan = c.sync()
    # Old ReplicaSet to 0 first; no new ReplicaSet while its pods run.
    assert [type(a).__name__ for a in plan.actions][:2] == ["UpdateReplicaSet", "RecordEvent"]
    assert len(c.rss) == 1
    c.sync()
    assert len(c.rss) == 1  # pods not gone yet
    c.tick()
    c.sync()  # old pods gone: the new ReplicaSet is made with all replicas at once
    new = r.find_new_rs(d, c.rss.values())
    assert new is not None and r.replicas(new) == 3
    c.settle()
    assert c.available() == 3


def test_paused_deployment_does_not_roll_out_but_scales() -> None:
    d = deployment(3)
    c = Cluster(d)
    c.settle()
    d["spec"]["paused"] = True
    d["spec"]["template"]["spec"]["containers"][0]["image"] = "v2"
    d["spec"]["replicas"] = 5
    d["metadata"]["generation"] = 2
    c.settle()
    assert len(c.rss) == 1 and r.replicas(next(iter(c.rss.values()))) == 5
    cond = r.get_condition(d["status"], r.PROGRESSING)
    assert (cond["status"], cond["reason"]) == ("Unknown", r.PAUSED)
    d["spec"]["paused"] = False
    d["metadata"]["generation"] = 3
    c.sync()
    assert r.get_condition(d["status"], r.PROGRESSING)["reason"] in (r.RESUMED, r.NEW_RS_CREATED,
                                                                     r.RS_UPDATED)
    c.settle()
    assert len(c.rss) == 2 and c.available() == 5


def test_scaling_mid_rollout_is_proportional() -> None:
    d = deployment(10, surge=3, unavailable=2)
    c = Cluster(d)
    c.settle()
    d["spec"]["template"]["spec"]["containers"][0]["image"] = "v2"
    d["metadata"]["generation"] = 2
    c.sync()  # new ReplicaSet at 3 (surge), old at 10
    c.tick()
    c.sync()
    sizes = {n: r.replicas(x) for n, x in c.rss.items()}
    total = sum(sizes.values())
    d["spec"]["replicas"] = 20
    d["metadata"]["generation"] = 3
    c.sync()
    # 20 + ceil(25% ... surge is 3 here): allowed 23; every ReplicaSet grows by its share.
    grown = {n: r.replicas(x) for n, x in c.rss.items()}
    assert sum(grown.values()) == 23
    for name, size in sizes.items():
        assert grown[name] >= size and grown[name] == pytest.approx(size * 23 / total, abs=1)
    c.settle()
    assert c.available() == 20


def test_revision_history_limit_deletes_old_replica_sets() -> None:
    d = deployment(2, revisionHistoryLimit=1)
    c = Cluster(d)
    c.settle()
    for generation, image in enumerate(("v2", "v3", "v4"), start=2):
        d["spec"]["template"]["spec"]["containers"][0]["image"] = image
        d["metadata"]["generation"] = generation
        c.settle()
    # The new one and one old one are left (revisions 4 and 3).
    assert sorted(r.revision(x) for x in c.rss.values()) == [3, 4]


def test_rollback_reuses_the_old_replica_set() -> None:
    d = deployment(2)
    c = Cluster(d)
    c.settle()
    first = next(iter(c.rss))
    d["spec"]["template"]["spec"]["containers"][0]["image"] = "v2"
    d["metadata"]["generation"] = 2
    c.settle()
    d["spec"]["template"]["spec"]["containers"][0]["image"] = "v1"  # what `undo` patches
    d["metadata"]["generation"] = 3
    c.settle()
    assert len(c.rss) == 2 and r.replicas(c.rss[first]) == 2
    annotations = c.rss[first]["metadata"]["annotations"]
    assert annotations[r.REVISION] == "3" and annotations[r.REVISION_HISTORY] == "1"
    assert d["metadata"]["annotations"][r.REVISION] == "3"


def test_progress_deadline_exceeded() -> None:
    d = deployment(2, progressDeadlineSeconds=30)
    c = Cluster(d)
    c.settle()
    d["spec"]["template"]["spec"]["containers"][0]["image"] = "broken"
    d["metadata"]["generation"] = 2
    plan = c.sync()
    assert plan.requeue_after == pytest.approx(30.1)
    c.clock += 31  # the new pods never come up
    c.sync()
    cond = r.get_condition(d["status"], r.PROGRESSING)
    assert (cond["status"], cond["reason"]) == ("False", r.TIMED_OUT)
