"""The pure pieces of the HTTP layer: paths, content negotiation, bodies, discovery media
types, the Prometheus text format and continue tokens."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from bramble.kube.errors import BadRequest, NotAcceptable, NotFound, UnsupportedMediaType
from bramble.master.api import encoding
from bramble.master.api.app import Parsed, parse_path
from bramble.master.api.discovery import AGGREGATED_V2, AGGREGATED_V2BETA1, wants_aggregated
from bramble.master.api.encoding import AS_METADATA, AS_OBJECT, AS_TABLE, Output
from bramble.master.api.resources import Registry, ResourceType
from bramble.master.api.rest import Target, _decode_continue, _encode_continue
from bramble.master.metrics import Counter, Gauge, Histogram
from bramble.master.metrics import Registry as Metrics

REGISTRY = Registry()


def rt(plural: str, group: str = "") -> ResourceType:
    found = REGISTRY.by_path(group, "v1", plural)
    assert found is not None, plural
    return found


PODS, NODES, NAMESPACES = rt("pods"), rt("nodes"), rt("namespaces")
DEPLOYMENTS = rt("deployments", "apps")


# -- parse_path ---------------------------------------------------------------------------

PATHS = [
    # (path, parsed)
    ("/api", Parsed(None, "", "", True)),
    ("/api/v1", Parsed(None, "", "v1", True)),
    ("/apis", Parsed(None, "", "", False)),
    ("/apis/apps", Parsed(None, "apps", "", False)),
    ("/apis/apps/v1", Parsed(None, "apps", "v1", False)),
    ("/api/v1/pods", Parsed(Target(PODS), "", "v1", True)),
    ("/api/v1/pods/", Parsed(Target(PODS), "", "v1", True)),  # a trailing slash
    ("/api/v1/namespaces/default/pods", Parsed(Target(PODS, "default"), "", "v1", True)),
    ("/api/v1/namespaces/default/pods/web",
     Parsed(Target(PODS, "default", "web"), "", "v1", True)),
    ("/api/v1/namespaces/default/pods/web/status",
     Parsed(Target(PODS, "default", "web", "status"), "", "v1", True)),
    ("/api/v1/namespaces/default/pods/web/binding",
     Parsed(Target(PODS, "default", "web", "binding"), "", "v1", True)),
    ("/api/v1/nodes", Parsed(Target(NODES), "", "v1", True)),
    ("/api/v1/nodes/pi1", Parsed(Target(NODES, "", "pi1"), "", "v1", True)),
    ("/api/v1/nodes/pi1/status", Parsed(Target(NODES, "", "pi1", "status"), "", "v1", True)),
    # Namespaces themselves: the same shapes, told apart by the registry.
    ("/api/v1/namespaces", Parsed(Target(NAMESPACES), "", "v1", True)),
    ("/api/v1/namespaces/default", Parsed(Target(NAMESPACES, "", "default"), "", "v1", True)),
    ("/api/v1/namespaces/default/status",
     Parsed(Target(NAMESPACES, "", "default", "status"), "", "v1", True)),
    ("/api/v1/namespaces/pods", Parsed(Target(NAMESPACES, "", "pods"), "", "v1", True)),
    ("/api/v1/namespaces/status/status",
     Parsed(Target(NAMESPACES, "", "status", "status"), "", "v1", True)),
    ("/apis/apps/v1/deployments", Parsed(Target(DEPLOYMENTS), "apps", "v1", False)),
    ("/apis/apps/v1/namespaces/prod/deployments/web/scale",
     Parsed(Target(DEPLOYMENTS, "prod", "web", "scale"), "apps", "v1", False)),
]


@pytest.mark.parametrize(("path", "parsed"), PATHS, ids=[p for p, _ in PATHS])
def test_parse_path(path: str, parsed: Parsed) -> None:
    assert parse_path(REGISTRY, path) == parsed


@pytest.mark.parametrize("path", [
    "/", "/foo", "/healthz/api",
    "/api/v1/foos",  # unknown resource
    "/api/v2/pods",  # unknown version
    "/apis/apps/v1/pods",  # pods are not in apps
    "/api/v1/deployments",  # deployments are not in core
    "/apis/apps/v1/foos",
    "/api/v1/namespaces/default/pods/web/scale",  # scale is not a pod subresource
    "/api/v1/nodes/pi1/binding",
    "/api/v1/namespaces/default/pods/web/status/extra",  # too deep
    "/api/v1/namespaces/default/nodes",  # cluster-scoped under a namespace
    "/api/v1/namespaces/default/namespaces",
])
def test_parse_path_unknown_is_not_found(path: str) -> None:
    with pytest.raises(NotFound) as err:
        parse_path(REGISTRY, path)
    assert err.value.code == 404


# -- negotiate ---------------------------------------------------------------------------

TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io"

NEGOTIATION = [
    # (Accept, chosen representation)
    (None, Output(AS_OBJECT)),
    ("", Output(AS_OBJECT)),
    ("application/json", Output(AS_OBJECT)),
    ("application/json; charset=utf-8", Output(AS_OBJECT)),
    ("Application/JSON", Output(AS_OBJECT)),
    ("*/*", Output(AS_OBJECT)),
    ("application/*", Output(AS_OBJECT)),
    ("application/json, */*", Output(AS_OBJECT)),
    # kubectl asks for protobuf first and falls back to JSON.
    ("application/vnd.kubernetes.protobuf, application/json", Output(AS_OBJECT)),
    ("application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,"
     f"{TABLE_ACCEPT},application/json", Output(AS_TABLE)),
    (f"{TABLE_ACCEPT},application/json", Output(AS_TABLE)),
    ("application/json;as=Table;v=v1beta1;g=meta.k8s.io", Output(AS_TABLE)),
    ("application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json",
     Output(AS_METADATA)),
    ("application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io", Output(AS_METADATA)),
    # An as= bramble does not know is skipped for the next choice.
    ("application/json;as=APIGroupDiscoveryList;v=v2;g=apidiscovery.k8s.io,application/json",
     Output(AS_OBJECT)),
    ("application/yaml", Output(AS_OBJECT, yaml=True)),
    ("text/html, application/yaml", Output(AS_OBJECT, yaml=True)),
    ("application/yaml;as=Table;v=v1;g=meta.k8s.io,application/json", Output(AS_OBJECT)),
]


@pytest.mark.parametrize(("accept", "output"), NEGOTIATION)
def test_negotiate(accept: str | None, output: Output) -> None:
    assert encoding.negotiate(accept) == output


@pytest.mark.parametrize("accept", [
    "application/vnd.kubernetes.protobuf",
    "text/html",
    "text/plain",
    "application/json;as=Foo",
    "application/yaml;as=Table;v=v1;g=meta.k8s.io",
])
def test_negotiate_unacceptable(accept: str) -> None:
    with pytest.raises(NotAcceptable) as err:
        encoding.negotiate(accept)
    assert err.value.code == 406


# -- decode_body -------------------------------------------------------------------------

OBJ = {"kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"a": "1"}}
YAML_BODY = b"kind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  a: '1'\n"


@pytest.mark.parametrize(("body", "content_type", "decoded"), [
    (orjson.dumps(OBJ), "application/json", OBJ),
    (orjson.dumps(OBJ), None, OBJ),  # no Content-Type: JSON
    (orjson.dumps(OBJ), "application/json; charset=utf-8", OBJ),
    (orjson.dumps(OBJ), "APPLICATION/JSON", OBJ),
    (orjson.dumps(OBJ), "application/yaml", OBJ),  # JSON is YAML
    (YAML_BODY, "application/yaml", OBJ),
    (YAML_BODY, "application/apply-patch+yaml", OBJ),
    (b'{"a": 1}', "application/merge-patch+json", {"a": 1}),
    (b'[{"op": "remove", "path": "/a"}]', "application/json-patch+json",
     [{"op": "remove", "path": "/a"}]),
    (b'{"a": 1}', "application/strategic-merge-patch+json", {"a": 1}),
    (b"  \n" + orjson.dumps(OBJ), "application/json", OBJ),
])
def test_decode_body(body: bytes, content_type: str | None, decoded: Any) -> None:
    assert encoding.decode_body(body, content_type) == decoded


@pytest.mark.parametrize(("body", "content_type", "error"), [
    (b"", "application/json", BadRequest),
    (b"  \n", "application/yaml", BadRequest),
    (YAML_BODY, "application/json", BadRequest),  # YAML only with a YAML media type
    (YAML_BODY, "application/merge-patch+json", BadRequest),
    (b"{not json", None, BadRequest),
    (b"a: [unclosed", "application/yaml", BadRequest),
    (b"\x0a\x0bk8s\x00", "application/vnd.kubernetes.protobuf", UnsupportedMediaType),
    (orjson.dumps(OBJ), "application/vnd.kubernetes.protobuf", UnsupportedMediaType),
    (orjson.dumps(OBJ), "text/xml", UnsupportedMediaType),
    (orjson.dumps(OBJ), "application/x-www-form-urlencoded", UnsupportedMediaType),
])
def test_decode_body_errors(body: bytes, content_type: str | None, error: type) -> None:
    with pytest.raises(error) as err:
        encoding.decode_body(body, content_type)
    assert err.value.code == {BadRequest: 400, UnsupportedMediaType: 415}[error]


def test_decode_body_protobuf_says_what_to_do() -> None:
    with pytest.raises(UnsupportedMediaType) as err:
        encoding.decode_body(b"x", "application/vnd.kubernetes.protobuf")
    assert "protobuf" in err.value.message and "kubectl apply" in err.value.message


# -- list_body, watch_line, bookmark_line --------------------------------------------------


def raw_pod(name: str, rv: int = 5) -> bytes:
    return orjson.dumps({"kind": "Pod", "apiVersion": "v1", "metadata": {
        "name": name, "namespace": "default", "resourceVersion": str(rv),
        "creationTimestamp": "2024-05-01T12:00:00Z"},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
        "status": {"phase": "Running"}})


@pytest.mark.parametrize("count", [0, 1, 2, 50])
def test_list_body_is_valid_json(count: int) -> None:
    raws = [raw_pod(f"p{i}") for i in range(count)]
    body = orjson.loads(encoding.list_body(PODS, raws, 42))
    assert body == {"kind": "PodList", "apiVersion": "v1",
                    "metadata": {"resourceVersion": "42"},
                    "items": [orjson.loads(r) for r in raws]}


@pytest.mark.parametrize(("token", "remaining", "meta"), [
    ("", None, {"resourceVersion": "7"}),
    ("", 0, {"resourceVersion": "7"}),
    ("abc", 3, {"resourceVersion": "7", "continue": "abc", "remainingItemCount": 3}),
    ("abc", None, {"resourceVersion": "7", "continue": "abc"}),
])
def test_list_body_metadata(token: str, remaining: int | None, meta: dict) -> None:
    body = orjson.loads(encoding.list_body(DEPLOYMENTS, [], 7, token, remaining))
    assert body["kind"] == "DeploymentList" and body["apiVersion"] == "apps/v1"
    assert body["metadata"] == meta


@pytest.mark.parametrize("kind", ["ADDED", "MODIFIED", "DELETED"])
def test_watch_line_plain_object(kind: str) -> None:
    line = encoding.watch_line(kind, PODS, raw_pod("web"), Output(AS_OBJECT))
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert orjson.loads(line) == {"type": kind, "object": orjson.loads(raw_pod("web"))}


def test_watch_line_table_and_metadata_views() -> None:
    table = orjson.loads(encoding.watch_line("ADDED", PODS, raw_pod("web"), Output(AS_TABLE)))
    assert table["type"] == "ADDED"
    assert table["object"]["kind"] == "Table"
    assert table["object"]["metadata"] == {"resourceVersion": "5"}
    [row] = table["object"]["rows"]
    assert row["cells"][0] == "web"
    assert row["object"]["kind"] == "PartialObjectMetadata"

    meta = orjson.loads(encoding.watch_line("DELETED", PODS, raw_pod("web"),
                                            Output(AS_METADATA)))
    assert meta == {"type": "DELETED", "object": {
        "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
        "metadata": orjson.loads(raw_pod("web"))["metadata"]}}


@pytest.mark.parametrize(("rtype", "end", "obj"), [
    (PODS, False, {"kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": "9"}}),
    (DEPLOYMENTS, True, {"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {
        "resourceVersion": "9", "annotations": {"k8s.io/initial-events-end": "true"}}}),
])
def test_bookmark_line(rtype: ResourceType, end: bool, obj: dict) -> None:
    line = encoding.bookmark_line(rtype, 9, initial_events_end=end)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert orjson.loads(line) == {"type": "BOOKMARK", "object": obj}


# -- wants_aggregated ----------------------------------------------------------------------

KUBECTL_DISCOVERY = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
                     "application/json;g=apidiscovery.k8s.io;v=v2beta1;"
                     "as=APIGroupDiscoveryList,application/json")


@pytest.mark.parametrize(("accept", "chosen"), [
    (None, None),
    ("", None),
    ("application/json", None),
    ("application/json, */*", None),
    (KUBECTL_DISCOVERY, AGGREGATED_V2),
    ("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
     "application/json", AGGREGATED_V2BETA1),
    # The client's order wins.
    ("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
     "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
     AGGREGATED_V2BETA1),
    ("application/json; g=apidiscovery.k8s.io; v=v2; as=APIGroupDiscoveryList",
     AGGREGATED_V2),
    # Naming the group without asking for the list type is not a request for it.
    ("application/json;g=apidiscovery.k8s.io;v=v2", None),
    ("application/json;g=other.k8s.io;v=v2;as=APIGroupDiscoveryList,"
     "apidiscovery.k8s.io", None),
    # A version bramble does not serve is skipped for the client's next choice.
    pytest.param("application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList,"
                 "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
                 AGGREGATED_V2),
])
def test_wants_aggregated(accept: str | None, chosen: str | None) -> None:
    assert wants_aggregated(accept) == chosen


# -- metrics ----------------------------------------------------------------------------------


def test_counter_render() -> None:
    metrics = Metrics()
    requests = metrics.counter("requests_total", "Requests.", ("verb", "code"))
    requests.inc("list", "200")
    requests.inc("get", "404")
    requests.inc("get", "200", amount=2.5)
    requests.inc("get", "200")
    assert requests.value("get", "200") == 3.5
    assert requests.value("never", "0") == 0
    assert metrics.render() == (
        "# HELP requests_total Requests.\n"
        "# TYPE requests_total counter\n"
        'requests_total{verb="get",code="200"} 3.5\n'
        'requests_total{verb="get",code="404"} 1\n'
        'requests_total{verb="list",code="200"} 1\n')


def test_unlabelled_metrics_and_empty_registry() -> None:
    assert Metrics().render() == "\n"
    metrics = Metrics()
    metrics.counter("ticks_total", "Ticks.").inc()
    metrics.gauge("temp", "Temperature.").set(-3.25)
    metrics.counter("unused_total", "Never incremented.")
    assert metrics.render() == (
        "# HELP ticks_total Ticks.\n# TYPE ticks_total counter\nticks_total 1\n"
        "# HELP temp Temperature.\n# TYPE temp gauge\ntemp -3.25\n"
        "# HELP unused_total Never incremented.\n# TYPE unused_total counter\n")


def test_gauge_set_and_collect() -> None:
    metrics = Metrics()
    gauge = metrics.gauge("objects", "Objects.", ("resource",))
    gauge.set(3, "pods")
    gauge.set(1, "nodes")
    gauge.set(4, "pods")
    counts = {"pods": 10}
    metrics.gauge("watchers", "Watchers.", collect=lambda: [((), sum(counts.values()))])
    first = metrics.render()
    counts["nodes"] = 2  # collected at scrape time, every scrape
    second = metrics.render()
    assert 'objects{resource="nodes"} 1\nobjects{resource="pods"} 4\n' in first
    assert "watchers 10\n" in first and "watchers 12\n" in second


def test_gauge_collect_wins_over_set_values() -> None:
    gauge = Gauge("g", "G.", ("k",), collect=lambda: [(("a",), 1.5)])
    gauge.set(99, "b")
    assert list(gauge.samples()) == ['g{k="a"} 1.5']


@pytest.mark.parametrize(("value", "text"), [
    (0, "0"), (1.0, "1"), (-2.0, "-2"), (0.5, "0.5"), (1e20, "1e+20"), (123456789, "123456789"),
    pytest.param(float("inf"), "+Inf"),
    pytest.param(float("nan"), "NaN"),
])
def test_sample_values(value: float, text: str) -> None:
    gauge = Gauge("g", "G.")
    gauge.set(value)
    assert list(gauge.samples()) == [f"g {text}"]


def test_histogram_buckets_are_cumulative_with_inf() -> None:
    hist = Histogram("latency_seconds", "Latency.", ("verb",), buckets=(0.1, 0.5, 1))
    for value in (0.05, 0.1, 0.3, 0.7, 5):  # 0.1 falls in le=0.1: bounds are inclusive
        hist.observe(value, "get")
    hist.observe(0.2, "list")
    assert list(hist.samples()) == [
        'latency_seconds_bucket{verb="get",le="0.1"} 2',
        'latency_seconds_bucket{verb="get",le="0.5"} 3',
        'latency_seconds_bucket{verb="get",le="1"} 4',
        'latency_seconds_bucket{verb="get",le="+Inf"} 5',
        f'latency_seconds_sum{{verb="get"}} {0.05 + 0.1 + 0.3 + 0.7 + 5!r}',
        'latency_seconds_count{verb="get"} 5',
        'latency_seconds_bucket{verb="list",le="0.1"} 0',
        'latency_seconds_bucket{verb="list",le="0.5"} 1',
        'latency_seconds_bucket{verb="list",le="1"} 1',
        'latency_seconds_bucket{verb="list",le="+Inf"} 1',
        'latency_seconds_sum{verb="list"} 0.2',
        'latency_seconds_count{verb="list"} 1',
    ]


def test_histogram_without_labels_and_default_buckets() -> None:
    metrics = Metrics()
    hist = metrics.histogram("h", "H.")
    hist.observe(0.003)
    lines = metrics.render().splitlines()
    assert lines[:2] == ["# HELP h H.", "# TYPE h histogram"]
    assert 'h_bucket{le="0.0025"} 0' in lines
    assert 'h_bucket{le="0.005"} 1' in lines
    assert 'h_bucket{le="10"} 1' in lines
    assert lines[-3:] == ['h_bucket{le="+Inf"} 1', "h_sum 0.003", "h_count 1"]


@pytest.mark.parametrize(("value", "escaped"), [
    ("plain", "plain"),
    ('say "hi"', 'say \\"hi\\"'),
    ("C:\\path", "C:\\\\path"),
    ("two\nlines", "two\\nlines"),
    ('\\"\n', '\\\\\\"\\n'),
    ("ünïcode", "ünïcode"),
])
def test_label_values_are_escaped(value: str, escaped: str) -> None:
    counter = Counter("c_total", "C.", ("path",))
    counter.inc(value)
    assert list(counter.samples()) == [f'c_total{{path="{escaped}"}} 1']


# -- continue tokens ----------------------------------------------------------------------------


@pytest.mark.parametrize(("rv", "after"), [
    (1, ("default", "web")),
    (123456789, ("", "cluster-scoped")),
    (7, ("ns-with-dashes", "name.with.dots-and-ü")),
    (0, ("", "")),
])
def test_continue_token_round_trip(rv: int, after: tuple[str, str]) -> None:
    token = _encode_continue(rv, after)
    assert "=" not in token and "/" not in token and "+" not in token  # URL-safe, unpadded
    assert _decode_continue(token) == (rv, after)


def _token(value: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


@pytest.mark.parametrize("token", [
    "!!!",
    "not base64 at all",
    "ünïcode",
    base64.urlsafe_b64encode(b"not json").decode(),
    _token([1, 2]),
    _token("a string"),
    _token({"rv": 1, "ns": "default"}),  # no name
    _token({"ns": "default", "name": "web"}),  # no rv
    _token({"rv": "seven", "ns": "default", "name": "web"}),
    _token({"rv": None, "ns": "default", "name": "web"}),
    _token({"rv": 1, "ns": 1, "name": None}),  # types a list cannot compare
])
def test_bad_continue_token_is_bad_request(token: str) -> None:
    with pytest.raises(BadRequest) as err:
        _decode_continue(token)
    assert err.value.code == 400
    assert "continue key is not valid" in err.value.message
