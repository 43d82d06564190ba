"""Runtime specs from a Pod: env (order, sources, $(VAR)), downward API, resources, security,
mounts, sandbox and volume plan - as the kubelet builds them."""

import base64

import pytest

from bramble.node.pods.spec import (
    ConfigError,
    EnvSources,
    KeyToPath,
    container_env,
    container_hash,
    container_spec,
    env_references,
    expand,
    field_ref_value,
    resource_field_value,
    sandbox_spec,
    volume_plan,
)
from bramble.node.runtime.types import (
    LABEL_CONTAINER_HASH,
    LABEL_CONTAINER_NAME,
    LABEL_INIT,
    LABEL_MANAGED,
    LABEL_POD_NAME,
    LABEL_POD_NAMESPACE,
    LABEL_POD_UID,
    LABEL_RESTART_COUNT,
    Mount,
    PortMapping,
)

UID = "0123456789abcdef"
Mi = 2**20


def make_pod(*containers, init=(), volumes=(), **spec):
    return {
        "metadata": {"name": "web", "namespace": "shop", "uid": UID,
                     "labels": {"app": "web"}, "annotations": {"team": "blue"}},
        "spec": {"nodeName": "pi-1", "serviceAccountName": "default",
                 "containers": list(containers), "initContainers": list(init),
                 "volumes": list(volumes), **spec},
    }


NO_SOURCES = EnvSources()


def build(pod, container, *, sources=NO_SOURCES, volume_paths=None, init=False,
          restart_count=0, **kw):
    return container_spec(pod, container, init=init, restart_count=restart_count,
                          env_sources=sources, volume_paths=volume_paths or {},
                          node_name="pi-1", pod_ip="10.0.0.5", host_ip="192.168.1.10", **kw)


# --- $(VAR) expansion: the cases of Kubernetes' expand_test.go -------------------------------------

VARS = {"VAR_A": "A", "VAR_B": "B", "VAR_C": "C", "VAR_REF": "$(VAR_A)", "VAR_EMPTY": ""}

EXPAND = [
    ("$(VAR_A)", "A"),
    ("$(VAR_A)-$(VAR_A)", "A-A"),
    ("___$(VAR_B)___", "___B___"),
    ("$(VAR_A)_$(VAR_B)_$(VAR_C)", "A_B_C"),
    ("$$(VAR_B)_$(VAR_A)", "$(VAR_B)_A"),  # $$ escapes
    ("$$(VAR_A)_$$(VAR_B)", "$(VAR_A)_$(VAR_B)"),
    ("f000-$$VAR_A", "f000-$VAR_A"),
    ("foo\\$(VAR_C)bar", "foo\\Cbar"),  # backslash is no escape
    ("$(VAR_A$(VAR_B))", "$(VAR_A$(VAR_B))"),  # nested: the name is "VAR_A$(VAR_B"
    ("$(VAR_A$(VAR_B)", "$(VAR_A$(VAR_B)"),
    ("$(VAR_REF)", "$(VAR_A)"),  # values are not expanded again
    ("foo$(VAR_EMPTY)bar", "foobar"),
    ("foo$(VAR_Awhoops!", "foo$(VAR_Awhoops!"),  # unterminated
    ("$?_boo_$!", "$?_boo_$!"),
    ("$VAR_A", "$VAR_A"),
    ("$(VAR_DNE)", "$(VAR_DNE)"),  # undefined: kept
    ("$$$$$$(BIG_MONEY)", "$$$(BIG_MONEY)"),  # 6 $ -> 3 $, then "(BIG_MONEY)" as text
    ("$$$$$$$(GOOD_ODDS)", "$$$$(GOOD_ODDS)"),  # 7 $ -> 3 $ + an undefined reference
    ("$$$$$$$(VAR_A)", "$$$A"),
    ("${VAR_A}", "${VAR_A}"),
    ("$(VAR_B)_______$(A", "B_______$(A"),
    ("$(VAR_C)_______$(", "C_______$("),
    ("$(VAR_A)foobarzab$", "Afoobarzab$"),  # a trailing $ stays
    ("--$($($($($--", "--$($($($($--"),
    ("$(foo$$var)", "$(foo$$var)"),
    ("\n", "\n"),
]


@pytest.mark.parametrize(("text", "expected"), EXPAND)
def test_expand(text, expected):
    assert expand(text, VARS.get) == expected


# --- environment -----------------------------------------------------------------------------------

SOURCES = EnvSources(
    config_maps={"cfg": {"B": "from-cm", "A": "cm-a"}, "other": {"X": "x"}},
    secrets={"creds": {"PASSWORD": "s3cret"}},
)


def test_env_order_envfrom_first_then_env_later_wins():
    container = {"name": "app", "image": "nginx",
                 "envFrom": [{"configMapRef": {"name": "cfg"}},
                             {"secretRef": {"name": "creds"}, "prefix": "DB_"}],
                 "env": [{"name": "A", "value": "literal"},
                         {"name": "GREETING", "value": "hi $(B) and $(DB_PASSWORD)"},
                         {"name": "LATER", "value": "$(NOT_YET)"},
                         {"name": "NOT_YET", "value": "x"}]}
    env = container_env(make_pod(container), container, env_sources=SOURCES)
    assert env == [
        ("A", "literal"),  # envFrom defined A first; env replaced its value in place
        ("B", "from-cm"),  # a source's keys are sorted
        ("DB_PASSWORD", "s3cret"),
        ("GREETING", "hi from-cm and s3cret"),
        ("LATER", "$(NOT_YET)"),  # only what is defined so far expands
        ("NOT_YET", "x"),
    ]


def test_service_env_expands_and_comes_last_unless_overridden():
    container = {"name": "app", "image": "nginx",
                 "env": [{"name": "URL", "value": "https://$(KUBERNETES_SERVICE_HOST)"},
                         {"name": "KUBERNETES_PORT", "value": "mine"}]}
    service_env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_PORT": "tcp://x"}
    env = container_env(make_pod(container), container, env_sources=EnvSources(),
                        service_env=service_env)
    assert env == [("URL", "https://10.96.0.1"), ("KUBERNETES_PORT", "mine"),
                   ("KUBERNETES_SERVICE_HOST", "10.96.0.1")]


def test_empty_value_without_source_is_defined_as_empty():
    container = {"name": "app", "image": "x", "env": [{"name": "E"}]}
    assert container_env(make_pod(container), container, env_sources=EnvSources()) == [("E", "")]


CONFIG_ERRORS = [
    # (env or envFrom entry, kubelet's message or None when skipped)
    ({"envFrom": [{"configMapRef": {"name": "missing"}}]}, 'configmap "missing" not found'),
    ({"envFrom": [{"secretRef": {"name": "missing"}}]}, 'secret "missing" not found'),
    ({"envFrom": [{"configMapRef": {"name": "missing", "optional": True}}]}, None),
    ({"env": [{"name": "K", "valueFrom": {"configMapKeyRef": {"name": "missing", "key": "k"}}}]},
     'configmap "missing" not found'),
    ({"env": [{"name": "K", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}]},
     "couldn't find key k in ConfigMap shop/cfg"),
    ({"env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "k"}}}]},
     "couldn't find key k in Secret shop/creds"),
    ({"env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}]},
     'secret "nope" not found'),
    ({"env": [{"name": "K", "valueFrom": {"configMapKeyRef": {
        "name": "cfg", "key": "k", "optional": True}}}]}, None),
    ({"env": [{"name": "K", "valueFrom": {"secretKeyRef": {
        "name": "nope", "key": "k", "optional": True}}}]}, None),
    ({"env": [{"name": "K", "valueFrom": {"fieldRef": {"fieldPath": "spec.hostname"}}}]},
     "unsupported fieldPath: spec.hostname"),
]


@pytest.mark.parametrize(("entry", "message"), CONFIG_ERRORS)
def test_missing_sources(entry, message):
    container = {"name": "app", "image": "x", **entry}
    pod = make_pod(container)
    if message is None:
        assert container_env(pod, container, env_sources=SOURCES) == []  # skipped
    else:
        with pytest.raises(ConfigError) as err:
            build(pod, container, sources=SOURCES)
        assert str(err.value) == message
        assert err.value.reason == "CreateContainerConfigError"


def test_key_refs_resolve():
    container = {"name": "app", "image": "x", "env": [
        {"name": "K", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "A"}}},
        {"name": "P", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "PASSWORD"}}}]}
    assert container_env(make_pod(container), container, env_sources=SOURCES) == [
        ("K", "cm-a"), ("P", "s3cret")]


FIELD_REFS = [
    ("metadata.name", "web"),
    ("metadata.namespace", "shop"),
    ("metadata.uid", UID),
    ("metadata.labels['app']", "web"),
    ("metadata.labels['missing']", ""),
    ("metadata.annotations['team']", "blue"),
    ("spec.nodeName", "pi-1"),
    ("spec.serviceAccountName", "default"),
    ("status.podIP", "10.0.0.5"),
    ("status.podIPs", "10.0.0.5"),
    ("status.hostIP", "192.168.1.10"),
    ("status.hostIPs", "192.168.1.10"),
]


@pytest.mark.parametrize(("path", "value"), FIELD_REFS)
def test_field_ref(path, value):
    pod = make_pod({"name": "app", "image": "x"})
    assert field_ref_value(pod, path, pod_ip="10.0.0.5", host_ip="192.168.1.10") == value


RESOURCES = {"limits": {"cpu": "1500m", "memory": "128Mi"},
             "requests": {"cpu": "250m", "memory": "64Mi"}}
ALLOCATABLE = {"cpu": "4", "memory": "8Gi", "ephemeral-storage": "100Gi"}

RESOURCE_REFS = [
    # (resource, divisor, resources, value)
    ("limits.cpu", None, RESOURCES, "2"),  # 1500m / 1000m = 1.5, rounded up
    ("limits.cpu", "1m", RESOURCES, "1500"),  # 1500m / 1m
    ("requests.cpu", None, RESOURCES, "1"),  # 250m / 1000m = 0.25 -> 1
    ("requests.cpu", "100m", RESOURCES, "3"),  # 250 / 100 = 2.5 -> 3
    ("limits.memory", None, RESOURCES, str(128 * Mi)),  # bytes: 134217728
    ("limits.memory", "1Mi", RESOURCES, "128"),
    ("requests.memory", "1M", RESOURCES, "68"),  # 67108864 / 1000000 = 67.1 -> 68
    ("limits.memory", "0", RESOURCES, str(128 * Mi)),  # a zero divisor means 1
    ("limits.cpu", None, {}, "4"),  # no limit: the node's allocatable
    ("limits.memory", "1Gi", {}, "8"),
    ("requests.cpu", None, {}, "0"),  # no request: zero
]


@pytest.mark.parametrize(("resource", "divisor", "resources", "value"), RESOURCE_REFS)
def test_resource_field_ref(resource, divisor, resources, value):
    container = {"name": "app", "image": "x", "resources": resources}
    ref = {"resource": resource, **({"divisor": divisor} if divisor else {})}
    assert resource_field_value(make_pod(container), container, ref,
                                node_allocatable=ALLOCATABLE) == value


def test_resource_field_ref_of_another_container_and_errors():
    sidecar = {"name": "side", "image": "x", "resources": {"limits": {"memory": "1Gi"}}}
    app = {"name": "app", "image": "x"}
    pod = make_pod(app, sidecar)
    ref = {"resource": "limits.memory", "containerName": "side", "divisor": "1Mi"}
    assert resource_field_value(pod, app, ref) == "1024"
    with pytest.raises(ConfigError, match="container nope not found"):
        resource_field_value(pod, app, {"resource": "limits.cpu", "containerName": "nope"})
    with pytest.raises(ConfigError, match="unsupported container resource : limits.gpu"):
        resource_field_value(pod, app, {"resource": "limits.gpu"})
    with pytest.raises(ConfigError, match="allocatable"):
        resource_field_value(pod, app, {"resource": "limits.cpu"})


def test_env_references():
    pod = make_pod({"name": "a", "image": "x", "envFrom": [{"configMapRef": {"name": "c1"}}],
                    "env": [{"name": "S", "valueFrom": {"secretKeyRef": {"name": "s1", "key": "k"}}}]},
                   init=[{"name": "i", "image": "x", "envFrom": [{"secretRef": {"name": "s2"}}]}])
    refs = env_references(pod)
    assert refs.config_maps == {"c1"}
    assert refs.secrets == {"s1", "s2"}


def test_env_sources_from_objects_decode_secrets():
    secret = {"metadata": {"name": "s"},
              "data": {"k": base64.b64encode(b"v\xc3\xa9").decode()}}
    sources = EnvSources.from_objects([{"metadata": {"name": "c"}, "data": {"a": "1"},
                                        "binaryData": {"b": "AA=="}}], [secret])
    assert sources.config_maps == {"c": {"a": "1"}}
    assert sources.secrets == {"s": {"k": "vé"}}


# --- the container spec ----------------------------------------------------------------------------


def test_container_spec_names_labels_and_expansion():
    container = {"name": "app", "image": "nginx:1.25",
                 "command": ["/bin/sh", "-c"], "args": ["echo $(GREETING) $$(HOME) $(NOPE)"],
                 "env": [{"name": "GREETING", "value": "hello"}],
                 "workingDir": "/srv", "stdin": True, "tty": True,
                 "resources": {"limits": {"cpu": "1.5", "memory": "128Mi"}}}
    spec = build(make_pod(container), container, restart_count=3)
    assert spec.name == "shop_web_01234567_app_3"
    assert spec.image == "nginx:1.25"
    assert spec.command == ("/bin/sh", "-c")
    assert spec.args == ("echo hello $(HOME) $(NOPE)",)
    assert spec.env == (("GREETING", "hello"),)
    assert spec.working_dir == "/srv"
    assert spec.memory_limit == 128 * Mi  # 134217728 bytes
    assert spec.cpu_quota_millis == 1500  # 1.5 cpu
    assert spec.stdin and spec.tty
    assert spec.labels == {
        LABEL_POD_UID: UID, LABEL_POD_NAME: "web", LABEL_POD_NAMESPACE: "shop",
        LABEL_CONTAINER_NAME: "app", LABEL_CONTAINER_HASH: container_hash(container),
        LABEL_RESTART_COUNT: "3", LABEL_INIT: "false", LABEL_MANAGED: "true"}
    init_spec = build(make_pod(container), container, init=True)
    assert init_spec.labels[LABEL_INIT] == "true"
    assert init_spec.name == "shop_web_01234567_app_0"


def test_no_limits_no_quota():
    container = {"name": "app", "image": "x", "resources": {"requests": {"cpu": "1"}}}
    spec = build(make_pod(container), container)
    assert spec.memory_limit is None and spec.cpu_quota_millis is None


def test_container_hash_covers_name_and_image_only():
    base = {"name": "app", "image": "nginx:1"}
    assert container_hash(base) == container_hash(dict(base))
    assert len(container_hash(base)) == 8
    assert container_hash({**base, "env": [{"name": "X", "value": "1"}]}) == container_hash(base)
    assert container_hash({**base, "image": "nginx:2"}) != container_hash(base)
    assert container_hash({**base, "name": "other"}) != container_hash(base)


SECURITY = [
    # (pod securityContext, container securityContext, allow_privileged, user or error)
    ({}, {}, False, ("", False, False)),
    ({}, {"runAsUser": 1000}, False, ("1000", False, False)),
    ({"runAsUser": 1000, "runAsGroup": 3000}, {}, False, ("1000:3000", False, False)),
    ({"runAsUser": 1000, "runAsGroup": 3000}, {"runAsUser": 2000}, False,
     ("2000:3000", False, False)),  # the container's wins, field by field
    ({}, {"readOnlyRootFilesystem": True}, False, ("", True, False)),
    ({}, {"privileged": True}, True, ("", False, True)),
    ({}, {"privileged": True}, False,
     f'pod with UID "{UID}" specified privileged container, but is disallowed'),
    ({"runAsNonRoot": True}, {"runAsUser": 0}, False,
     f"container's runAsUser breaks non-root policy (pod: \"web_shop({UID})\", container: app)"),
    ({"runAsNonRoot": True}, {"runAsUser": 5}, False, ("5", False, False)),
    ({"runAsGroup": 3000}, {}, False, "user group is specified without user or username"),
]


@pytest.mark.parametrize(("pod_sc", "sc", "allow", "expected"), SECURITY)
def test_security_context(pod_sc, sc, allow, expected):
    container = {"name": "app", "image": "x", "securityContext": sc}
    pod = make_pod(container, securityContext=pod_sc)
    if isinstance(expected, str):
        with pytest.raises(ConfigError) as err:
            build(pod, container, allow_privileged=allow)
        assert str(err.value) == expected
    else:
        spec = build(pod, container, allow_privileged=allow)
        assert (spec.user, spec.read_only_rootfs, spec.privileged) == expected


VOLUMES = [{"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "cfg"}},
           {"name": "host", "hostPath": {"path": "/srv"}}]
PATHS = {"data": "/var/lib/bramble/pods/u/data", "cfg": "/var/lib/bramble/pods/u/cfg",
         "host": "/srv"}


def test_mounts():
    container = {"name": "app", "image": "x",
                 "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                 "volumeMounts": [
                     {"name": "data", "mountPath": "/data"},
                     {"name": "data", "mountPath": "/logs", "subPathExpr": "logs/$(POD)"},
                     {"name": "cfg", "mountPath": "/etc/app"},  # always read-only
                     {"name": "host", "mountPath": "/host", "readOnly": True, "subPath": "a/b"}]}
    spec = build(make_pod(container, volumes=VOLUMES), container, volume_paths=PATHS)
    assert spec.mounts == (
        Mount(PATHS["data"], "/data"),
        Mount(PATHS["data"], "/logs", sub_path="logs/web"),
        Mount(PATHS["cfg"], "/etc/app", read_only=True),
        Mount("/srv", "/host", read_only=True, sub_path="a/b"),
    )


MOUNT_ERRORS = [
    ({"name": "nope", "mountPath": "/x"}, 'cannot find volume "nope" to mount into container "app"'),
    ({"name": "data", "mountPath": "/x", "subPath": "/etc"},
     "error SubPath `/etc` must not be an absolute path"),
    ({"name": "data", "mountPath": "/x", "subPath": "a/../../etc"},
     "unable to provision SubPath `a/../../etc`: must not contain '..'"),
    ({"name": "data", "mountPath": "/x", "subPathExpr": "$(B)/$(A)"}, "missing value for A, B"),
]


@pytest.mark.parametrize(("mount", "message"), MOUNT_ERRORS)
def test_mount_errors(mount, message):
    container = {"name": "app", "image": "x", "volumeMounts": [mount]}
    with pytest.raises(ConfigError) as err:
        build(make_pod(container, volumes=VOLUMES), container, volume_paths=PATHS)
    assert str(err.value) == message


# --- the sandbox --------------------------------------------------------------------------------------


def test_sandbox_spec():
    pod = make_pod(
        {"name": "a", "image": "x", "ports": [
            {"containerPort": 80, "hostPort": 8080, "protocol": "TCP"},
            {"containerPort": 53, "hostPort": 5353, "protocol": "UDP", "hostIP": "127.0.0.1"},
            {"containerPort": 9090}]},  # no hostPort: nothing published
        {"name": "b", "image": "x", "ports": [{"containerPort": 80, "hostPort": 8080,
                                               "protocol": "TCP"}]},  # the same again
        init=[{"name": "i", "image": "x", "ports": [{"containerPort": 1, "hostPort": 1}]}])
    spec = sandbox_spec(pod, "pi-1")
    assert spec.name == "shop_web_01234567"
    assert spec.hostname == "web"
    assert spec.labels == {LABEL_POD_UID: UID, LABEL_POD_NAME: "web",
                           LABEL_POD_NAMESPACE: "shop", LABEL_MANAGED: "true"}
    assert spec.ports == (PortMapping(80, 8080, "tcp"), PortMapping(53, 5353, "udp", "127.0.0.1"))
    assert spec.host_network is False
    assert spec.dns_servers == () and spec.dns_search == ()


def test_host_network_sandbox():
    pod = make_pod({"name": "a", "image": "x", "ports": [{"containerPort": 80, "hostPort": 80}]},
                   hostNetwork=True)
    spec = sandbox_spec(pod, "pi-1", cluster_dns=["10.96.0.10"])
    assert spec.host_network and spec.ports == () and spec.hostname == ""
    assert spec.dns_servers == ()  # ClusterFirst with host network falls back to the host's


def test_hostname():
    pod = make_pod({"name": "a", "image": "x"}, hostname="db-0")
    assert sandbox_spec(pod, "pi-1").hostname == "db-0"
    long = make_pod({"name": "a", "image": "x"})
    long["metadata"]["name"] = "a" * 62 + "-b" + "c" * 10  # cut at 63 leaves a trailing "-"
    assert sandbox_spec(long, "pi-1").hostname == "a" * 62


DNS = [
    # (dnsPolicy, hostNetwork, dnsConfig, servers, search, options)
    ("ClusterFirst", False, None, ("10.96.0.10",),
     ("shop.svc.cluster.local", "svc.cluster.local", "cluster.local", "lan"), ("ndots:5",)),
    ("ClusterFirstWithHostNet", True, None, ("10.96.0.10",),
     ("shop.svc.cluster.local", "svc.cluster.local", "cluster.local", "lan"), ("ndots:5",)),
    ("Default", False, None, (), (), ()),
    ("None", False, {"nameservers": ["1.1.1.1"], "searches": ["example.com"],
                     "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]},
     ("1.1.1.1",), ("example.com",), ("ndots:2", "edns0")),
    # dnsConfig adds to ClusterFirst; its ndots replaces the kubelet's 5 in place.
    ("ClusterFirst", False, {"nameservers": ["1.1.1.1"], "searches": ["lan"],
                             "options": [{"name": "ndots", "value": "1"}]},
     ("10.96.0.10", "1.1.1.1"),
     ("shop.svc.cluster.local", "svc.cluster.local", "cluster.local", "lan"),  # "lan" once
     ("ndots:1",)),
]


@pytest.mark.parametrize(("policy", "host_network", "config", "servers", "search", "options"),
                         DNS)
def test_dns(policy, host_network, config, servers, search, options):
    extra = {"dnsConfig": config} if config else {}
    pod = make_pod({"name": "a", "image": "x"}, dnsPolicy=policy, hostNetwork=host_network,
                   **extra)
    spec = sandbox_spec(pod, "pi-1", cluster_dns=["10.96.0.10"], host_search=["lan"])
    assert (spec.dns_servers, spec.dns_search, spec.dns_options) == (servers, search, options)


# --- volumes ----------------------------------------------------------------------------------------


def test_volume_plan():
    pod = make_pod({"name": "a", "image": "x"}, volumes=[
        {"name": "scratch", "emptyDir": {}},
        {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
        {"name": "host", "hostPath": {"path": "/dev/i2c-1", "type": "CharDevice"}},
        {"name": "cfg", "configMap": {"name": "app-config", "items": [
            {"key": "a.conf", "path": "conf/a.conf", "mode": 0o600}], "defaultMode": 420}},
        {"name": "tls", "secret": {"secretName": "tls", "optional": True, "defaultMode": 256}},
        {"name": "claim", "persistentVolumeClaim": {"claimName": "data"}},
    ])
    plan = {need.name: need for need in volume_plan(pod)}
    assert [n.name for n in volume_plan(pod)] == ["scratch", "shm", "host", "cfg", "tls", "claim"]
    assert plan["scratch"].kind == "emptyDir" and not plan["scratch"].memory
    assert plan["shm"].memory and plan["shm"].size_limit == 64 * Mi  # 67108864 bytes
    assert (plan["host"].path, plan["host"].host_path_type) == ("/dev/i2c-1", "CharDevice")
    cfg = plan["cfg"]
    assert (cfg.kind, cfg.source_name, cfg.default_mode, cfg.optional) == (
        "configMap", "app-config", 420, False)
    assert cfg.items == (KeyToPath("a.conf", "conf/a.conf", 0o600),)
    tls = plan["tls"]
    assert (tls.kind, tls.source_name, tls.default_mode, tls.optional) == (
        "secret", "tls", 256, True)
    assert plan["claim"].kind == "persistentVolumeClaim"
    assert plan["claim"].source == {"claimName": "data"}
