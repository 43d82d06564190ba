"""The resource types the API serves, and their REST shape.

One `ResourceType` per (group, version, plural). Everything that differs between kinds
and is not behaviour - names, scope, verbs, subresources, which fields can be selected -
is data here; behaviour (defaulting, validation, tables) lives in the modules named after
it and is looked up by `ResourceType.key` ("apps/v1/Deployment", "v1/Pod").
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    # Subresources besides the object itself: "status", "scale", "binding".
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    # Field selectors this type supports beyond metadata.name/metadata.namespace.
    selectable_fields: tuple[str, ...] = ()
    # Loss-tolerant, high-frequency types are kept in memory only (never on the SD card).
    volatile: bool = False
    # Fields that count as the "spec" for metadata.generation (bumped when they change).
    spec_fields: tuple[str, ...] = ("spec",)
    # Set for a version served by conversion (conversion.py): the version its objects are
    # stored in. "" for the stored version itself, which is every type in RESOURCES.
    storage_version: str = ""
    list_kind: str = field(default="", compare=False)

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """Stable id of the type: 'v1/Pod', 'apps/v1/Deployment'."""
        return f"{self.api_version}/{self.kind}"

    @property
    def qualified(self) -> str:
        """'pods', 'deployments.apps': the resource as error messages name it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    def path_prefix(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"


_WORKLOAD = ("all",)

RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "Namespace", "namespaces", False, ("ns",),
                 subresources=("status",), selectable_fields=("status.phase",),
                 verbs=("create", "delete", "get", "list", "patch", "update", "watch")),
    ResourceType("", "v1", "Pod", "pods", True, ("po",), _WORKLOAD,
                 subresources=("status", "binding", "log", "exec", "portforward"),
                 selectable_fields=("spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                                    "spec.serviceAccountName", "status.phase", "status.podIP",
                                    "status.nominatedNodeName")),
    ResourceType("", "v1", "Node", "nodes", False, ("no",), subresources=("status",),
                 selectable_fields=("spec.unschedulable",)),
    ResourceType("", "v1", "Service", "services", True, ("svc",), _WORKLOAD,
                 subresources=("status",), selectable_fields=("spec.clusterIP", "spec.type")),
    ResourceType("", "v1", "Endpoints", "endpoints", True, ("ep",), spec_fields=()),
    ResourceType("", "v1", "ConfigMap", "configmaps", True, ("cm",), spec_fields=()),
    ResourceType("", "v1", "Secret", "secrets", True, (), selectable_fields=("type",),
                 spec_fields=()),
    ResourceType("", "v1", "Event", "events", True, ("ev",), spec_fields=(),
                 selectable_fields=("involvedObject.kind", "involvedObject.namespace",
                                    "involvedObject.name", "involvedObject.uid",
                                    "involvedObject.apiVersion",
                                    "involvedObject.resourceVersion",
                                    "involvedObject.fieldPath", "reason", "source", "type",
                                    "reportingComponent")),
    # ReplicationController: the 1.0 ReplicaSet (equality selector as a plain map).
    ResourceType("", "v1", "ReplicationController", "replicationcontrollers", True, ("rc",),
                 _WORKLOAD, subresources=("status", "scale"),
                 selectable_fields=("status.replicas",)),
    ResourceType("apps", "v1", "Deployment", "deployments", True, ("deploy",), _WORKLOAD,
                 subresources=("status", "scale")),
    ResourceType("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), _WORKLOAD,
                 subresources=("status", "scale"), selectable_fields=("status.replicas",)),
    ResourceType("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), _WORKLOAD,
                 subresources=("status",)),
    ResourceType("batch", "v1", "Job", "jobs", True, (), _WORKLOAD,
                 subresources=("status",), selectable_fields=("status.successful",)),
    # HorizontalPodAutoscaler: stored as autoscaling/v2, also served as v1 (CONVERTED).
    ResourceType("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers",
                 True, ("hpa",), _WORKLOAD, subresources=("status",)),
    # Node heartbeats: renewed every few seconds by every node, worthless after a restart
    # (nodes renew again within seconds), so they never touch the SD card.
    ResourceType("coordination.k8s.io", "v1", "Lease", "leases", True, volatile=True,
                 spec_fields=()),
)

# Older versions of stored types, served by converting to and from the stored version at
# the REST boundary (conversion.py): one stored object, several representations.
CONVERTED: tuple[ResourceType, ...] = (
    ResourceType("autoscaling", "v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers",
                 True, ("hpa",), _WORKLOAD, subresources=("status",), storage_version="v2"),
)

# The API groups bramble serves besides core, in discovery order. A group listed with
# several versions offers them all; the first one listed is its preferred version.
GROUPS: tuple[tuple[str, str], ...] = (("apps", "v1"), ("batch", "v1"),
                                       ("coordination.k8s.io", "v1"),
                                       ("autoscaling", "v2"), ("autoscaling", "v1"))


class Registry:
    """Lookup of resource types by the ways requests and objects name them.

    `all` holds the stored types (one per stored resource: what controllers, metrics and
    the store index iterate); `served` adds the versions served by conversion, which
    requests and discovery can name too.
    """

    def __init__(self, resources: tuple[ResourceType, ...] = RESOURCES,
                 converted: tuple[ResourceType, ...] = CONVERTED) -> None:
        self.all = resources
        self.served = resources + converted
        self._by_path = {(r.group, r.version, r.plural): r for r in self.served}
        self._by_kind = {(r.api_version, r.kind): r for r in self.served}

    def by_path(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        return self._by_kind.get((api_version, kind))

    @property
    def volatile(self) -> frozenset[str]:
        """Store resources kept in memory only."""
        return frozenset(r.qualified for r in self.all if r.volatile)

    def in_group(self, group: str, version: str) -> list[ResourceType]:
        return [r for r in self.served if r.group == group and r.version == version]

    def storage_of(self, rt: ResourceType) -> ResourceType:
        """The stored type behind `rt` (`rt` itself unless it is served by conversion)."""
        if not rt.storage_version:
            return rt
        stored = self._by_path.get((rt.group, rt.storage_version, rt.plural))
        assert stored is not None, f"no stored version for {rt.key}"
        return stored
