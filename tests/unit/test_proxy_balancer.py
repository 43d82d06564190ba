"""Balancer: round robin, ClientIP affinity with timeout, next backend after a failure.

Each case is a script of steps against one service port; `now` is seconds on a fake clock."""

from __future__ import annotations

import pytest

from bramble.node.proxy.balancer import Balancer
from bramble.node.proxy.rules import Backend, Policy, ServicePortName

SPN = ServicePortName("default", "web", "")
A, B, C = Backend("10.42.0.1", 80), Backend("10.42.0.2", 80), Backend("10.42.0.3", 80)
RR = Policy()
STICKY = Policy(affinity_seconds=10)


def balancer(backends=(A, B, C), policy=RR, start=lambda n: 0) -> Balancer:
    bal = Balancer(start=start)
    bal.update({SPN: tuple(backends)}, {SPN: policy})
    return bal


PICK_CASES = [
    # (id, backends, policy, [(client, now, exclude, expected)])
    ("round robin cycles A B C A",
     (A, B, C), RR,
     [("c1", 0, (), A), ("c2", 0, (), B), ("c1", 0, (), C), ("c3", 0, (), A)]),
    ("next backend after a failure: A failed -> B, and the index moves past B",
     (A, B, C), RR,
     [("c1", 0, (), A), ("c1", 0, (A,), B), ("c2", 0, (), C)]),
    ("the index wraps while skipping: index at C, C and A excluded -> B",
     (A, B, C), RR,
     [("c1", 0, (), A), ("c1", 0, (), B), ("c1", 0, (C, A), B)]),
    ("every backend tried: none", (A, B), RR, [("c1", 0, (A, B), None)]),
    ("no backends: none", (), RR, [("c1", 0, (), None)]),
    ("affinity: a client keeps its first backend, others continue the round robin",
     (A, B, C), STICKY,
     [("c1", 0, (), A), ("c2", 1, (), B), ("c1", 2, (), A), ("c3", 3, (), C), ("c1", 4, (), A)]),
    ("affinity is a sliding window: used at 0, 9, 18 (each < 10 s after the last) -> kept",
     (A, B, C), STICKY,
     [("c1", 0, (), A), ("c2", 0, (), B), ("c1", 9, (), A), ("c1", 18, (), A)]),
    ("affinity expires at exactly the timeout: 0 -> 10 is 10 s, not < 10 -> round robin (B)",
     (A, B, C), STICKY,
     [("c1", 0, (), A), ("c1", 10, (), B), ("c1", 15, (), B)]),
    ("a failed sticky backend is replaced and the new one sticks",
     (A, B, C), STICKY,
     [("c1", 0, (), A), ("c1", 1, (A,), B), ("c1", 2, (), B)]),
]


@pytest.mark.parametrize("backends,policy,steps", [c[1:] for c in PICK_CASES],
                         ids=[c[0] for c in PICK_CASES])
def test_pick(backends, policy, steps):
    bal = balancer(backends, policy)
    for client, now, exclude, expected in steps:
        assert bal.pick(SPN, client, now, exclude) == expected, (client, now, exclude)


def test_unknown_port_has_no_backend():
    assert balancer().pick(ServicePortName("default", "other", ""), "c1", 0) is None


def test_start_index_is_taken_from_start():
    # start(3) = 2: the first pick is the third backend, then it wraps to the first.
    bal = balancer(start=lambda n: n - 1)
    assert [bal.pick(SPN, "c", 0) for _ in range(3)] == [C, A, B]


UPDATE_CASES = [
    # (id, policy, picks before, new backends, picks after); picks are (client, expected)
    ("unchanged list keeps the index: A B | C A", RR,
     [("c1", A), ("c1", B)], (A, B, C), [("c1", C), ("c1", A)]),
    ("changed list restarts at start() = 0: A B | A D", RR,
     [("c1", A), ("c1", B)], (A, Backend("10.42.0.4", 80)),
     [("c1", A), ("c1", Backend("10.42.0.4", 80))]),
    ("sticky clients of surviving backends stay; of removed ones are re-balanced", STICKY,
     # c1 -> A, c2 -> B; B removed: c1 keeps A, c2 gets the next in round robin of (A, C) at
     # index 0 -> A.
     [("c1", A), ("c2", B)], (A, C), [("c1", A), ("c2", A), ("c3", C)]),
    ("all backends gone: none", RR, [("c1", A)], (), [("c1", None)]),
]


@pytest.mark.parametrize("policy,before,new,after", [c[1:] for c in UPDATE_CASES],
                         ids=[c[0] for c in UPDATE_CASES])
def test_update(policy, before, new, after):
    bal = balancer(policy=policy)
    for client, expected in before:
        assert bal.pick(SPN, client, 0) == expected
    bal.update({SPN: new}, {SPN: policy})
    for client, expected in after:
        assert bal.pick(SPN, client, 1) == expected


def test_turning_affinity_off_forgets_sticky_clients():
    bal = balancer(policy=STICKY)
    assert bal.pick(SPN, "c1", 0) == A
    bal.update({SPN: (A, B, C)}, {SPN: RR})
    assert bal.sticky_clients(SPN) == {}
    assert bal.pick(SPN, "c1", 1) == B  # round robin went on from index 1


def test_ports_not_updated_are_dropped():
    bal = balancer()
    bal.update({}, {})
    assert bal.pick(SPN, "c1", 0) is None
    assert bal.backends(SPN) == ()


def test_sweep_drops_expired_sticky_clients():
    bal = balancer(policy=STICKY)
    bal.pick(SPN, "c1", 0)   # last used 0
    bal.pick(SPN, "c2", 5)   # last used 5
    # at 12: c1 idle 12 >= 10 -> dropped; c2 idle 7 < 10 -> kept
    assert bal.sweep(12) == 1
    assert bal.sticky_clients(SPN) == {"c2": B}
    # at 15: c2 idle 10 >= 10 -> dropped
    assert bal.sweep(15) == 1
    assert bal.sticky_clients(SPN) == {}


def test_round_robin_spreads_evenly():
    # 3 backends, 300 picks from 300 clients -> 100 each.
    bal = balancer()
    counts: dict[Backend, int] = {}
    for i in range(300):
        b = bal.pick(SPN, f"c{i}", 0)
        counts[b] = counts.get(b, 0) + 1
    assert counts == {A: 100, B: 100, C: 100}
