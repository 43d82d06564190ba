"""The Endpoints controller: for every Service with a selector, an Endpoints object of the
same name listing the pods behind it.

Role: pkg/controller/endpoint. `desired_subsets` turns a Service and the pods its selector
picks into subsets as Kubernetes packs them: per service port the port number each pod
really listens on (a named targetPort is looked up in that pod's container ports; a pod
without that name is left out of that port only), ready pods in `addresses`, the others in
`notReadyAddresses` (all in `addresses` with publishNotReadyAddresses), then addresses that
offer the same ports grouped into one subset (RepackSubsets). `EndpointsController` writes
the result only when it differs from what is stored.

Invariants:
- Pods without an IP, finished pods, and (unless publishNotReadyAddresses) terminating pods
  are never endpoints.
- A Service without a selector is user-managed: its Endpoints are never written or deleted
  here. The Endpoints this controller writes name their Service as owner (controller
  reference), which is how a leftover one is told from a user's after its Service is gone:
  those are deleted (also at start-up, for Services deleted while the master was down).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from typing import Any

import orjson

from bramble.kube import selectors
from bramble.kube.errors import StatusError

from ..api.rest import Target, WriteOptions
from ..store import Change
from .base import Controller, Key, Watch, own_key
from .replicaset import controller_of, controller_ref, is_ready

log = logging.getLogger(__name__)

Obj = dict[str, Any]

SERVICES = "services"
ENDPOINTS = "endpoints"
COMPONENT = "endpoint-controller"
HEADLESS_LABEL = "service.kubernetes.io/headless"


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def service_selector(service: Obj) -> selectors.LabelSelector | None:
    """The pods a Service picks; None for a Service without a selector. An empty selector
    counts as none: Kubernetes stores it as nil (protobuf has no empty map)."""
    selector = _spec(service).get("selector")
    if not selector or not isinstance(selector, dict):
        return None
    return selectors.label_selector_from_set(selector)


def should_be_endpoint(pod: Obj, include_terminating: bool) -> bool:
    """endpointsliceutil.ShouldPodBeInEndpoints."""
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return False
    if not status.get("podIP") and not status.get("podIPs"):
        return False
    return include_terminating or not _meta(pod).get("deletionTimestamp")


def _is_ipv6(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).version == 6
    except ValueError:
        return False


def pod_address(service: Obj, pod: Obj) -> Obj | None:
    """podToEndpointAddressForService: the pod's IP of the Service's first family."""
    families = _spec(service).get("ipFamilies") or ["IPv4"]
    want_v6 = families[0] == "IPv6"
    status = pod.get("status") or {}
    ips = [p.get("ip", "") for p in status.get("podIPs") or []] or [status.get("podIP", "")]
    ip = next((i for i in ips if i and _is_ipv6(i) == want_v6), None)
    if ip is None:
        return None
    m, spec = _meta(pod), _spec(pod)
    address: Obj = {"ip": ip}
    if spec.get("hostname") and spec.get("subdomain") == _meta(service).get("name") \
            and m.get("namespace") == _meta(service).get("namespace"):
        address["hostname"] = spec["hostname"]
    if spec.get("nodeName"):
        address["nodeName"] = spec["nodeName"]
    address["targetRef"] = {"kind": "Pod", "namespace": m.get("namespace", ""),
                            "name": m.get("name", ""), "uid": m.get("uid", "")}
    return address


def find_port(pod: Obj, service_port: Obj) -> int | None:
    """podutil.FindPort: a numeric targetPort as is; a named one is the containerPort of
    that name and protocol in the pod (app containers, then sidecars)."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int) and not isinstance(target, bool):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = service_port.get("protocol") or "TCP"
    spec = _spec(pod)
    sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    for container in list(spec.get("containers") or []) + sidecars:
        for port in container.get("ports") or []:
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                return port.get("containerPort")
    return None


def endpoint_port(service_port: Obj, number: int) -> Obj:
    port: Obj = {"port": number, "protocol": service_port.get("protocol") or "TCP"}
    if service_port.get("name"):
        port["name"] = service_port["name"]
    if service_port.get("appProtocol"):
        port["appProtocol"] = service_port["appProtocol"]
    return port


def _address_key(address: Obj) -> tuple[str, str]:
    return address.get("ip", ""), (address.get("targetRef") or {}).get("uid", "")


def _port_key(port: Obj | None) -> tuple:
    if port is None:
        return ("", -1, "", "")  # the sentinel for a headless service without ports
    return (port.get("name", ""), port.get("port", 0), port.get("protocol", ""),
            port.get("appProtocol", ""))


def repack(entries: Iterable[tuple[Obj, Obj | None, bool]]) -> list[Obj]:
    """RepackSubsets over (address, port or None, ready) triples: addresses that offer the
    same set of ports (with the same readiness) share one subset. An address ready on any
    entry for a port is ready for it."""
    addresses: dict[tuple[str, str], Obj] = {}
    ports: dict[tuple, Obj | None] = {}
    by_port: dict[tuple, dict[tuple[str, str], bool]] = {}
    for address, port, ready in entries:
        akey, pkey = _address_key(address), _port_key(port)
        addresses.setdefault(akey, address)
        ports.setdefault(pkey, port)
        seen = by_port.setdefault(pkey, {})
        seen[akey] = seen.get(akey, False) or ready
    groups: dict[frozenset, list[tuple]] = {}
    for pkey, members in by_port.items():
        groups.setdefault(frozenset(members.items()), []).append(pkey)
    subsets = []
    for members, pkeys in groups.items():
        subset: Obj = {}
        ready = sorted((k for k, r in members if r))
        not_ready = sorted((k for k, r in members if not r))
        if ready:
            subset["addresses"] = [addresses[k] for k in ready]
        if not_ready:
            subset["notReadyAddresses"] = [addresses[k] for k in not_ready]
        real = [ports[p] for p in sorted(pkeys) if ports[p] is not None]
        if real:
            subset["ports"] = real
        subsets.append(subset)
    subsets.sort(key=lambda s: orjson.dumps(s, option=orjson.OPT_SORT_KEYS))
    return subsets


def desired_subsets(service: Obj, pods: Iterable[Obj]) -> list[Obj]:
    """The subsets for `service` over the pods its selector picked."""
    spec = _spec(service)
    publish = bool(spec.get("publishNotReadyAddresses"))
    service_ports = spec.get("ports") or []
    entries: list[tuple[Obj, Obj | None, bool]] = []
    for pod in pods:
        if not should_be_endpoint(pod, publish):
            continue
        address = pod_address(service, pod)
        if address is None:
            continue
        ready = publish or is_ready(pod)
        if not service_ports:
            # Only a headless service may have no ports; its pods are listed without any.
            if spec.get("clusterIP") == "None":
                entries.append((address, None, ready))
            continue
        for service_port in service_ports:
            number = find_port(pod, service_port)
            if number is not None:
                entries.append((address, endpoint_port(service_port, number), ready))
    return repack(entries)


def is_headless(service: Obj) -> bool:
    # Kubernetes' !IsServiceIPSet also counts "" - which there only an unallocated IP is;
    # bramble allocates none yet, so only an explicit "None" makes a Service headless.
    return _spec(service).get("clusterIP") == "None"


def desired_endpoints(service: Obj, pods: Iterable[Obj], current: Obj | None) -> Obj | None:
    """The Endpoints object to write for `service`, or None when `current` already is it.
    What else a user put on the object (annotations, other labels) is kept."""
    m = _meta(service)
    labels = dict(m.get("labels") or {})
    if is_headless(service):
        labels[HEADLESS_LABEL] = ""
    subsets = desired_subsets(service, pods)
    owner = controller_ref(service)
    if current is not None:
        cm = _meta(current)
        others = [r for r in cm.get("ownerReferences") or [] if not r.get("controller")]
        if ((current.get("subsets") or []) == subsets and (cm.get("labels") or {}) == labels
                and (cm.get("ownerReferences") or []) == [owner, *others]):
            return None
        metadata = {k: v for k, v in cm.items() if k not in ("labels", "ownerReferences")}
        metadata["ownerReferences"] = [owner, *others]
    else:
        metadata = {"name": m.get("name", ""), "namespace": m.get("namespace", ""),
                    "ownerReferences": [owner]}
    if labels:
        metadata["labels"] = labels
    endpoints: Obj = {"apiVersion": "v1", "kind": "Endpoints", "metadata": metadata}
    if subsets:
        endpoints["subsets"] = subsets
    return endpoints


def written_here(endpoints: Obj) -> bool:
    """Endpoints this controller wrote (a Service is their controller), as opposed to a
    user's: only those go when their Service is gone."""
    ref = controller_of(endpoints)
    return ref is not None and ref.get("kind") == "Service" and ref.get("apiVersion") == "v1"


class EndpointsController(Controller):
    name = COMPONENT
    workers = 4

    def __init__(self, api) -> None:
        super().__init__(api)
        self._endpoints_rt = self.target("", "v1", "endpoints").rt
        self.watches = [Watch(SERVICES, own_key), Watch("pods", self._pod_keys),
                        Watch(ENDPOINTS, own_key)]

    def initial_keys(self) -> Iterable[Key]:
        keys = {(e.namespace, e.name) for e in self.store.list(SERVICES)}
        keys |= {(e.namespace, e.name) for e in self.store.list(ENDPOINTS)}
        return sorted(keys)

    def _pod_keys(self, change: Change) -> Iterable[Key]:
        """The Services whose selector picks the pod before or after the change."""
        labels = [e.labels for e in (change.entry, change.prev) if e is not None]
        keys = []
        for entry in self.store.list(SERVICES, change.entry.namespace):
            selector = service_selector(entry.obj())
            if selector is not None and any(selector.matches(lb) for lb in labels):
                keys.append((entry.namespace, entry.name))
        return keys

    async def reconcile(self, key: Key) -> float | None:
        namespace, name = key  # type: ignore[misc]
        service_entry = self.store.get(SERVICES, namespace, name)
        current_entry = self.store.get(ENDPOINTS, namespace, name)
        current = current_entry.obj() if current_entry is not None else None
        if service_entry is None:
            if current is not None and written_here(current):
                await self._delete(namespace, name, _meta(current).get("uid", ""))
            return None
        service = service_entry.obj()
        selector = service_selector(service)
        if selector is None:
            return None  # user-managed Endpoints, if any
        pods = [e.obj() for e in self.store.list("pods", namespace)
                if selector.matches(e.labels)]
        desired = desired_endpoints(service, pods, current)
        if desired is None:
            return None
        target = Target(self._endpoints_rt, namespace, name)
        if current is None:
            try:
                await self.api.create(Target(self._endpoints_rt, namespace), desired,
                                      WriteOptions(), self.identity)
            except StatusError as err:
                if err.code == 403 and "being terminated" in err.message:
                    return None  # the namespace is going away, the Service with it
                raise
        else:
            await self.api.update(target, desired, WriteOptions(), self.identity)
        return None

    async def _delete(self, namespace: str, name: str, uid: str) -> None:
        try:
            await self.api.delete(Target(self._endpoints_rt, namespace, name),
                                  {"preconditions": {"uid": uid}}, self.identity)
        except StatusError as err:
            if err.code not in (404, 409):
                raise
