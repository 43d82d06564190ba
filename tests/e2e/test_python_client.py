"""The official `kubernetes` Python client as an independent consumer of the API."""

from __future__ import annotations

import threading

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from tests.conftest import MasterHandle


@pytest.fixture(scope="module")
def k8s(master_proc: MasterHandle) -> client.ApiClient:
    api_client = config.new_client_from_config(config_file=str(master_proc.kubeconfig))
    yield api_client
    api_client.close()


def _pod(name: str, labels: dict[str, str]) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1PodSpec(containers=[client.V1Container(
            name="c", image="busybox:1.36",
            resources=client.V1ResourceRequirements(requests={"cpu": "50m",
                                                              "memory": "32Mi"}))]))


def test_create_list_patch_delete(k8s: client.ApiClient) -> None:
    core = client.CoreV1Api(k8s)
    ns = core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="pyc")))
    assert ns.status.phase == "Active"
    for i in range(4):
        core.create_namespaced_pod("pyc", _pod(f"p{i}", {"app": "a" if i < 3 else "b",
                                                         "i": str(i)}))
    pods = core.list_namespaced_pod("pyc", label_selector="app=a,i notin (0)")
    assert sorted(p.metadata.name for p in pods.items) == ["p1", "p2"]
    pods = core.list_namespaced_pod("pyc", field_selector="metadata.name=p3")
    assert [p.metadata.name for p in pods.items] == ["p3"]
    patched = core.patch_namespaced_pod("p1", "pyc", {"metadata": {"labels": {"x": "y"}}})
    assert patched.metadata.labels == {"app": "a", "i": "1", "x": "y"}
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod("pyc", _pod("p1", {}))
    assert err.value.status == 409
    core.delete_namespaced_pod("p0", "pyc")
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod("p0", "pyc")
    assert err.value.status == 404
    apps = client.AppsV1Api(k8s)
    dep = apps.create_namespaced_deployment("pyc", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "d"}},
                 "template": {"metadata": {"labels": {"app": "d"}},
                              "spec": {"containers": [{"name": "c", "image": "x"}]}}}})
    assert dep.spec.strategy.rolling_update.max_surge == "25%"
    scale = apps.patch_namespaced_deployment_scale("d", "pyc", {"spec": {"replicas": 3}})
    assert scale.spec.replicas == 3


def test_watch_stream(k8s: client.ApiClient) -> None:
    core = client.CoreV1Api(k8s)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="pyw")))
    rv = core.list_namespaced_config_map("pyw").metadata.resource_version
    seen: list[tuple[str, str]] = []
    w = watch.Watch()

    def consume() -> None:
        for event in w.stream(core.list_namespaced_config_map, "pyw", resource_version=rv,
                              timeout_seconds=10):
            seen.append((event["type"], event["object"].metadata.name))
            if len(seen) == 3:
                w.stop()

    t = threading.Thread(target=consume)
    t.start()
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cm1"), data={"a": "1"})
    core.create_namespaced_config_map("pyw", body)
    core.patch_namespaced_config_map("cm1", "pyw", {"data": {"a": "2"}})
    core.delete_namespaced_config_map("cm1", "pyw")
    t.join(15)
    assert seen == [("ADDED", "cm1"), ("MODIFIED", "cm1"), ("DELETED", "cm1")]


def test_invalid_object_is_422_with_causes(k8s: client.ApiClient) -> None:
    core = client.CoreV1Api(k8s)
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod("default", _pod("Bad_Name", {}))
    assert err.value.status == 422
    assert "metadata.name" in err.value.body
