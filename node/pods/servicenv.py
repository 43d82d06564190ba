"""The Kubernetes 1.0 service environment variables of a pod (pure).

As the kubelet's getServiceEnvVarMap and envvars.FromServices: a container sees, for every
Service of its namespace that has a ClusterIP when the pod starts (and "kubernetes" of the
default namespace, the master's, always unless its own namespace has one of that name):

    WEB_SERVICE_HOST=10.43.0.12        WEB_SERVICE_PORT=80       WEB_SERVICE_PORT_HTTP=80
    WEB_PORT=tcp://10.43.0.12:80       WEB_PORT_80_TCP=tcp://10.43.0.12:80
    WEB_PORT_80_TCP_PROTO=tcp          WEB_PORT_80_TCP_PORT=80   WEB_PORT_80_TCP_ADDR=10.43.0.12

Names are upper-cased with "-" as "_". The Docker-link style variables (WEB_PORT...) come
from the 1.0 design, which kept Docker's links compatible. spec.enableServiceLinks: false
drops all but the master's. Headless Services (clusterIP None) and ExternalName ones get
no variables. Variables are built once, at container start: later Services need DNS.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Obj = Mapping[str, Any]

MASTER_NAMESPACE = "default"
MASTER_SERVICES = frozenset({"kubernetes"})


def _ip_set(service: Obj) -> bool:
    ip = (service.get("spec") or {}).get("clusterIP")
    return bool(ip) and ip != "None"


def _name(text: str) -> str:
    return text.upper().replace("-", "_")


def _join(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def service_env(pod: Obj, services: Iterable[Obj]) -> dict[str, str]:
    """The service variables for `pod`, from all Services the node knows of."""
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    links = (pod.get("spec") or {}).get("enableServiceLinks", True) is not False
    chosen: dict[str, Obj] = {}
    for service in services:
        meta = service.get("metadata") or {}
        ns, name = meta.get("namespace") or "default", meta.get("name") or ""
        if not name or not _ip_set(service):
            continue
        if ns == MASTER_NAMESPACE and name in MASTER_SERVICES:
            chosen.setdefault(name, service)
        elif ns == namespace and links:
            chosen[name] = service  # the pod's own namespace wins over the master's
    env: dict[str, str] = {}
    for name in sorted(chosen):
        env.update(_variables(chosen[name]))
    return env


def _variables(service: Obj) -> dict[str, str]:
    spec = service.get("spec") or {}
    ports = [p for p in spec.get("ports") or [] if isinstance(p, Mapping)]
    prefix = _name((service.get("metadata") or {}).get("name") or "")
    ip = str(spec.get("clusterIP"))
    env = {f"{prefix}_SERVICE_HOST": ip}
    if not ports:
        return env
    env[f"{prefix}_SERVICE_PORT"] = str(ports[0].get("port"))
    for port in ports:
        if port.get("name"):
            env[f"{prefix}_SERVICE_PORT_{_name(port['name'])}"] = str(port.get("port"))
    for i, port in enumerate(ports):
        protocol = str(port.get("protocol") or "TCP")
        url = f"{protocol.lower()}://{_join(ip, int(port.get('port') or 0))}"
        if i == 0:
            env[f"{prefix}_PORT"] = url  # Docker special-cases the first port
        base = f"{prefix}_PORT_{port.get('port')}_{protocol.upper()}"
        env[base] = url
        env[f"{base}_PROTO"] = protocol.lower()
        env[f"{base}_PORT"] = str(port.get("port"))
        env[f"{base}_ADDR"] = ip
    return env
