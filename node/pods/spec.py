"""From a Pod (JSON dict) and inputs the caller resolved, the specs the runtime is asked to run.

Role: the kubelet's generatePodSandboxConfig, generateContainerConfig and
makeEnvironmentVariables. The caller (the agent) fetches what a pod refers to - ConfigMaps
and Secrets through `EnvSources`, volume directories prepared per `volume_plan` - and this
module turns it into SandboxSpec / ContainerSpec without touching anything itself.

Invariants:
- Pure: no I/O, no clock. Same inputs, same specs (env order is deterministic).
- A container that cannot be configured raises `ConfigError` whose message is the kubelet's
  (`configmap "x" not found`, `couldn't find key k in ConfigMap ns/x`, ...): the agent reports
  it as the waiting reason CreateContainerConfigError, as the kubelet does.
- `container_hash` covers only what may change in a running pod (name and image, as the
  kubelet's HashContainer): a new bramble version that defaults more fields must not
  restart every container on the node.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bramble.kube.quantity import parse_quantity, to_int, to_milli
from bramble.node.pods import Obj, format_pod
from bramble.node.runtime.types import (
    LABEL_CONTAINER_HASH,
    LABEL_CONTAINER_NAME,
    LABEL_INIT,
    LABEL_MANAGED,
    LABEL_POD_NAME,
    LABEL_POD_NAMESPACE,
    LABEL_POD_UID,
    LABEL_RESTART_COUNT,
    ContainerSpec,
    Mount,
    PortMapping,
    SandboxSpec,
)

CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"
# Volume kinds whose contents the kubelet always mounts read-only.
READ_ONLY_KINDS = frozenset({"configMap", "secret", "downwardAPI", "projected"})
# Volume kinds `volume_plan` describes in full; others carry only their raw `source`.
SUPPORTED_VOLUME_KINDS = frozenset({"emptyDir", "hostPath", "configMap", "secret"})
HOSTNAME_MAX_LENGTH = 63
MAX_DNS_SEARCH_PATHS = 32  # the kubelet's validation.MaxDNSSearchPaths

_SUBSCRIPTED = re.compile(r"^(metadata\.(?:labels|annotations))\['(.*)'\]$")


class ConfigError(Exception):
    """A container cannot be configured; str() is the kubelet's message for the event and
    for the waiting state's message (reason CreateContainerConfigError)."""

    reason = CREATE_CONTAINER_CONFIG_ERROR


# --- inputs the caller resolves ---------------------------------------------------------------


@dataclass(frozen=True)
class EnvSources:
    """ConfigMaps and Secrets of the pod's namespace, by name -> data. A name that is absent
    was not found. Secret values are already decoded (see `from_objects`)."""

    config_maps: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    secrets: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @classmethod
    def from_objects(cls, config_maps: Iterable[Obj] = (), secrets: Iterable[Obj] = ()
                     ) -> EnvSources:
        """From API objects: ConfigMap `data` (binaryData never reaches env, as in the
        kubelet) and Secret `data` base64-decoded (invalid UTF-8 replaced)."""
        cms = {_name(cm): dict(cm.get("data") or {}) for cm in config_maps}
        decoded: dict[str, dict[str, str]] = {}
        for secret in secrets:
            values = {}
            for key, value in (secret.get("data") or {}).items():
                try:
                    raw = base64.b64decode(value or "", validate=True)
                except (binascii.Error, ValueError):
                    raw = (value or "").encode()
                values[key] = raw.decode("utf-8", "replace")
            decoded[_name(secret)] = values
        return cls(config_maps=cms, secrets=decoded)


@dataclass(frozen=True)
class EnvReferences:
    """Which ConfigMaps and Secrets the pod's containers read for their environment."""

    config_maps: frozenset[str]
    secrets: frozenset[str]


@dataclass(frozen=True)
class KeyToPath:
    key: str
    path: str
    mode: int | None = None


@dataclass(frozen=True)
class VolumeNeed:
    """What the caller must prepare on the host for one pod volume before containers start.

    `kind` is the volume source's field name ("emptyDir", "hostPath", "configMap", "secret",
    or any other, e.g. "persistentVolumeClaim": then only `source` is filled and the caller
    decides whether it can serve it - see SUPPORTED_VOLUME_KINDS)."""

    name: str
    kind: str
    source: Mapping[str, Any] = field(default_factory=dict)
    # emptyDir
    memory: bool = False  # medium "Memory": a tmpfs
    size_limit: int | None = None  # bytes
    # hostPath
    path: str = ""
    host_path_type: str = ""  # "", DirectoryOrCreate, Directory, FileOrCreate, File, ...
    # configMap / secret
    source_name: str = ""
    items: tuple[KeyToPath, ...] = ()
    default_mode: int | None = None
    optional: bool = False


# --- names and hashes -------------------------------------------------------------------------


def sandbox_name(pod: Obj) -> str:
    """"<namespace>_<name>_<uid[:8]>": unique on the node, readable in `podman pod ps`."""
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace', '')}_{meta.get('name', '')}_{str(meta.get('uid', ''))[:8]}"


def container_name(pod: Obj, name: str, restart_count: int) -> str:
    """The Podman name of one generation of a container: the sandbox's name, the container's,
    and the restart count, so a restarted container never collides with its predecessor."""
    return f"{sandbox_name(pod)}_{name}_{restart_count}"


def container_hash(container: Obj) -> str:
    """FNV-1a (32 bit) of {"image", "name"} as JSON, in hex - kubelet's HashContainer fields.

    The pod spec is immutable but for images, so only those can change under a running pod."""
    data = json.dumps({"image": container.get("image", ""), "name": container.get("name", "")},
                      sort_keys=True, separators=(",", ":")).encode()
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return f"{value:08x}"


# --- $(VAR) expansion ---------------------------------------------------------------------------


def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    """Kubernetes' $(VAR) expansion (third_party/forked/golang/expansion): "$$" is a literal
    "$", "$(NAME)" is replaced when `lookup` knows NAME and kept verbatim otherwise, and
    anything else (a lone "$", "${X}", an unterminated "$(") is left as written."""
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    n = len(text)
    while cursor < n:
        if text[cursor] == "$" and cursor + 1 < n:
            out.append(text[checkpoint:cursor])
            nxt = text[cursor + 1]
            if nxt == "$":
                out.append("$")
                advance = 1
            elif nxt == "(":
                close = text.find(")", cursor + 2)
                if close == -1:
                    out.append("$(")
                    advance = 1
                else:
                    name = text[cursor + 2:close]
                    value = lookup(name)
                    out.append(f"$({name})" if value is None else value)
                    advance = close - cursor
            else:
                out.append("$" + nxt)
                advance = 1
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    out.append(text[checkpoint:])
    return "".join(out)


def _lookup_in(*maps: Mapping[str, str]) -> Callable[[str], str | None]:
    def lookup(name: str) -> str | None:
        for values in maps:
            if name in values:
                return values[name]
        return None

    return lookup


# --- environment ------------------------------------------------------------------------------


def env_references(pod: Obj) -> EnvReferences:
    """The ConfigMaps and Secrets the containers' env and envFrom name (for the caller to
    fetch before building container specs)."""
    cms: set[str] = set()
    secrets: set[str] = set()
    for container in _all_containers(pod):
        for source in container.get("envFrom") or []:
            if source.get("configMapRef"):
                cms.add(source["configMapRef"].get("name", ""))
            if source.get("secretRef"):
                secrets.add(source["secretRef"].get("name", ""))
        for env in container.get("env") or []:
            value_from = env.get("valueFrom") or {}
            if value_from.get("configMapKeyRef"):
                cms.add(value_from["configMapKeyRef"].get("name", ""))
            if value_from.get("secretKeyRef"):
                secrets.add(value_from["secretKeyRef"].get("name", ""))
    return EnvReferences(frozenset(cms), frozenset(secrets))


def container_env(pod: Obj, container: Obj, *, env_sources: EnvSources, node_name: str = "",
                  pod_ip: str = "", host_ip: str = "",
                  service_env: Mapping[str, str] | None = None,
                  node_allocatable: Mapping[str, Any] | None = None) -> list[tuple[str, str]]:
    """The container's environment as the kubelet builds it (makeEnvironmentVariables).

    envFrom first (sources in order, a source's keys sorted), then env in order; a later
    definition replaces an earlier one's value (keeping its place). A literal value expands
    $(VAR) against what is defined so far and the service variables. Service variables not
    overridden come last, sorted.
    """
    service_env = service_env or {}
    namespace = (pod.get("metadata") or {}).get("namespace", "")
    values: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix") or ""
        if source.get("configMapRef"):
            ref = source["configMapRef"]
            data = _source(env_sources.config_maps, ref, "configmap")
        elif source.get("secretRef"):
            ref = source["secretRef"]
            data = _source(env_sources.secrets, ref, "secret")
        else:
            continue
        if data is None:
            continue
        for key in sorted(data):
            values[prefix + key] = data[key]

    lookup = _lookup_in(values, service_env)
    for env in container.get("env") or []:
        name = env.get("name", "")
        value = env.get("value") or ""
        value_from = env.get("valueFrom")
        if value:
            value = expand(value, lookup)
        elif value_from:
            resolved = _value_from(pod, container, value_from, env_sources=env_sources,
                                   namespace=namespace, node_name=node_name, pod_ip=pod_ip,
                                   host_ip=host_ip, node_allocatable=node_allocatable)
            if resolved is None:  # an optional reference that is not there
                continue
            value = resolved
        values[name] = value

    result = list(values.items())
    result += [(k, v) for k, v in sorted(service_env.items()) if k not in values]
    return result


def _source(objects: Mapping[str, Mapping[str, str]], ref: Obj, kind: str
            ) -> Mapping[str, str] | None:
    name = ref.get("name", "")
    if name in objects:
        return objects[name]
    if ref.get("optional") is True:
        return None
    raise ConfigError(f'{kind} "{name}" not found')


def _value_from(pod: Obj, container: Obj, value_from: Obj, *, env_sources: EnvSources,
                namespace: str, node_name: str, pod_ip: str, host_ip: str,
                node_allocatable: Mapping[str, Any] | None) -> str | None:
    if value_from.get("fieldRef"):
        return field_ref_value(pod, value_from["fieldRef"].get("fieldPath", ""),
                               node_name=node_name, pod_ip=pod_ip, host_ip=host_ip)
    if value_from.get("resourceFieldRef"):
        return resource_field_value(pod, container, value_from["resourceFieldRef"],
                                    node_allocatable=node_allocatable)
    for field_name, objects, kind, label in (
            ("configMapKeyRef", env_sources.config_maps, "configmap", "ConfigMap"),
            ("secretKeyRef", env_sources.secrets, "secret", "Secret")):
        ref = value_from.get(field_name)
        if not ref:
            continue
        data = _source(objects, ref, kind)
        if data is None:
            return None
        key = ref.get("key", "")
        if key not in data:
            if ref.get("optional") is True:
                return None
            raise ConfigError(f"couldn't find key {key} in {label} {namespace}/{ref.get('name', '')}")
        return data[key]
    return ""


def field_ref_value(pod: Obj, path: str, *, node_name: str = "", pod_ip: str = "",
                    host_ip: str = "") -> str:
    """The downward API value of `fieldRef.fieldPath` (podFieldSelectorRuntimeValue)."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    match = _SUBSCRIPTED.match(path)
    if match:
        which = "labels" if match.group(1) == "metadata.labels" else "annotations"
        return str((meta.get(which) or {}).get(match.group(2), ""))
    simple = {
        "metadata.name": lambda: meta.get("name", ""),
        "metadata.namespace": lambda: meta.get("namespace", ""),
        "metadata.uid": lambda: meta.get("uid", ""),
        "spec.nodeName": lambda: spec.get("nodeName") or node_name,
        "spec.serviceAccountName": lambda: spec.get("serviceAccountName", ""),
        "status.podIP": lambda: pod_ip,
        "status.podIPs": lambda: pod_ip,
        "status.hostIP": lambda: host_ip,
        "status.hostIPs": lambda: host_ip,
    }
    if path in simple:
        return str(simple[path]())
    raise ConfigError(f"unsupported fieldPath: {path}")


def resource_field_value(pod: Obj, container: Obj, ref: Obj, *,
                         node_allocatable: Mapping[str, Any] | None = None) -> str:
    """`resourceFieldRef` (containerResourceRuntimeValue): the amount divided by the divisor,
    rounded up; cpu in millicores before dividing. An unset limit reads as the node's
    allocatable amount, as the kubelet defaults it for the downward API."""
    target = container
    other = ref.get("containerName")
    if other:
        found = [c for c in _all_containers(pod) if c.get("name") == other]
        if not found:
            raise ConfigError(f"container {other} not found")
        target = found[0]
    resource = ref.get("resource", "")
    part, _, name = resource.partition(".")
    if part not in ("limits", "requests") or name not in ("cpu", "memory", "ephemeral-storage"):
        raise ConfigError(f"unsupported container resource : {resource}")
    divisor = ref.get("divisor") or "1"
    if parse_quantity(divisor) == 0:
        divisor = "1"
    amount = ((target.get("resources") or {}).get(part) or {}).get(name)
    if amount is None and part == "limits":
        amount = (node_allocatable or {}).get(name)
        if amount is None:
            raise ConfigError(f"{resource} is not set and the node's allocatable {name} "
                              "is unknown")
    if amount is None:
        amount = 0
    if name == "cpu":
        return str(math.ceil(to_milli(amount) / to_milli(divisor)))
    return str(math.ceil(to_int(amount) / to_int(divisor)))


# --- container and sandbox specs -----------------------------------------------------------------


def container_spec(pod: Obj, container: Obj, *, init: bool, restart_count: int,
                   env_sources: EnvSources, volume_paths: Mapping[str, str], node_name: str,
                   pod_ip: str, host_ip: str, service_env: Mapping[str, str] | None = None,
                   node_allocatable: Mapping[str, Any] | None = None,
                   allow_privileged: bool = False) -> ContainerSpec:
    """The runtime spec of one generation (`restart_count`) of `container`.

    Raises ConfigError (kubelet's CreateContainerConfigError) for a missing ConfigMap,
    Secret or key, an unknown volume, a forbidden privileged container, a root user under
    runAsNonRoot, or a subPath that escapes its volume.
    """
    meta = pod.get("metadata") or {}
    name = container.get("name", "")
    env = container_env(pod, container, env_sources=env_sources, node_name=node_name,
                        pod_ip=pod_ip, host_ip=host_ip, service_env=service_env,
                        node_allocatable=node_allocatable)
    env_map = dict(env)
    lookup = _lookup_in(env_map)
    command = tuple(expand(str(part), lookup) for part in container.get("command") or [])
    args = tuple(expand(str(part), lookup) for part in container.get("args") or [])

    limits = (container.get("resources") or {}).get("limits") or {}
    memory = limits.get("memory")
    cpu = limits.get("cpu")
    user, read_only_rootfs, privileged = _security(pod, container, allow_privileged)

    labels = {
        LABEL_POD_UID: str(meta.get("uid", "")),
        LABEL_POD_NAME: str(meta.get("name", "")),
        LABEL_POD_NAMESPACE: str(meta.get("namespace", "")),
        LABEL_CONTAINER_NAME: name,
        LABEL_CONTAINER_HASH: container_hash(container),
        LABEL_RESTART_COUNT: str(restart_count),
        LABEL_INIT: "true" if init else "false",
        LABEL_MANAGED: "true",
    }
    return ContainerSpec(
        name=container_name(pod, name, restart_count),
        image=container.get("image", ""),
        labels=labels,
        command=command,
        args=args,
        env=tuple(env),
        working_dir=container.get("workingDir") or "",
        mounts=_mounts(pod, container, volume_paths, env_map),
        memory_limit=to_int(memory) if memory is not None else None,
        cpu_quota_millis=to_milli(cpu) if cpu is not None else None,
        user=user,
        read_only_rootfs=read_only_rootfs,
        privileged=privileged,
        stdin=bool(container.get("stdin")),
        tty=bool(container.get("tty")),
    )


def _security(pod: Obj, container: Obj, allow_privileged: bool) -> tuple[str, bool, bool]:
    pod_sc = (pod.get("spec") or {}).get("securityContext") or {}
    sc = container.get("securityContext") or {}

    def effective(key: str) -> Any:
        return sc[key] if sc.get(key) is not None else pod_sc.get(key)

    uid, gid, non_root = effective("runAsUser"), effective("runAsGroup"), effective("runAsNonRoot")
    privileged = sc.get("privileged") is True
    if privileged and not allow_privileged:
        uid_text = (pod.get("metadata") or {}).get("uid", "")
        raise ConfigError(f'pod with UID "{uid_text}" specified privileged container, '
                          "but is disallowed")
    if non_root is True and uid == 0:
        raise ConfigError("container's runAsUser breaks non-root policy "
                          f'(pod: "{format_pod(pod)}", container: {container.get("name", "")})')
    if gid is not None and uid is None:
        raise ConfigError("user group is specified without user or username")
    user = "" if uid is None else (str(uid) if gid is None else f"{uid}:{gid}")
    return user, sc.get("readOnlyRootFilesystem") is True, privileged


def _mounts(pod: Obj, container: Obj, volume_paths: Mapping[str, str],
            env: Mapping[str, str]) -> tuple[Mount, ...]:
    kinds = {v.get("name"): _volume_kind(v) for v in (pod.get("spec") or {}).get("volumes") or []}
    mounts = []
    cname = container.get("name", "")
    for vm in container.get("volumeMounts") or []:
        vname = vm.get("name", "")
        if vname not in volume_paths:
            raise ConfigError(f'cannot find volume "{vname}" to mount into container "{cname}"')
        sub_path = vm.get("subPath") or ""
        if vm.get("subPathExpr"):
            sub_path = _expand_sub_path(vm["subPathExpr"], env)
        if sub_path:
            if sub_path.startswith("/"):
                raise ConfigError(f"error SubPath `{sub_path}` must not be an absolute path")
            if ".." in sub_path.split("/"):
                raise ConfigError(f"unable to provision SubPath `{sub_path}`: "
                                  "must not contain '..'")
        read_only = vm.get("readOnly") is True or kinds.get(vname) in READ_ONLY_KINDS
        mounts.append(Mount(source=volume_paths[vname], target=vm.get("mountPath", ""),
                            read_only=read_only, sub_path=sub_path))
    return tuple(mounts)


def _expand_sub_path(expr: str, env: Mapping[str, str]) -> str:
    """ExpandContainerVolumeMounts: every $(VAR) must name a non-empty variable."""
    missing: set[str] = set()

    def lookup(name: str) -> str:
        value = env.get(name, "")
        if not value:
            missing.add(name)
        return value

    expanded = expand(expr, lookup)
    if missing:
        raise ConfigError(f"missing value for {', '.join(sorted(missing))}")
    return expanded


def sandbox_spec(pod: Obj, node_name: str, *, cluster_dns: Sequence[str] = (),
                 cluster_domain: str = "cluster.local", host_search: Sequence[str] = (),
                 cgroup_parent: str = "") -> SandboxSpec:
    """The pod's sandbox (Podman pod): name, hostname, labels, host ports and DNS.

    `node_name` is accepted for the agent's convenience; a host-network pod keeps the host's
    own hostname (the kubelet leaves it unset), so nothing here depends on it.
    `cluster_dns` are the cluster DNS servers (empty: none runs, ClusterFirst falls back to
    the host's resolver, as the kubelet does without --cluster-dns).
    """
    del node_name
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    host_network = spec.get("hostNetwork") is True
    servers, search, options = _dns(pod, cluster_dns, cluster_domain, host_search)
    return SandboxSpec(
        name=sandbox_name(pod),
        hostname="" if host_network else pod_hostname(pod),
        labels={
            LABEL_POD_UID: str(meta.get("uid", "")),
            LABEL_POD_NAME: str(meta.get("name", "")),
            LABEL_POD_NAMESPACE: str(meta.get("namespace", "")),
            LABEL_MANAGED: "true",
        },
        ports=() if host_network else host_ports(pod),
        host_network=host_network,
        dns_servers=servers,
        dns_search=search,
        dns_options=options,
        cgroup_parent=cgroup_parent,
    )


def pod_hostname(pod: Obj) -> str:
    """spec.hostname or the pod's name, cut to 63 characters without a trailing "-" or "."."""
    hostname = (pod.get("spec") or {}).get("hostname") or (pod.get("metadata") or {}).get(
        "name", "")
    if len(hostname) > HOSTNAME_MAX_LENGTH:
        hostname = hostname[:HOSTNAME_MAX_LENGTH].rstrip("-.")
    return hostname


def host_ports(pod: Obj) -> tuple[PortMapping, ...]:
    """Every app container port with a hostPort, protocol lowercased, duplicates once."""
    seen: dict[PortMapping, None] = {}
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            host_port = port.get("hostPort") or 0
            if host_port <= 0:
                continue
            mapping = PortMapping(container_port=int(port.get("containerPort", 0)),
                                  host_port=int(host_port),
                                  protocol=str(port.get("protocol") or "TCP").lower(),
                                  host_ip=port.get("hostIP") or "")
            seen.setdefault(mapping)
    return tuple(seen)


def _dns(pod: Obj, cluster_dns: Sequence[str], cluster_domain: str,
         host_search: Sequence[str]
         ) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    spec = pod.get("spec") or {}
    namespace = (pod.get("metadata") or {}).get("namespace", "")
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    host_network = spec.get("hostNetwork") is True
    servers: list[str] = []
    search: list[str] = []
    options: dict[str, str | None] = {}
    cluster_first = policy == "ClusterFirstWithHostNet" or (
        policy == "ClusterFirst" and not host_network)
    if cluster_first and cluster_dns:
        servers = list(cluster_dns)
        search = [f"{namespace}.svc.{cluster_domain}", f"svc.{cluster_domain}", cluster_domain,
                  *host_search]
        # As the kubelet: "svc.ns" has fewer than 5 dots, so the search path is tried
        # first and service names resolve without a trailing dot.
        options["ndots"] = "5"
    config = spec.get("dnsConfig") or {}
    servers = _unique(servers + list(config.get("nameservers") or []))
    search = _unique(search + list(config.get("searches") or []))[:MAX_DNS_SEARCH_PATHS]
    for option in config.get("options") or []:  # a later one of the same name wins
        if isinstance(option, Mapping) and option.get("name"):
            value = option.get("value")
            options[str(option["name"])] = None if value is None else str(value)
    return (tuple(servers), tuple(search),
            tuple(name if value is None else f"{name}:{value}"
                  for name, value in options.items()))


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


# --- volumes ------------------------------------------------------------------------------------


def volume_plan(pod: Obj) -> list[VolumeNeed]:
    """What to prepare on the host for each of the pod's volumes, in spec order."""
    needs = []
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        name = volume.get("name", "")
        kind = _volume_kind(volume)
        source = volume.get(kind) or {}
        if kind == "emptyDir":
            size = source.get("sizeLimit")
            needs.append(VolumeNeed(name, kind, source, memory=source.get("medium") == "Memory",
                                    size_limit=to_int(size) if size is not None else None))
        elif kind == "hostPath":
            needs.append(VolumeNeed(name, kind, source, path=source.get("path", ""),
                                    host_path_type=source.get("type") or ""))
        elif kind in ("configMap", "secret"):
            items = tuple(KeyToPath(i.get("key", ""), i.get("path", ""), i.get("mode"))
                          for i in source.get("items") or [])
            source_name = source.get("name" if kind == "configMap" else "secretName") or ""
            needs.append(VolumeNeed(name, kind, source, source_name=source_name, items=items,
                                    default_mode=source.get("defaultMode"),
                                    optional=source.get("optional") is True))
        else:
            needs.append(VolumeNeed(name, kind, source))
    return needs


def _volume_kind(volume: Obj) -> str:
    for key in volume:
        if key != "name":
            return key
    return "emptyDir"  # the API's default source


# --- helpers ---------------------------------------------------------------------------------------


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _all_containers(pod: Obj) -> list[Obj]:
    spec = pod.get("spec") or {}
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])
