"""The type schema of every kind bramble serves: Kubernetes v1.30 field names and merge rules.

One table drives three consumers: strict field validation (`unknown_fields`), the patch
engines (strategic merge needs `patchMergeKey`/`patchStrategy`, server-side apply needs
`listType`/`listMapKeys`), and the OpenAPI v3 documents kubectl reads (`openapi_components`).
Keeping them in one place is the point: a field the API accepts is a field kubectl explain shows
and a field the patches know how to merge.

Invariants:
- Field names, merge keys, patch strategies and list types are copied from k8s.io/api v1.30
  (types.go struct tags and `+listType` markers, cross-checked with client-go's
  structured-merge-diff schema), never invented. A list without a marker is atomic.
- Struct names are Kubernetes' Go type names; `OPENAPI_NAMES` gives their OpenAPI ids.
- Rarely used volume sources and deprecated node config are declared with type "any": their
  names are known (strict validation accepts them) but their content is not checked.
- The tables are constants; nothing here does I/O or keeps state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from bramble.kube.errors import FieldError, unknown_field


@dataclass(frozen=True)
class Field:
    """What one field holds and how patches merge it.

    type: "string" | "integer" | "number" | "boolean" | "quantity" | "int-or-string" |
          "time" | "bytes" | "object" | "array" | "map" | "any".
    ref: the struct of an "object", or of the elements/values of an "array"/"map";
         for "time" the wire format's OpenAPI type ("MicroTime"; default Time).
    items: the scalar type of the elements/values of an "array"/"map" of scalars.
    merge_key, strategy: the patchMergeKey and patchStrategy struct tags.
    list_type, list_map_keys: the +listType/+listMapKey markers (server-side apply).
    map_type: "atomic" for maps and selectors that apply replaces as a whole.
    default: the schema default, declared only where a list-map key relies on it.
    """

    type: str
    ref: str | None = None
    items: str | None = None
    merge_key: str | None = None
    strategy: str | None = None
    list_type: str | None = None
    list_map_keys: tuple[str, ...] = ()
    map_type: str | None = None
    default: Any = None


# Helper constructors: they keep each table row to one readable line.
STRING = Field("string")
INTEGER = Field("integer")
BOOLEAN = Field("boolean")
TIME = Field("time")
MICROTIME = Field("time", ref="MicroTime")
QUANTITY = Field("quantity")
INT_OR_STRING = Field("int-or-string")
ANY = Field("any")
STRINGS = Field("array", items="string", list_type="atomic")
# ContainerPort/ServicePort protocol: a list-map key that apply fills with its default.
PROTOCOL = Field("string", default="TCP")


def obj(ref: str, strategy: str | None = None) -> Field:
    return Field("object", ref=ref, strategy=strategy)


def atomic_list(ref: str | None = None, items: str | None = None) -> Field:
    return Field("array", ref=ref, items=items, list_type="atomic")


def keyed(ref: str, merge_key: str, *more_keys: str, strategy: str = "merge",
          list_type: str = "map") -> Field:
    """A list merged by `merge_key` (and, for apply, keyed by merge_key plus `more_keys`)."""
    keys = (merge_key, *more_keys) if list_type == "map" else ()
    return Field("array", ref=ref, merge_key=merge_key, strategy=strategy,
                 list_type=list_type, list_map_keys=keys)


def map_list(ref: str, *keys: str) -> Field:
    """A listType=map list with no patch strategy: strategic merge replaces it."""
    return Field("array", ref=ref, list_type="map", list_map_keys=keys)


def set_list(items: str = "string", strategy: str | None = None) -> Field:
    return Field("array", items=items, list_type="set", strategy=strategy)


def map_of(items: str | None = None, ref: str | None = None, atomic: bool = False) -> Field:
    return Field("map", items=items, ref=ref, map_type="atomic" if atomic else None)


def _kind(**fields: Field) -> dict[str, Field]:
    return {"apiVersion": STRING, "kind": STRING, "metadata": obj("ObjectMeta"), **fields}


def _condition(*extra: str) -> dict[str, Field]:
    row = {"lastTransitionTime": TIME, "message": STRING, "reason": STRING, "status": STRING,
           "type": STRING}
    row.update({name: TIME for name in extra})
    return row


def _container(ephemeral: bool = False) -> dict[str, Field]:
    row = {
        "args": STRINGS, "command": STRINGS,
        "env": keyed("EnvVar", "name"),
        "envFrom": atomic_list("EnvFromSource"),
        "image": STRING, "imagePullPolicy": STRING,
        "lifecycle": obj("Lifecycle"),
        "livenessProbe": obj("Probe"), "readinessProbe": obj("Probe"),
        "startupProbe": obj("Probe"),
        "name": STRING,
        # The merge key is containerPort alone (a TCP and a UDP port 53 collide in strategic
        # merge, a known Kubernetes wart); apply keys by (containerPort, protocol).
        "ports": keyed("ContainerPort", "containerPort", "protocol"),
        "resizePolicy": atomic_list("ContainerResizePolicy"),
        "resources": obj("ResourceRequirements"),
        "restartPolicy": STRING,
        "securityContext": obj("SecurityContext"),
        "stdin": BOOLEAN, "stdinOnce": BOOLEAN, "tty": BOOLEAN,
        "terminationMessagePath": STRING, "terminationMessagePolicy": STRING,
        "volumeDevices": keyed("VolumeDevice", "devicePath"),
        "volumeMounts": keyed("VolumeMount", "mountPath"),
        "workingDir": STRING,
    }
    if ephemeral:
        row["targetContainerName"] = STRING
    return row


_META = {
    "ObjectMeta": {
        "annotations": map_of("string"),
        "creationTimestamp": TIME,
        "deletionGracePeriodSeconds": INTEGER,
        "deletionTimestamp": TIME,
        "finalizers": set_list(strategy="merge"),
        "generateName": STRING,
        "generation": INTEGER,
        "labels": map_of("string"),
        "managedFields": atomic_list("ManagedFieldsEntry"),
        "name": STRING,
        "namespace": STRING,
        "ownerReferences": keyed("OwnerReference", "uid"),
        "resourceVersion": STRING,
        "selfLink": STRING,
        "uid": STRING,
    },
    "OwnerReference": {"apiVersion": STRING, "blockOwnerDeletion": BOOLEAN,
                       "controller": BOOLEAN, "kind": STRING, "name": STRING, "uid": STRING},
    "ManagedFieldsEntry": {"apiVersion": STRING, "fieldsType": STRING, "fieldsV1": ANY,
                           "manager": STRING, "operation": STRING, "subresource": STRING,
                           "time": TIME},
    "LabelSelector": {"matchExpressions": atomic_list("LabelSelectorRequirement"),
                      "matchLabels": map_of("string")},
    "LabelSelectorRequirement": {"key": STRING, "operator": STRING, "values": STRINGS},
    "Condition": {**_condition(), "observedGeneration": INTEGER},
    "DeleteOptions": {"apiVersion": STRING, "kind": STRING, "dryRun": STRINGS,
                      "gracePeriodSeconds": INTEGER, "orphanDependents": BOOLEAN,
                      "preconditions": obj("Preconditions"), "propagationPolicy": STRING},
    "Preconditions": {"resourceVersion": STRING, "uid": STRING},
}

# Volume sources bramble has no use for on a Pi: known names, unchecked content.
_OTHER_VOLUME_SOURCES = (
    "awsElasticBlockStore", "azureDisk", "azureFile", "cephfs", "cinder", "csi", "ephemeral",
    "fc", "flexVolume", "flocker", "gcePersistentDisk", "gitRepo", "glusterfs", "iscsi",
    "photonPersistentDisk", "portworxVolume", "quobyte", "rbd", "scaleIO", "storageos",
    "vsphereVolume",
)

_CORE = {
    # --- Namespace
    "Namespace": _kind(spec=obj("NamespaceSpec"), status=obj("NamespaceStatus")),
    "NamespaceSpec": {"finalizers": STRINGS},
    "NamespaceStatus": {"conditions": keyed("NamespaceCondition", "type"), "phase": STRING},
    "NamespaceCondition": _condition(),
    # --- Pod
    "Pod": _kind(spec=obj("PodSpec"), status=obj("PodStatus")),
    "PodTemplateSpec": {"metadata": obj("ObjectMeta"), "spec": obj("PodSpec")},
    "PodSpec": {
        "activeDeadlineSeconds": INTEGER,
        "affinity": obj("Affinity"),
        "automountServiceAccountToken": BOOLEAN,
        "containers": keyed("Container", "name"),
        "dnsConfig": obj("PodDNSConfig"),
        "dnsPolicy": STRING,
        "enableServiceLinks": BOOLEAN,
        "ephemeralContainers": keyed("EphemeralContainer", "name"),
        "hostAliases": keyed("HostAlias", "ip"),
        "hostIPC": BOOLEAN, "hostNetwork": BOOLEAN, "hostPID": BOOLEAN, "hostUsers": BOOLEAN,
        "hostname": STRING,
        "imagePullSecrets": keyed("LocalObjectReference", "name"),
        "initContainers": keyed("Container", "name"),
        "nodeName": STRING,
        "nodeSelector": map_of("string", atomic=True),
        "os": obj("PodOS"),
        "overhead": map_of("quantity"),
        "preemptionPolicy": STRING,
        "priority": INTEGER,
        "priorityClassName": STRING,
        "readinessGates": atomic_list("PodReadinessGate"),
        "resourceClaims": keyed("PodResourceClaim", "name", strategy="merge,retainKeys"),
        "restartPolicy": STRING,
        "runtimeClassName": STRING,
        "schedulerName": STRING,
        "schedulingGates": keyed("PodSchedulingGate", "name"),
        "securityContext": obj("PodSecurityContext"),
        "serviceAccount": STRING,
        "serviceAccountName": STRING,
        "setHostnameAsFQDN": BOOLEAN,
        "shareProcessNamespace": BOOLEAN,
        "subdomain": STRING,
        "terminationGracePeriodSeconds": INTEGER,
        # No patch strategy: a strategic merge patch replaces the whole list.
        "tolerations": atomic_list("Toleration"),
        "topologySpreadConstraints": keyed("TopologySpreadConstraint", "topologyKey",
                                           "whenUnsatisfiable"),
        "volumes": keyed("Volume", "name", strategy="merge,retainKeys"),
    },
    "Container": _container(),
    "EphemeralContainer": _container(ephemeral=True),
    "ContainerPort": {"containerPort": INTEGER, "hostIP": STRING, "hostPort": INTEGER,
                      "name": STRING, "protocol": PROTOCOL},
    "ContainerResizePolicy": {"resourceName": STRING, "restartPolicy": STRING},
    "EnvVar": {"name": STRING, "value": STRING, "valueFrom": obj("EnvVarSource")},
    "EnvVarSource": {"configMapKeyRef": obj("ConfigMapKeySelector"),
                     "fieldRef": obj("ObjectFieldSelector"),
                     "resourceFieldRef": obj("ResourceFieldSelector"),
                     "secretKeyRef": obj("SecretKeySelector")},
    "ConfigMapKeySelector": {"key": STRING, "name": STRING, "optional": BOOLEAN},
    "SecretKeySelector": {"key": STRING, "name": STRING, "optional": BOOLEAN},
    "ObjectFieldSelector": {"apiVersion": STRING, "fieldPath": STRING},
    "ResourceFieldSelector": {"containerName": STRING, "divisor": QUANTITY,
                              "resource": STRING},
    "EnvFromSource": {"configMapRef": obj("ConfigMapEnvSource"), "prefix": STRING,
                      "secretRef": obj("SecretEnvSource")},
    "ConfigMapEnvSource": {"name": STRING, "optional": BOOLEAN},
    "SecretEnvSource": {"name": STRING, "optional": BOOLEAN},
    "ResourceRequirements": {"claims": map_list("ResourceClaim", "name"),
                             "limits": map_of("quantity"), "requests": map_of("quantity")},
    "ResourceClaim": {"name": STRING},
    "VolumeMount": {"mountPath": STRING, "mountPropagation": STRING, "name": STRING,
                    "readOnly": BOOLEAN, "recursiveReadOnly": STRING, "subPath": STRING,
                    "subPathExpr": STRING},
    "VolumeDevice": {"devicePath": STRING, "name": STRING},
    "Volume": {
        "name": STRING,
        "configMap": obj("ConfigMapVolumeSource"),
        "downwardAPI": obj("DownwardAPIVolumeSource"),
        "emptyDir": obj("EmptyDirVolumeSource"),
        "hostPath": obj("HostPathVolumeSource"),
        "nfs": obj("NFSVolumeSource"),
        "persistentVolumeClaim": obj("PersistentVolumeClaimVolumeSource"),
        "projected": obj("ProjectedVolumeSource"),
        "secret": obj("SecretVolumeSource"),
        **{name: ANY for name in _OTHER_VOLUME_SOURCES},
    },
    "EmptyDirVolumeSource": {"medium": STRING, "sizeLimit": QUANTITY},
    "HostPathVolumeSource": {"path": STRING, "type": STRING},
    "NFSVolumeSource": {"path": STRING, "readOnly": BOOLEAN, "server": STRING},
    "PersistentVolumeClaimVolumeSource": {"claimName": STRING, "readOnly": BOOLEAN},
    "ConfigMapVolumeSource": {"defaultMode": INTEGER, "items": atomic_list("KeyToPath"),
                              "name": STRING, "optional": BOOLEAN},
    "SecretVolumeSource": {"defaultMode": INTEGER, "items": atomic_list("KeyToPath"),
                           "optional": BOOLEAN, "secretName": STRING},
    "KeyToPath": {"key": STRING, "mode": INTEGER, "path": STRING},
    "DownwardAPIVolumeSource": {"defaultMode": INTEGER,
                                "items": atomic_list("DownwardAPIVolumeFile")},
    "DownwardAPIVolumeFile": {"fieldRef": obj("ObjectFieldSelector"), "mode": INTEGER,
                              "path": STRING, "resourceFieldRef": obj("ResourceFieldSelector")},
    "ProjectedVolumeSource": {"defaultMode": INTEGER,
                              "sources": atomic_list("VolumeProjection")},
    "VolumeProjection": {"clusterTrustBundle": ANY, "configMap": obj("ConfigMapProjection"),
                         "downwardAPI": obj("DownwardAPIProjection"),
                         "secret": obj("SecretProjection"),
                         "serviceAccountToken": obj("ServiceAccountTokenProjection")},
    "ConfigMapProjection": {"items": atomic_list("KeyToPath"), "name": STRING,
                            "optional": BOOLEAN},
    "SecretProjection": {"items": atomic_list("KeyToPath"), "name": STRING,
                         "optional": BOOLEAN},
    "DownwardAPIProjection": {"items": atomic_list("DownwardAPIVolumeFile")},
    "ServiceAccountTokenProjection": {"audience": STRING, "expirationSeconds": INTEGER,
                                      "path": STRING},
    "Probe": {"exec": obj("ExecAction"), "failureThreshold": INTEGER,
              "grpc": obj("GRPCAction"), "httpGet": obj("HTTPGetAction"),
              "initialDelaySeconds": INTEGER, "periodSeconds": INTEGER,
              "successThreshold": INTEGER, "tcpSocket": obj("TCPSocketAction"),
              "terminationGracePeriodSeconds": INTEGER, "timeoutSeconds": INTEGER},
    "ExecAction": {"command": STRINGS},
    "HTTPGetAction": {"host": STRING, "httpHeaders": atomic_list("HTTPHeader"), "path": STRING,
                      "port": INT_OR_STRING, "scheme": STRING},
    "HTTPHeader": {"name": STRING, "value": STRING},
    "TCPSocketAction": {"host": STRING, "port": INT_OR_STRING},
    "GRPCAction": {"port": INTEGER, "service": STRING},
    "Lifecycle": {"postStart": obj("LifecycleHandler"), "preStop": obj("LifecycleHandler")},
    "LifecycleHandler": {"exec": obj("ExecAction"), "httpGet": obj("HTTPGetAction"),
                         "sleep": obj("SleepAction"), "tcpSocket": obj("TCPSocketAction")},
    "SleepAction": {"seconds": INTEGER},
    "SecurityContext": {
        "allowPrivilegeEscalation": BOOLEAN, "appArmorProfile": obj("AppArmorProfile"),
        "capabilities": obj("Capabilities"), "privileged": BOOLEAN, "procMount": STRING,
        "readOnlyRootFilesystem": BOOLEAN, "runAsGroup": INTEGER, "runAsNonRoot": BOOLEAN,
        "runAsUser": INTEGER, "seLinuxOptions": obj("SELinuxOptions"),
        "seccompProfile": obj("SeccompProfile"),
        "windowsOptions": obj("WindowsSecurityContextOptions"),
    },
    "PodSecurityContext": {
        "appArmorProfile": obj("AppArmorProfile"), "fsGroup": INTEGER,
        "fsGroupChangePolicy": STRING, "runAsGroup": INTEGER, "runAsNonRoot": BOOLEAN,
        "runAsUser": INTEGER, "seLinuxOptions": obj("SELinuxOptions"),
        "seccompProfile": obj("SeccompProfile"),
        "supplementalGroups": atomic_list(items="integer"),
        "sysctls": atomic_list("Sysctl"),
        "windowsOptions": obj("WindowsSecurityContextOptions"),
    },
    "Capabilities": {"add": STRINGS, "drop": STRINGS},
    "SeccompProfile": {"localhostProfile": STRING, "type": STRING},
    "AppArmorProfile": {"localhostProfile": STRING, "type": STRING},
    "SELinuxOptions": {"level": STRING, "role": STRING, "type": STRING, "user": STRING},
    "WindowsSecurityContextOptions": {"gmsaCredentialSpec": STRING,
                                      "gmsaCredentialSpecName": STRING,
                                      "hostProcess": BOOLEAN, "runAsUserName": STRING},
    "Sysctl": {"name": STRING, "value": STRING},
    "Affinity": {"nodeAffinity": obj("NodeAffinity"), "podAffinity": obj("PodAffinity"),
                 "podAntiAffinity": obj("PodAntiAffinity")},
    "NodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution":
            atomic_list("PreferredSchedulingTerm"),
        "requiredDuringSchedulingIgnoredDuringExecution": obj("NodeSelector"),
    },
    "NodeSelector": {"nodeSelectorTerms": atomic_list("NodeSelectorTerm")},
    "NodeSelectorTerm": {"matchExpressions": atomic_list("NodeSelectorRequirement"),
                         "matchFields": atomic_list("NodeSelectorRequirement")},
    "NodeSelectorRequirement": {"key": STRING, "operator": STRING, "values": STRINGS},
    "PreferredSchedulingTerm": {"preference": obj("NodeSelectorTerm"), "weight": INTEGER},
    "PodAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution":
            atomic_list("WeightedPodAffinityTerm"),
        "requiredDuringSchedulingIgnoredDuringExecution": atomic_list("PodAffinityTerm"),
    },
    "PodAntiAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution":
            atomic_list("WeightedPodAffinityTerm"),
        "requiredDuringSchedulingIgnoredDuringExecution": atomic_list("PodAffinityTerm"),
    },
    "PodAffinityTerm": {"labelSelector": obj("LabelSelector"), "matchLabelKeys": STRINGS,
                        "mismatchLabelKeys": STRINGS, "namespaceSelector": obj("LabelSelector"),
                        "namespaces": STRINGS, "topologyKey": STRING},
    "WeightedPodAffinityTerm": {"podAffinityTerm": obj("PodAffinityTerm"), "weight": INTEGER},
    "Toleration": {"effect": STRING, "key": STRING, "operator": STRING,
                   "tolerationSeconds": INTEGER, "value": STRING},
    "TopologySpreadConstraint": {"labelSelector": obj("LabelSelector"),
                                 "matchLabelKeys": STRINGS, "maxSkew": INTEGER,
                                 "minDomains": INTEGER, "nodeAffinityPolicy": STRING,
                                 "nodeTaintsPolicy": STRING, "topologyKey": STRING,
                                 "whenUnsatisfiable": STRING},
    "HostAlias": {"hostnames": STRINGS, "ip": STRING},
    "PodDNSConfig": {"nameservers": STRINGS, "options": atomic_list("PodDNSConfigOption"),
                     "searches": STRINGS},
    "PodDNSConfigOption": {"name": STRING, "value": STRING},
    "PodReadinessGate": {"conditionType": STRING},
    "PodOS": {"name": STRING},
    "PodResourceClaim": {"name": STRING, "source": obj("ClaimSource")},
    "ClaimSource": {"resourceClaimName": STRING, "resourceClaimTemplateName": STRING},
    "PodSchedulingGate": {"name": STRING},
    "LocalObjectReference": {"name": STRING},
    "PodStatus": {
        "conditions": keyed("PodCondition", "type"),
        "containerStatuses": atomic_list("ContainerStatus"),
        "ephemeralContainerStatuses": atomic_list("ContainerStatus"),
        "hostIP": STRING,
        # Merged by ip in strategic merge patches, but atomic for apply (as upstream).
        "hostIPs": keyed("HostIP", "ip", list_type="atomic"),
        "initContainerStatuses": atomic_list("ContainerStatus"),
        "message": STRING,
        "nominatedNodeName": STRING,
        "phase": STRING,
        "podIP": STRING,
        "podIPs": keyed("PodIP", "ip"),
        "qosClass": STRING,
        "reason": STRING,
        "resize": STRING,
        "resourceClaimStatuses": keyed("PodResourceClaimStatus", "name",
                                       strategy="merge,retainKeys"),
        "startTime": TIME,
    },
    "PodCondition": _condition("lastProbeTime"),
    "PodIP": {"ip": STRING},
    "HostIP": {"ip": STRING},
    "PodResourceClaimStatus": {"name": STRING, "resourceClaimName": STRING},
    "ContainerStatus": {
        "allocatedResources": map_of("quantity"), "containerID": STRING, "image": STRING,
        "imageID": STRING, "lastState": obj("ContainerState"), "name": STRING,
        "ready": BOOLEAN, "resources": obj("ResourceRequirements"), "restartCount": INTEGER,
        "started": BOOLEAN, "state": obj("ContainerState"),
        "volumeMounts": map_list("VolumeMountStatus", "mountPath"),
    },
    "VolumeMountStatus": {"mountPath": STRING, "name": STRING, "readOnly": BOOLEAN,
                          "recursiveReadOnly": STRING},
    "ContainerState": {"running": obj("ContainerStateRunning"),
                       "terminated": obj("ContainerStateTerminated"),
                       "waiting": obj("ContainerStateWaiting")},
    "ContainerStateRunning": {"startedAt": TIME},
    "ContainerStateTerminated": {"containerID": STRING, "exitCode": INTEGER,
                                 "finishedAt": TIME, "message": STRING, "reason": STRING,
                                 "signal": INTEGER, "startedAt": TIME},
    "ContainerStateWaiting": {"message": STRING, "reason": STRING},
    # --- Node
    "Node": _kind(spec=obj("NodeSpec"), status=obj("NodeStatus")),
    "NodeSpec": {"configSource": ANY, "externalID": STRING, "podCIDR": STRING,
                 "podCIDRs": set_list(strategy="merge"), "providerID": STRING,
                 "taints": atomic_list("Taint"), "unschedulable": BOOLEAN},
    "Taint": {"effect": STRING, "key": STRING, "timeAdded": TIME, "value": STRING},
    "NodeStatus": {
        "addresses": keyed("NodeAddress", "type"),
        "allocatable": map_of("quantity"),
        "capacity": map_of("quantity"),
        "conditions": keyed("NodeCondition", "type"),
        "config": ANY,
        "daemonEndpoints": obj("NodeDaemonEndpoints"),
        "images": atomic_list("ContainerImage"),
        "nodeInfo": obj("NodeSystemInfo"),
        "phase": STRING,
        "runtimeHandlers": atomic_list("NodeRuntimeHandler"),
        "volumesAttached": atomic_list("AttachedVolume"),
        "volumesInUse": STRINGS,
    },
    "NodeAddress": {"address": STRING, "type": STRING},
    "NodeCondition": _condition("lastHeartbeatTime"),
    "NodeDaemonEndpoints": {"kubeletEndpoint": obj("DaemonEndpoint")},
    "DaemonEndpoint": {"Port": INTEGER},  # sic: the one capitalised field in the API
    "ContainerImage": {"names": STRINGS, "sizeBytes": INTEGER},
    "NodeSystemInfo": {
        "architecture": STRING, "bootID": STRING, "containerRuntimeVersion": STRING,
        "kernelVersion": STRING, "kubeProxyVersion": STRING, "kubeletVersion": STRING,
        "machineID": STRING, "operatingSystem": STRING, "osImage": STRING,
        "systemUUID": STRING,
    },
    "NodeRuntimeHandler": {"features": obj("NodeRuntimeHandlerFeatures"), "name": STRING},
    "NodeRuntimeHandlerFeatures": {"recursiveReadOnlyMounts": BOOLEAN},
    "AttachedVolume": {"devicePath": STRING, "name": STRING},
    # --- Service and Endpoints
    "Service": _kind(spec=obj("ServiceSpec"), status=obj("ServiceStatus")),
    "ServiceSpec": {
        "allocateLoadBalancerNodePorts": BOOLEAN, "clusterIP": STRING, "clusterIPs": STRINGS,
        "externalIPs": STRINGS, "externalName": STRING, "externalTrafficPolicy": STRING,
        "healthCheckNodePort": INTEGER, "internalTrafficPolicy": STRING,
        "ipFamilies": STRINGS, "ipFamilyPolicy": STRING, "loadBalancerClass": STRING,
        "loadBalancerIP": STRING, "loadBalancerSourceRanges": STRINGS,
        "ports": keyed("ServicePort", "port", "protocol"),
        "publishNotReadyAddresses": BOOLEAN,
        "selector": map_of("string", atomic=True),
        "sessionAffinity": STRING, "sessionAffinityConfig": obj("SessionAffinityConfig"),
        "trafficDistribution": STRING, "type": STRING,
    },
    "ServicePort": {"appProtocol": STRING, "name": STRING, "nodePort": INTEGER,
                    "port": INTEGER, "protocol": PROTOCOL, "targetPort": INT_OR_STRING},
    "SessionAffinityConfig": {"clientIP": obj("ClientIPConfig")},
    "ClientIPConfig": {"timeoutSeconds": INTEGER},
    "ServiceStatus": {"conditions": keyed("Condition", "type"),
                      "loadBalancer": obj("LoadBalancerStatus")},
    "LoadBalancerStatus": {"ingress": atomic_list("LoadBalancerIngress")},
    "LoadBalancerIngress": {"hostname": STRING, "ip": STRING, "ipMode": STRING,
                            "ports": atomic_list("PortStatus")},
    "PortStatus": {"error": STRING, "port": INTEGER, "protocol": STRING},
    "Endpoints": _kind(subsets=atomic_list("EndpointSubset")),
    "EndpointSubset": {"addresses": atomic_list("EndpointAddress"),
                       "notReadyAddresses": atomic_list("EndpointAddress"),
                       "ports": atomic_list("EndpointPort")},
    "EndpointAddress": {"hostname": STRING, "ip": STRING, "nodeName": STRING,
                        "targetRef": obj("ObjectReference")},
    "EndpointPort": {"appProtocol": STRING, "name": STRING, "port": INTEGER,
                     "protocol": STRING},
    "ObjectReference": {"apiVersion": STRING, "fieldPath": STRING, "kind": STRING,
                        "name": STRING, "namespace": STRING, "resourceVersion": STRING,
                        "uid": STRING},
    # --- ConfigMap, Secret, Event, Binding
    "ConfigMap": _kind(binaryData=map_of("bytes"), data=map_of("string"), immutable=BOOLEAN),
    "Secret": _kind(data=map_of("bytes"), immutable=BOOLEAN, stringData=map_of("string"),
                    type=STRING),
    "Event": _kind(
        action=STRING, count=INTEGER, eventTime=MICROTIME, firstTimestamp=TIME,
        involvedObject=obj("ObjectReference"), lastTimestamp=TIME, message=STRING,
        reason=STRING, related=obj("ObjectReference"), reportingComponent=STRING,
        reportingInstance=STRING, series=obj("EventSeries"), source=obj("EventSource"),
        type=STRING,
    ),
    "EventSeries": {"count": INTEGER, "lastObservedTime": MICROTIME},
    "EventSource": {"component": STRING, "host": STRING},
    "Binding": _kind(target=obj("ObjectReference")),
}

# ReplicationController (core/v1): the selector is a plain map that apply replaces whole.
_REPLICATION = {
    "ReplicationController": _kind(spec=obj("ReplicationControllerSpec"),
                                   status=obj("ReplicationControllerStatus")),
    "ReplicationControllerSpec": {"minReadySeconds": INTEGER, "replicas": INTEGER,
                                  "selector": map_of("string", atomic=True),
                                  "template": obj("PodTemplateSpec")},
    "ReplicationControllerStatus": {
        "availableReplicas": INTEGER,
        "conditions": keyed("ReplicationControllerCondition", "type"),
        "fullyLabeledReplicas": INTEGER, "observedGeneration": INTEGER,
        "readyReplicas": INTEGER, "replicas": INTEGER,
    },
    "ReplicationControllerCondition": _condition(),
}

_APPS = {
    "Deployment": _kind(spec=obj("DeploymentSpec"), status=obj("DeploymentStatus")),
    "DeploymentSpec": {
        "minReadySeconds": INTEGER, "paused": BOOLEAN, "progressDeadlineSeconds": INTEGER,
        "replicas": INTEGER, "revisionHistoryLimit": INTEGER,
        "selector": obj("LabelSelector"),
        # retainKeys: switching to Recreate must clear rollingUpdate.
        "strategy": obj("DeploymentStrategy", strategy="retainKeys"),
        "template": obj("PodTemplateSpec"),
    },
    "DeploymentStrategy": {"rollingUpdate": obj("RollingUpdateDeployment"), "type": STRING},
    "RollingUpdateDeployment": {"maxSurge": INT_OR_STRING, "maxUnavailable": INT_OR_STRING},
    "DeploymentStatus": {
        "availableReplicas": INTEGER, "collisionCount": INTEGER,
        "conditions": keyed("DeploymentCondition", "type"), "observedGeneration": INTEGER,
        "readyReplicas": INTEGER, "replicas": INTEGER, "unavailableReplicas": INTEGER,
        "updatedReplicas": INTEGER,
    },
    "DeploymentCondition": _condition("lastUpdateTime"),
    "ReplicaSet": _kind(spec=obj("ReplicaSetSpec"), status=obj("ReplicaSetStatus")),
    "ReplicaSetSpec": {"minReadySeconds": INTEGER, "replicas": INTEGER,
                       "selector": obj("LabelSelector"), "template": obj("PodTemplateSpec")},
    "ReplicaSetStatus": {
        "availableReplicas": INTEGER, "conditions": keyed("ReplicaSetCondition", "type"),
        "fullyLabeledReplicas": INTEGER, "observedGeneration": INTEGER,
        "readyReplicas": INTEGER, "replicas": INTEGER,
    },
    "ReplicaSetCondition": _condition(),
    "DaemonSet": _kind(spec=obj("DaemonSetSpec"), status=obj("DaemonSetStatus")),
    "DaemonSetSpec": {"minReadySeconds": INTEGER, "revisionHistoryLimit": INTEGER,
                      "selector": obj("LabelSelector"), "template": obj("PodTemplateSpec"),
                      "updateStrategy": obj("DaemonSetUpdateStrategy")},
    "DaemonSetUpdateStrategy": {"rollingUpdate": obj("RollingUpdateDaemonSet"), "type": STRING},
    "RollingUpdateDaemonSet": {"maxSurge": INT_OR_STRING, "maxUnavailable": INT_OR_STRING},
    "DaemonSetStatus": {
        "collisionCount": INTEGER, "conditions": keyed("DaemonSetCondition", "type"),
        "currentNumberScheduled": INTEGER, "desiredNumberScheduled": INTEGER,
        "numberAvailable": INTEGER, "numberMisscheduled": INTEGER, "numberReady": INTEGER,
        "numberUnavailable": INTEGER, "observedGeneration": INTEGER,
        "updatedNumberScheduled": INTEGER,
    },
    "DaemonSetCondition": _condition(),
}

_BATCH = {
    "Job": _kind(spec=obj("JobSpec"), status=obj("JobStatus")),
    "JobSpec": {
        "activeDeadlineSeconds": INTEGER, "backoffLimit": INTEGER,
        "backoffLimitPerIndex": INTEGER, "completionMode": STRING, "completions": INTEGER,
        "managedBy": STRING, "manualSelector": BOOLEAN, "maxFailedIndexes": INTEGER,
        "parallelism": INTEGER, "podFailurePolicy": obj("PodFailurePolicy"),
        "podReplacementPolicy": STRING, "selector": obj("LabelSelector"),
        "successPolicy": obj("SuccessPolicy"), "suspend": BOOLEAN,
        "template": obj("PodTemplateSpec"), "ttlSecondsAfterFinished": INTEGER,
    },
    "PodFailurePolicy": {"rules": atomic_list("PodFailurePolicyRule")},
    "PodFailurePolicyRule": {
        "action": STRING, "onExitCodes": obj("PodFailurePolicyOnExitCodesRequirement"),
        "onPodConditions": atomic_list("PodFailurePolicyOnPodConditionsPattern"),
    },
    "PodFailurePolicyOnExitCodesRequirement": {"containerName": STRING, "operator": STRING,
                                               "values": set_list("integer")},
    "PodFailurePolicyOnPodConditionsPattern": {"status": STRING, "type": STRING},
    "SuccessPolicy": {"rules": atomic_list("SuccessPolicyRule")},
    "SuccessPolicyRule": {"succeededCount": INTEGER, "succeededIndexes": STRING},
    "JobStatus": {
        "active": INTEGER, "completedIndexes": STRING, "completionTime": TIME,
        # Merged by type in strategic merge patches, atomic for apply (as upstream).
        "conditions": keyed("JobCondition", "type", list_type="atomic"),
        "failed": INTEGER, "failedIndexes": STRING, "ready": INTEGER, "startTime": TIME,
        "succeeded": INTEGER, "terminating": INTEGER,
        "uncountedTerminatedPods": obj("UncountedTerminatedPods"),
    },
    "JobCondition": _condition("lastProbeTime"),
    "UncountedTerminatedPods": {"failed": set_list(), "succeeded": set_list()},
}

_AUTOSCALING = {
    "Scale": _kind(spec=obj("ScaleSpec"), status=obj("ScaleStatus")),
    "ScaleSpec": {"replicas": INTEGER},
    "ScaleStatus": {"replicas": INTEGER, "selector": STRING},
    # HorizontalPodAutoscaler as autoscaling/v1 serves it (converted from v2, the stored
    # version). Named with a V1 suffix here because v2 has structs of the same Go names;
    # GO_NAMES gives them their real OpenAPI ids.
    "HorizontalPodAutoscalerV1": _kind(spec=obj("HorizontalPodAutoscalerSpecV1"),
                                       status=obj("HorizontalPodAutoscalerStatusV1")),
    "HorizontalPodAutoscalerSpecV1": {
        "maxReplicas": INTEGER, "minReplicas": INTEGER,
        "scaleTargetRef": obj("CrossVersionObjectReferenceV1"),
        "targetCPUUtilizationPercentage": INTEGER,
    },
    "CrossVersionObjectReferenceV1": {"apiVersion": STRING, "kind": STRING, "name": STRING},
    "HorizontalPodAutoscalerStatusV1": {
        "currentCPUUtilizationPercentage": INTEGER, "currentReplicas": INTEGER,
        "desiredReplicas": INTEGER, "lastScaleTime": TIME, "observedGeneration": INTEGER,
    },
}

# autoscaling/v2: the HorizontalPodAutoscaler as stored.
_AUTOSCALING_V2 = {
    "HorizontalPodAutoscaler": _kind(spec=obj("HorizontalPodAutoscalerSpec"),
                                     status=obj("HorizontalPodAutoscalerStatus")),
    "HorizontalPodAutoscalerSpec": {
        "behavior": obj("HorizontalPodAutoscalerBehavior"), "maxReplicas": INTEGER,
        "metrics": atomic_list("MetricSpec"), "minReplicas": INTEGER,
        "scaleTargetRef": obj("CrossVersionObjectReference"),
    },
    "CrossVersionObjectReference": {"apiVersion": STRING, "kind": STRING, "name": STRING},
    "MetricSpec": {
        "containerResource": obj("ContainerResourceMetricSource"),
        "external": obj("ExternalMetricSource"), "object": obj("ObjectMetricSource"),
        "pods": obj("PodsMetricSource"), "resource": obj("ResourceMetricSource"),
        "type": STRING,
    },
    "ResourceMetricSource": {"name": STRING, "target": obj("MetricTarget")},
    "ContainerResourceMetricSource": {"container": STRING, "name": STRING,
                                      "target": obj("MetricTarget")},
    "PodsMetricSource": {"metric": obj("MetricIdentifier"), "target": obj("MetricTarget")},
    "ObjectMetricSource": {"describedObject": obj("CrossVersionObjectReference"),
                           "metric": obj("MetricIdentifier"), "target": obj("MetricTarget")},
    "ExternalMetricSource": {"metric": obj("MetricIdentifier"), "target": obj("MetricTarget")},
    "MetricIdentifier": {"name": STRING, "selector": obj("LabelSelector")},
    "MetricTarget": {"averageUtilization": INTEGER, "averageValue": QUANTITY, "type": STRING,
                     "value": QUANTITY},
    "HorizontalPodAutoscalerBehavior": {"scaleDown": obj("HPAScalingRules"),
                                        "scaleUp": obj("HPAScalingRules")},
    "HPAScalingRules": {"policies": atomic_list("HPAScalingPolicy"), "selectPolicy": STRING,
                        "stabilizationWindowSeconds": INTEGER, "tolerance": QUANTITY},
    "HPAScalingPolicy": {"periodSeconds": INTEGER, "type": STRING, "value": INTEGER},
    "HorizontalPodAutoscalerStatus": {
        "conditions": keyed("HorizontalPodAutoscalerCondition", "type"),
        "currentMetrics": atomic_list("MetricStatus"), "currentReplicas": INTEGER,
        "desiredReplicas": INTEGER, "lastScaleTime": TIME, "observedGeneration": INTEGER,
    },
    "HorizontalPodAutoscalerCondition": {**_condition(), "observedGeneration": INTEGER},
    "MetricStatus": {
        "containerResource": obj("ContainerResourceMetricStatus"),
        "external": obj("ExternalMetricStatus"), "object": obj("ObjectMetricStatus"),
        "pods": obj("PodsMetricStatus"), "resource": obj("ResourceMetricStatus"),
        "type": STRING,
    },
    "ResourceMetricStatus": {"current": obj("MetricValueStatus"), "name": STRING},
    "ContainerResourceMetricStatus": {"container": STRING, "current": obj("MetricValueStatus"),
                                      "name": STRING},
    "PodsMetricStatus": {"current": obj("MetricValueStatus"), "metric": obj("MetricIdentifier")},
    "ObjectMetricStatus": {"current": obj("MetricValueStatus"),
                           "describedObject": obj("CrossVersionObjectReference"),
                           "metric": obj("MetricIdentifier")},
    "ExternalMetricStatus": {"current": obj("MetricValueStatus"),
                             "metric": obj("MetricIdentifier")},
    "MetricValueStatus": {"averageUtilization": INTEGER, "averageValue": QUANTITY,
                          "value": QUANTITY},
}

# coordination.k8s.io/v1: node agents renew a Lease as their heartbeat.
_COORDINATION = {
    "Lease": _kind(spec=obj("LeaseSpec")),
    "LeaseSpec": {
        "acquireTime": MICROTIME, "holderIdentity": STRING, "leaseDurationSeconds": INTEGER,
        "leaseTransitions": INTEGER, "preferredHolder": STRING, "renewTime": MICROTIME,
        "strategy": STRING,
    },
}

_PACKAGES = (
    ("io.k8s.apimachinery.pkg.apis.meta.v1.", _META),
    ("io.k8s.api.coordination.v1.", _COORDINATION),
    ("io.k8s.api.core.v1.", _CORE),
    ("io.k8s.api.core.v1.", _REPLICATION),
    ("io.k8s.api.apps.v1.", _APPS),
    ("io.k8s.api.batch.v1.", _BATCH),
    ("io.k8s.api.autoscaling.v1.", _AUTOSCALING),
    ("io.k8s.api.autoscaling.v2.", _AUTOSCALING_V2),
)

# Structs whose name here differs from their Go name (two versions of one kind).
GO_NAMES: Mapping[str, str] = MappingProxyType({
    "HorizontalPodAutoscalerV1": "HorizontalPodAutoscaler",
    "HorizontalPodAutoscalerSpecV1": "HorizontalPodAutoscalerSpec",
    "HorizontalPodAutoscalerStatusV1": "HorizontalPodAutoscalerStatus",
    "CrossVersionObjectReferenceV1": "CrossVersionObjectReference",
})

STRUCTS: Mapping[str, Mapping[str, Field]] = MappingProxyType(
    {name: MappingProxyType(fields) for _, table in _PACKAGES for name, fields in table.items()}
)

# OpenAPI component ids, as Kubernetes names them.
OPENAPI_NAMES: Mapping[str, str] = MappingProxyType(
    {name: prefix + GO_NAMES.get(name, name) for prefix, table in _PACKAGES for name in table}
    | {"Time": "io.k8s.apimachinery.pkg.apis.meta.v1.Time",
       "MicroTime": "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime"}
)

# Structs marked +structType=atomic upstream: apply owns and replaces them as a whole.
ATOMIC_STRUCTS = frozenset({
    "LabelSelector", "OwnerReference", "ObjectReference", "LocalObjectReference",
    "NodeSelector", "NodeSelectorTerm", "ObjectFieldSelector", "ResourceFieldSelector",
    "ConfigMapKeySelector", "SecretKeySelector", "EndpointAddress", "EndpointPort",
})

# ResourceType.key (and the subresource/option bodies) -> top-level struct.
KINDS: Mapping[str, str] = MappingProxyType({
    "v1/Namespace": "Namespace",
    "v1/Pod": "Pod",
    "v1/Node": "Node",
    "v1/Service": "Service",
    "v1/Endpoints": "Endpoints",
    "v1/ConfigMap": "ConfigMap",
    "v1/Secret": "Secret",
    "v1/Event": "Event",
    "v1/Binding": "Binding",
    "v1/ReplicationController": "ReplicationController",
    "apps/v1/Deployment": "Deployment",
    "apps/v1/ReplicaSet": "ReplicaSet",
    "apps/v1/DaemonSet": "DaemonSet",
    "batch/v1/Job": "Job",
    "coordination.k8s.io/v1/Lease": "Lease",
    "autoscaling/v1/Scale": "Scale",
    "autoscaling/v2/HorizontalPodAutoscaler": "HorizontalPodAutoscaler",
    "autoscaling/v1/HorizontalPodAutoscaler": "HorizontalPodAutoscalerV1",
    "meta.k8s.io/v1/DeleteOptions": "DeleteOptions",
    # kubectl sends DeleteOptions as apiVersion v1.
    "v1/DeleteOptions": "DeleteOptions",
})


def struct_for(kind_key: str) -> str | None:
    """The top-level struct of a kind ("apps/v1/Deployment" -> "Deployment"), if known."""
    return KINDS.get(kind_key)


def field_of(struct: str | None, name: str) -> Field | None:
    if struct is None:
        return None
    return STRUCTS.get(struct, {}).get(name)


def element_field(field: Field | None) -> Field | None:
    """The Field of the elements of an "array" or the values of a "map"."""
    if field is None or field.type not in ("array", "map"):
        return None
    if field.ref:
        return Field("object", ref=field.ref)
    return Field(field.items) if field.items else ANY


def child_field(field: Field | None, name: str) -> Field | None:
    """The Field under key `name` of a value described by `field` (None when unknown)."""
    if field is None:
        return None
    if field.type == "object":
        return field_of(field.ref, name)
    if field.type == "map":
        return element_field(field)
    return None


def kind_field(kind_key: str) -> Field | None:
    """The Field describing a whole object of this kind, for walking it from the root."""
    struct = struct_for(kind_key)
    return Field("object", ref=struct) if struct else None


# --- strict field validation


def unknown_fields(kind_key: str, obj: Any) -> list[FieldError]:
    """Every field of `obj` its kind does not declare, with the path the API server prints.

    Unknown kinds report nothing: there is nothing to check them against. "any" fields and
    map keys accept anything. Value types are validation's business, not this walk's.
    """
    root = kind_field(kind_key)
    errors: list[FieldError] = []
    if root is not None:
        _walk_unknown(obj, root, "", errors, prune=False)
    return errors


def prune_unknown_fields(kind_key: str, obj: Any) -> list[FieldError]:
    """Remove, in place, every field `unknown_fields` reports, and return those errors.

    The apiserver decodes into typed structs, which drops what they do not declare; an
    unknown field is therefore never stored, whether the request was warned or not.
    """
    root = kind_field(kind_key)
    errors: list[FieldError] = []
    if root is not None:
        _walk_unknown(obj, root, "", errors, prune=True)
    return errors


def _walk_unknown(value: Any, field: Field, path: str, errors: list[FieldError], *,
                  prune: bool) -> None:
    if field.type == "object" and isinstance(value, dict):
        fields = STRUCTS[field.ref or ""]
        for name, child in list(value.items()):
            sub = f"{path}.{name}" if path else name
            declared = fields.get(name)
            if declared is None:
                errors.append(unknown_field(sub))
                if prune:
                    del value[name]
            else:
                _walk_unknown(child, declared, sub, errors, prune=prune)
    elif field.type == "array" and isinstance(value, list) and field.ref:
        element = Field("object", ref=field.ref)
        for i, item in enumerate(value):
            _walk_unknown(item, element, f"{path}[{i}]", errors, prune=prune)
    elif field.type == "map" and isinstance(value, dict) and field.ref:
        element = Field("object", ref=field.ref)
        for key, item in value.items():
            _walk_unknown(item, element, f"{path}[{key}]", errors, prune=prune)


# --- OpenAPI v3


def _ref(struct: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{OPENAPI_NAMES[struct]}"}


_SCALARS: Mapping[str, Mapping[str, Any]] = MappingProxyType({
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "number": {"type": "number", "format": "double"},
    "boolean": {"type": "boolean"},
    "bytes": {"type": "string", "format": "byte"},
    # Quantities are written as 2, 0.5 or "500m": int-or-string is what kubectl expects.
    "quantity": {"x-kubernetes-int-or-string": True,
                 "anyOf": [{"type": "integer"}, {"type": "string"}]},
    "int-or-string": {"x-kubernetes-int-or-string": True,
                      "anyOf": [{"type": "integer"}, {"type": "string"}]},
    "any": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
})


def _element_schema(field: Field) -> dict[str, Any]:
    if field.ref:
        return _ref(field.ref)
    return dict(_SCALARS[field.items or "any"])


def _field_schema(field: Field) -> dict[str, Any]:
    extensions: dict[str, Any] = {}
    if field.default is not None:
        extensions["default"] = field.default
    if field.merge_key:
        extensions["x-kubernetes-patch-merge-key"] = field.merge_key
    if field.strategy:
        extensions["x-kubernetes-patch-strategy"] = field.strategy
    if field.list_type:
        extensions["x-kubernetes-list-type"] = field.list_type
    if field.list_map_keys:
        extensions["x-kubernetes-list-map-keys"] = list(field.list_map_keys)
    if field.map_type:
        extensions["x-kubernetes-map-type"] = field.map_type

    if field.type == "object" or field.type == "time":
        ref = _ref(field.ref or "Time")
        # OpenAPI 3.0 ignores siblings of $ref, hence the allOf Kubernetes uses too.
        return {"allOf": [ref], **extensions} if extensions else ref
    if field.type == "array":
        return {"type": "array", "items": _element_schema(field), **extensions}
    if field.type == "map":
        return {"type": "object", "additionalProperties": _element_schema(field), **extensions}
    return {**_SCALARS[field.type], **extensions}


def _gvk(kind_key: str) -> dict[str, str]:
    *group_version, kind = kind_key.split("/")
    group = group_version[0] if len(group_version) == 2 else ""
    return {"group": group, "kind": kind, "version": group_version[-1]}


def openapi_schema(struct: str) -> dict[str, Any]:
    """The OpenAPI v3 component schema of one struct ("Pod", "ObjectMeta", ...)."""
    fields = STRUCTS[struct]
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {name: _field_schema(field) for name, field in sorted(fields.items())},
    }
    if struct in ATOMIC_STRUCTS:
        schema["x-kubernetes-map-type"] = "atomic"
    kinds = [_gvk(key) for key, top in KINDS.items() if top == struct]
    if kinds:
        schema["x-kubernetes-group-version-kind"] = kinds
    return schema


def openapi_components() -> dict[str, dict[str, Any]]:
    """All component schemas, keyed by their Kubernetes OpenAPI ids."""
    components = {OPENAPI_NAMES[name]: openapi_schema(name) for name in STRUCTS}
    for name in ("Time", "MicroTime"):
        components[OPENAPI_NAMES[name]] = {"type": "string", "format": "date-time"}
    return components
