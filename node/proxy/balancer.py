"""Which backend a new connection goes to (pure: no I/O, the clock is passed in).

The rules of kube-proxy's userspace LoadBalancerRR:
- Round robin over a service port's ready backends: each pick takes the backend at the
  port's index and advances it by one.
- sessionAffinity ClientIP: a client IP whose last pick for the port is younger than the
  timeout gets the same backend again, and the pick refreshes its age (a sliding window;
  exactly `timeout` old counts as expired). Any other pick is recorded as the client's.
- The next backend when a connect fails: the caller passes the backends it already tried
  as `exclude`; the pick skips them (also the client's sticky one - that one just failed)
  and the new choice becomes the client's. Once every backend was tried there is none.
- New backends (`update`): a port whose list is unchanged keeps its index and sticky
  clients; otherwise its index restarts at `start(len)` (random across nodes in
  production, so that every node's proxy does not send its first connection to the same
  pod) and sticky clients of backends that are gone are forgotten. Ports no longer served
  are dropped with their sticky clients.

Memory is bounded by `sweep(now)`, which drops expired sticky entries; the proxier calls
it periodically.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from .rules import Backend, Policy, ServicePortName


@dataclass
class _Affinity:
    backend: Backend
    last_used: float


@dataclass
class _PortState:
    backends: tuple[Backend, ...]
    policy: Policy
    index: int = 0
    sticky: dict[str, _Affinity] = field(default_factory=dict)


def _first(_: int) -> int:
    return 0


class Balancer:
    def __init__(self, start: Callable[[int], int] = _first) -> None:
        # start(n) -> the first index for a new list of n backends (n >= 1).
        self._start = start
        self._ports: dict[ServicePortName, _PortState] = {}

    def update(self, backends: Mapping[ServicePortName, tuple[Backend, ...]],
               policies: Mapping[ServicePortName, Policy]) -> None:
        """Replace every port's backends and policy (ports missing from both are dropped)."""
        ports: dict[ServicePortName, _PortState] = {}
        for spn in set(backends) | set(policies):
            new = tuple(backends.get(spn, ()))
            pol = policies.get(spn, Policy())
            state = self._ports.get(spn)
            if state is None:
                state = _PortState(new, pol, self._start(len(new)) if new else 0)
            elif state.backends != new:
                state.backends = new
                state.index = self._start(len(new)) if new else 0
                alive = set(new)
                state.sticky = {ip: a for ip, a in state.sticky.items() if a.backend in alive}
            if state.policy != pol:
                state.policy = pol
                if pol.affinity_seconds is None:
                    state.sticky = {}
            ports[spn] = state
        self._ports = ports

    def backends(self, spn: ServicePortName) -> tuple[Backend, ...]:
        state = self._ports.get(spn)
        return state.backends if state else ()

    def pick(self, spn: ServicePortName, client_ip: str, now: float,
             exclude: Collection[Backend] = ()) -> Backend | None:
        """The backend for a new connection from `client_ip`, or None when the port has
        no backend left to try."""
        state = self._ports.get(spn)
        if state is None or not state.backends:
            return None
        timeout = state.policy.affinity_seconds
        if timeout is not None:
            sticky = state.sticky.get(client_ip)
            if sticky is not None and sticky.backend not in exclude \
                    and now - sticky.last_used < timeout:
                sticky.last_used = now
                return sticky.backend
        n = len(state.backends)
        for step in range(n):
            candidate = state.backends[(state.index + step) % n]
            if candidate not in exclude:
                state.index = (state.index + step + 1) % n
                if timeout is not None:
                    state.sticky[client_ip] = _Affinity(candidate, now)
                return candidate
        return None

    def sweep(self, now: float) -> int:
        """Forget expired sticky clients; returns how many."""
        dropped = 0
        for state in self._ports.values():
            timeout = state.policy.affinity_seconds
            if timeout is None or not state.sticky:
                continue
            expired = [ip for ip, a in state.sticky.items() if now - a.last_used >= timeout]
            for ip in expired:
                del state.sticky[ip]
            dropped += len(expired)
        return dropped

    def sticky_clients(self, spn: ServicePortName) -> dict[str, Backend]:
        state = self._ports.get(spn)
        return {ip: a.backend for ip, a in state.sticky.items()} if state else {}
