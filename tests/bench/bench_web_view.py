"""What the status page's view costs the master: prints figures, asserts nothing.

Builds a cluster-sized snapshot in memory (nodes, pods, Deployments, Services, Events as
the store would hold them) and times view.build + encoding, which live.py runs at most
every 0.5 s while pages are open, once for all of them. Also prints the encoded size (what
each SSE message carries).

    python tests/bench/bench_web_view.py [--nodes 10] [--pods 300] [--events 1000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bramble.master.web import view  # noqa: E402
from bramble.master.web.history import UsageHistory  # noqa: E402

NOW = datetime.now(UTC)


def ts(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def snapshot(nodes: int, pods: int, events: int) -> view.Snapshot:
    history = UsageHistory()
    node_objs, usage = [], {}
    for i in range(nodes):
        name = f"pi{i}"
        node_objs.append({"metadata": {"name": name, "creationTimestamp": ts(86400),
                                       "labels": {"kubernetes.io/arch": "arm64"}},
                          "spec": {}, "status": {
                              "conditions": [{"type": "Ready", "status": "True"}],
                              "allocatable": {"cpu": "4", "memory": "3800Mi"},
                              "addresses": [{"type": "InternalIP",
                                             "address": f"192.168.1.{10 + i}"}]}})
        usage[name] = view.Usage(500, 1 << 30)
        for step in range(120):
            history.record(name, step % 100, 40, step * 30)
    pod_objs = [{"metadata": {"name": f"web-{i}", "namespace": "default",
                              "creationTimestamp": ts(600),
                              "ownerReferences": [{"kind": "ReplicaSet", "name": "web",
                                                   "controller": True}]},
                 "spec": {"nodeName": f"pi{i % max(nodes, 1)}",
                          "containers": [{"name": "web", "image": "nginx"}]},
                 "status": {"phase": "Running", "conditions": [
                     {"type": "Ready", "status": "True"}], "containerStatuses": [
                     {"name": "web", "ready": True, "restartCount": 0,
                      "state": {"running": {}}}]}} for i in range(pods)]
    deps = [{"metadata": {"name": f"d{i}", "namespace": "default", "generation": 1},
             "spec": {"replicas": 3}, "status": {"observedGeneration": 1, "replicas": 3,
                                                 "updatedReplicas": 3, "readyReplicas": 3,
                                                 "availableReplicas": 3}} for i in range(20)]
    svcs = [{"metadata": {"name": f"s{i}", "namespace": "default"},
             "spec": {"type": "NodePort", "clusterIP": f"10.43.0.{i}",
                      "ports": [{"port": 80, "nodePort": 30000 + i}]}} for i in range(20)]
    evs = [{"metadata": {"name": f"e{i}", "namespace": "default"}, "type": "Normal",
            "reason": "Pulled", "message": "pulled the image",
            "involvedObject": {"kind": "Pod", "name": f"web-{i}"},
            "lastTimestamp": ts(i)} for i in range(events)]
    return view.Snapshot(now=NOW, nodes=node_objs, pods=pod_objs, deployments=deps,
                         services=svcs, events=evs, usage=usage, history=history.of)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--pods", type=int, default=300)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    snap = snapshot(args.nodes, args.pods, args.events)
    times = []
    body = b""
    for _ in range(args.rounds):
        started = time.perf_counter()
        body = view.encode(view.build(snap))
        times.append(time.perf_counter() - started)
    # The store decodes each object on every computation too (Entry.obj()): time that.
    raws = [orjson.dumps(o) for o in snap.pods + snap.events + snap.nodes]
    started = time.perf_counter()
    for raw in raws:
        orjson.loads(raw)
    decode = time.perf_counter() - started
    print(f"view of {args.nodes} nodes, {args.pods} pods, {args.events} events: "
          f"build+encode median {statistics.median(times) * 1000:.1f} ms, "
          f"max {max(times) * 1000:.1f} ms; decoding the objects {decode * 1000:.1f} ms; "
          f"{len(body) / 1024:.1f} KiB per SSE message")


if __name__ == "__main__":
    main()
