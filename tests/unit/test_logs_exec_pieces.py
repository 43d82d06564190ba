"""The pure parts of `kubectl logs/exec`: node/server.py's options, container choice and exit
Status; master/api/proxy.py's endpoint validation and default container."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey
from multidict import MultiDict

from bramble.kube.errors import BadRequest, Invalid
from bramble.master.api.proxy import (
    Endpoints,
    _unreachable,
    default_container,
    parse_endpoint,
)
from bramble.node.runtime.types import LABEL_RESTART_COUNT, ObservedContainer, ObservedPod
from bramble.node.server import (
    ExecOptions,
    LogOptions,
    exec_options,
    exit_status,
    log_options,
    pick_container,
)

NOW = 1_800_000_000.0


@pytest.mark.parametrize(("query", "expected"), [
    ({}, LogOptions()),
    ({"follow": "true", "previous": "1", "timestamps": "false"},
     LogOptions(follow=True, previous=True)),
    ({"tailLines": "0"}, LogOptions(tail_lines=0)),
    ({"sinceSeconds": "60"}, LogOptions(since=NOW - 60)),
    ({"sinceTime": "2027-01-15T08:00:00Z"}, LogOptions(since=NOW)),  # NOW in RFC 3339
    ({"limitBytes": "10"}, LogOptions(limit_bytes=10)),
])
def test_log_options(query: dict[str, str], expected: LogOptions) -> None:
    assert log_options(query, NOW) == expected


@pytest.mark.parametrize(("query", "message"), [
    ({"tailLines": "-1"}, "tailLines: invalid value -1"),
    ({"tailLines": "x"}, "must be an integer"),
    ({"sinceSeconds": "0"}, "must be at least 1"),
    ({"sinceSeconds": "5", "sinceTime": "2027-01-15T08:00:00Z"}, "at most one of"),
    ({"sinceTime": "yesterday"}, "must be RFC 3339"),
    ({"follow": "yes"}, "must be true or false"),
])
def test_bad_log_options(query: dict[str, str], message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        log_options(query, NOW)


def test_exec_options() -> None:
    query = MultiDict([("command", "sh"), ("command", "-c"), ("command", "exit 3"),
                       ("stdout", "true"), ("stdin", "true")])
    assert exec_options(query) == ExecOptions(("sh", "-c", "exit 3"), stdin=True, stdout=True)
    with pytest.raises(BadRequest, match="at least one command"):
        exec_options(MultiDict([("stdout", "true")]))
    with pytest.raises(BadRequest, match="at least one of stdin, stdout, stderr"):
        exec_options(MultiDict([("command", "true")]))


def test_exit_status_is_what_kubectl_reads() -> None:
    assert exit_status(["true"], 0) == {"metadata": {}, "status": "Success"}
    assert exit_status(["sh", "-c", "exit 3"], 3) == {
        "metadata": {}, "status": "Failure",
        "message": "command terminated with non-zero exit code: error executing command "
                   "[sh -c exit 3], exit code 3",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}}


def _ctr(cid: str, restarts: int, state: str = "exited", started: str = "t") -> ObservedContainer:
    return ObservedContainer(id=cid, name="c", state=state, started_at=started,
                             labels={LABEL_RESTART_COUNT: str(restarts)})


def test_pick_container_current_and_previous() -> None:
    pods = {"u": ObservedPod("u", containers=(_ctr("a", 0), _ctr("b", 1),
                                              _ctr("c", 2, "running")))}
    assert pick_container(pods, "p", "c").id == "c"
    assert pick_container(pods, "p", "c", previous=True).id == "b"
    one = {"u": ObservedPod("u", containers=(_ctr("a", 0, "running"),))}
    with pytest.raises(BadRequest, match='previous terminated container "c" in pod "p"'):
        pick_container(one, "p", "c", previous=True)
    for waiting in ({}, {"u": ObservedPod("u", containers=(_ctr("a", 0, "created", ""),))}):
        with pytest.raises(BadRequest, match="is waiting to start: ContainerCreating"):
            pick_container(waiting, "p", "c")
    with pytest.raises(BadRequest, match="waiting to start"):
        pick_container(pods, "p", "other")


SHA = "ab" * 32
TOKEN = "t" * 43


@pytest.mark.parametrize(("body", "peer", "expected"), [
    ({"port": 10250, "token": TOKEN, "certSha256": SHA}, "10.0.0.7",
     ("10.0.0.7", 10250)),
    ({"port": 1, "token": TOKEN, "certSha256": SHA.upper(), "address": "fd00::1"}, "10.0.0.7",
     ("fd00::1", 1)),
])
def test_parse_endpoint(body: dict, peer: str, expected: tuple[str, int]) -> None:
    endpoint = parse_endpoint("pi1", body, peer)
    assert (endpoint.address, endpoint.port, endpoint.token, endpoint.cert_sha256) == (
        *expected, TOKEN, SHA)
    assert TOKEN not in repr(endpoint)
    assert endpoint.url("/x").startswith("https://[fd00::1]:1/" if ":" in expected[0]
                                         else "https://10.0.0.7:10250/")


@pytest.mark.parametrize(("body", "field"), [
    ({"port": 0, "token": TOKEN, "certSha256": SHA}, "port"),
    ({"port": True, "token": TOKEN, "certSha256": SHA}, "port"),
    ({"port": 1, "token": "short", "certSha256": SHA}, "token"),
    ({"port": 1, "token": TOKEN + "\r\nX-Evil: 1", "certSha256": SHA}, "token"),
    ({"port": 1, "token": TOKEN, "certSha256": "ab" * 20}, "certSha256"),
    ({"port": 1, "token": TOKEN, "certSha256": SHA, "address": "pi1.local"}, "address"),
])
def test_bad_endpoint(body: dict, field: str) -> None:
    with pytest.raises(Invalid) as err:
        parse_endpoint("pi1", body, "10.0.0.7")
    assert [c["field"] for c in err.value.causes] == [field]


def test_default_container() -> None:
    one = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}],
                                               "initContainers": [{"name": "init"}]}}
    assert default_container(one, "") == "c"
    assert default_container(one, "init") == "init"
    with pytest.raises(BadRequest, match="container x is not valid for pod p"):
        default_container(one, "x")
    two = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}, {"name": "b"}]}}
    with pytest.raises(BadRequest, match=r"must be specified for pod p, choose one of: \[a b\]"):
        default_container(two, "")


async def test_endpoints_survive_a_master_restart(tmp_path) -> None:
    path = tmp_path / "node-endpoints.json"
    endpoint = parse_endpoint("pi1", {"port": 10250, "token": TOKEN, "certSha256": SHA},
                              "10.0.0.7")
    await Endpoints(path).put("pi1", endpoint)
    assert path.stat().st_mode & 0o777 == 0o600  # it holds the nodes' kubelet tokens
    again = Endpoints(path)
    await again.load()
    assert again.get("pi1") == endpoint and again.get("pi2") is None


def test_an_unreachable_agent_is_named_without_the_connection_internals() -> None:
    key = ConnectionKey("10.0.0.9", 10250, True, True, None, None, None)
    err = aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "Connect call failed"))
    assert str(_unreachable("pi1", err)) == \
        'cannot reach the agent of node "pi1": [Errno 111] Connect call failed'
