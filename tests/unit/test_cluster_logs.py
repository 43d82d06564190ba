"""`bramble logs -l`'s pure pieces: log times, whole lines, the resume cursor (no line twice,
none lost, whatever the server's timestamp precision), the merge, which containers and when."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from bramble.cli.clusterlogs import (
    SELECTOR_TAIL,
    Cursor,
    Line,
    LineSplitter,
    Options,
    containers_of,
    format_log_time,
    has_started,
    is_over,
    merge,
    options_of,
    parse_log_time,
    prefix,
    render,
    split_stamp,
)
from bramble.cli.commands import UsageError

S = 1_700_000_000  # 2023-11-14T22:13:20Z, in seconds
NS = S * 1_000_000_000


# --- times ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "ns"), [
    (b"2023-11-14T22:13:20Z", NS),
    (b"2023-11-14T22:13:20.5Z", NS + 500_000_000),
    (b"2023-11-14T22:13:20.123456789Z", NS + 123_456_789),  # exact: no float rounding
    (b"2023-11-14T22:13:20.000000001Z", NS + 1),
    # 23:13:20 at +01:00 is 22:13:20 UTC; 17:13:20 at -05:00 too.
    (b"2023-11-14T23:13:20+01:00", NS),
    (b"2023-11-14T17:13:20.25-05:00", NS + 250_000_000),
    (b"2023-11-14 22:13:20Z", None),  # RFC 3339 wants the T here
    (b"2023-02-30T00:00:00Z", None),  # no such day
    (b"2023-11-14T22:13:20", None),  # no zone
    (b"hello", None),
])
def test_parse_log_time(text: bytes, ns: int | None) -> None:
    assert parse_log_time(text) == ns


@pytest.mark.parametrize(("ns", "text"), [
    (NS, "2023-11-14T22:13:20Z"),
    (NS + 500_000_000, "2023-11-14T22:13:20.5Z"),  # trailing zeros cut, as RFC3339Nano
    (NS + 123_456_789, "2023-11-14T22:13:20.123456789Z"),
])
def test_format_log_time_round_trips(ns: int, text: str) -> None:
    assert format_log_time(ns) == text
    assert parse_log_time(text.encode()) == ns


@pytest.mark.parametrize(("line", "expected"), [
    (b"2023-11-14T22:13:20Z hello\n", (NS, b"hello\n")),
    (b"2023-11-14T22:13:20Z \n", (NS, b"\n")),  # an empty line keeps being a line
    (b"no time here\n", (None, b"no time here\n")),
    (b"2023-11-14T22:13:20Z\n", (None, b"2023-11-14T22:13:20Z\n")),  # no space after it
])
def test_split_stamp(line: bytes, expected: tuple[int | None, bytes]) -> None:
    assert split_stamp(line) == expected


# --- whole lines ----------------------------------------------------------------------------

def test_line_splitter_keeps_unfinished_lines_back() -> None:
    s = LineSplitter()
    assert s.feed(b"one\ntw") == [b"one\n"]
    assert s.feed(b"o") == []
    assert s.feed(b"\nthree\nfo") == [b"two\n", b"three\n"]
    assert s.rest == b"fo"


def test_a_last_line_without_newline_gets_one() -> None:
    line = Line.of(b"2023-11-14T22:13:20Z bye")
    assert (line.ns, line.raw, line.text) == (NS, b"2023-11-14T22:13:20Z bye\n", b"bye\n")


@pytest.mark.parametrize(("timestamps", "head", "expected"), [
    (False, prefix("web-1", "c"), b"[pod/web-1/c] a\n[pod/web-1/c] b\n"),
    (True, prefix("web-1", "c"),
     b"[pod/web-1/c] 2023-11-14T22:13:20Z a\n[pod/web-1/c] 2023-11-14T22:13:20Z b\n"),
    (False, b"", b"a\nb\n"),
])
def test_render(timestamps: bool, head: bytes, expected: bytes) -> None:
    lines = [Line.of(b"2023-11-14T22:13:20Z a\n"), Line.of(b"2023-11-14T22:13:20Z b\n")]
    assert render(lines, head, timestamps) == expected


# --- the resume cursor ------------------------------------------------------------------------

def server(log: list[tuple[int, str]], since_ns: int | None, grain: int) -> list[Line]:
    """What the log API answers with timestamps=true and sinceTime: every line at or after
    the time rounded down to the second (the node's Podman `since`), with times printed to
    `grain` nanoseconds (10**9: whole seconds, as Podman 4 prints them; 1: exact)."""
    floor = None if since_ns is None else since_ns - since_ns % 1_000_000_000
    return [Line.of(f"{format_log_time(ns - ns % grain)} {text}\n".encode())
            for ns, text in log if floor is None or ns >= floor]


# Lines of one container: several in the same second, and two with the same nanosecond
# (written by one write), as a busy container produces them.
LOG = [(NS + 100, "a"), (NS + 100, "b"), (NS + 200_000_000, "c"), (NS + 900_000_000, "d"),
       (NS + 1_000_000_000, "e"), (NS + 1_000_000_000, "f"), (NS + 2_500_000_000, "g")]


@pytest.mark.parametrize("grain", [1_000_000_000, 1], ids=["seconds", "nanoseconds"])
@pytest.mark.parametrize("breaks", [[1], [2], [3, 5], [1, 2, 3, 4, 5, 6], [7]])
def test_no_line_twice_and_none_lost_across_reconnects(grain: int, breaks: list[int]) -> None:
    # The stream breaks after `breaks[i]` lines in all (the client got them), then
    # reconnects with sinceTime from the cursor; the output is the log, once.
    cursor, shown, since = Cursor(), [], None
    for stop in [*breaks, len(LOG)]:
        for line in server(LOG, since, grain):
            if len(shown) >= stop:
                break  # the connection drops here
            if cursor.admit(line.ns):
                shown.append(line.text.decode().strip())
        sent = cursor.resume()
        since = parse_log_time(sent.encode()) if sent is not None else None
    assert shown == [text for _, text in LOG]


def test_a_resume_before_any_line_asks_as_the_first_time() -> None:
    assert Cursor().resume() is None


def test_lines_without_a_time_pass_and_do_not_move_the_cursor() -> None:
    c = Cursor()
    assert c.admit(NS) and c.admit(None) and c.admit(NS)
    assert (c.last, c.at_last) == (NS, 2)


def test_the_replay_ends_at_the_first_new_line() -> None:
    c = Cursor()
    for ns in (NS, NS, NS + 5):
        c.admit(ns)
    assert c.resume() == "2023-11-14T22:13:20.000000005Z"
    # Replayed: older lines and the one line seen at the last time are dropped.
    assert [c.admit(ns) for ns in (NS, NS, NS + 5, NS + 5, NS + 6)] == [
        False, False, False, True, True]


# --- the merge ----------------------------------------------------------------------------------

def lines(*items: tuple[int | None, str]) -> list[Line]:
    return [Line(ns, b"", text.encode()) for ns, text in items]


def test_merge_by_time_stable_between_streams() -> None:
    web1 = lines((1, "w1-a"), (3, "w1-b"), (3, "w1-c"))
    web2 = lines((2, "w2-a"), (3, "w2-b"), (None, "w2-c"), (4, "w2-d"))
    got = [(i, line.text.decode()) for i, line in merge([web1, web2])]
    # Time 3: the first stream's lines, then the second's; w2-c (no time) stays after w2-b.
    assert got == [(0, "w1-a"), (1, "w2-a"), (0, "w1-b"), (0, "w1-c"), (1, "w2-b"),
                   (1, "w2-c"), (1, "w2-d")]


# --- which containers, and when ---------------------------------------------------------------

def pod(*, containers: tuple[str, ...] = ("web", "side"), init: tuple[str, ...] = ("setup",),
        annotation: str | None = None, phase: str = "Running", deleting: bool = False,
        restart: str = "Always", statuses: dict[str, Any] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "web-1", "uid": "u1"}
    if annotation:
        meta["annotations"] = {"kubectl.kubernetes.io/default-container": annotation}
    if deleting:
        meta["deletionTimestamp"] = "2023-11-14T22:13:20Z"
    return {"metadata": meta,
            "spec": {"restartPolicy": restart,
                     "initContainers": [{"name": n} for n in init],
                     "containers": [{"name": n} for n in containers]},
            "status": {"phase": phase, "containerStatuses": [
                {"name": n, **s} for n, s in (statuses or {}).items()]}}


@pytest.mark.parametrize(("p", "container", "all_", "expected"), [
    (pod(), "", False, ["web"]),  # kubectl's default: the first container
    (pod(annotation="side"), "", False, ["side"]),  # ... unless the annotation names one
    (pod(annotation="nope"), "", False, ["web"]),
    (pod(), "side", False, ["side"]),
    (pod(), "setup", False, ["setup"]),  # an init container can be named
    (pod(), "db", False, []),  # not in this pod: none of it
    (pod(), "", True, ["setup", "web", "side"]),  # init containers first
])
def test_containers_of(p: dict, container: str, all_: bool, expected: list[str]) -> None:
    assert containers_of(p, container, all_) == expected


@pytest.mark.parametrize(("p", "started"), [
    (pod(phase="Pending"), False),  # still being created
    (pod(phase="Running"), True),
    (pod(phase="Pending", statuses={"web": {"state": {"running": {}}}}), True),
    (pod(phase="Pending", statuses={"web": {"state": {"waiting": {}}}}), False),
    (pod(phase="Pending", statuses={"web": {"state": {"waiting": {}},
                                            "lastState": {"terminated": {}}}}), True),
    (pod(phase="Succeeded"), True),
])
def test_has_started(p: dict, started: bool) -> None:
    assert has_started(p, "web") is started


def terminated(code: int) -> dict[str, Any]:
    return {"web": {"state": {"terminated": {"exitCode": code}}}}


@pytest.mark.parametrize(("p", "over"), [
    (None, True),  # deleted
    (pod(deleting=True), True),
    (pod(phase="Succeeded"), True),
    (pod(phase="Failed"), True),
    (pod(), False),  # running: a broken stream reconnects
    (pod(statuses=terminated(1)), False),  # Always: it restarts
    (pod(restart="Never", statuses=terminated(0)), True),
    (pod(restart="OnFailure", statuses=terminated(1)), False),  # it will run again
    (pod(restart="OnFailure", statuses=terminated(0)), True),
])
def test_is_over(p: dict | None, over: bool) -> None:
    assert is_over(p, "web") is over


def test_an_init_container_that_succeeded_is_over() -> None:
    p = pod()
    p["status"]["initContainerStatuses"] = [
        {"name": "setup", "state": {"terminated": {"exitCode": 0}}}]
    assert is_over(p, "setup") and not is_over(p, "web")


# --- options --------------------------------------------------------------------------------

def args(**given: Any) -> argparse.Namespace:
    base = {"container": "", "all_containers": False, "follow": False, "previous": False,
            "timestamps": False, "prefix": None, "tail": -1, "since": "", "since_time": "",
            "limit_bytes": None, "max_log_requests": 5}
    return argparse.Namespace(**{**base, **given})


def test_kubectl_defaults_with_a_selector() -> None:
    opts = options_of(args(), selector=True)
    assert (opts.tail, opts.prefix) == (SELECTOR_TAIL, True)
    assert options_of(args(prefix=False), selector=True).prefix is False
    single = options_of(args(), selector=False)
    assert (single.tail, single.prefix) == (None, False)


def test_queries() -> None:
    opts = options_of(args(follow=True, tail=3, since_time="2023-11-14T23:13:20+01:00",
                           limit_bytes=100), selector=True)
    assert opts.first_query("web", from_start=False) == {
        "container": "web", "timestamps": "true", "follow": "true", "tailLines": "3",
        "sinceTime": "2023-11-14T22:13:20Z", "limitBytes": "100"}
    # A pod that appeared while following: its whole log is new, no --tail.
    assert "tailLines" not in opts.first_query("web", from_start=True)
    assert Options(since_seconds=600).first_query("c", from_start=False) == {
        "container": "c", "timestamps": "true", "sinceSeconds": "600"}


@pytest.mark.parametrize(("given", "message"), [
    ({"since": "1m", "since_time": "2023-11-14T22:13:20Z"}, "at most one"),
    ({"since_time": "yesterday"}, "invalid --since-time"),
    ({"all_containers": True, "container": "c"}, "--all-containers"),
    ({"max_log_requests": 0}, "--max-log-requests"),
    ({"previous": True, "follow": True}, "--previous"),
])
def test_bad_options(given: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        options_of(args(**given), selector=True)


@pytest.mark.parametrize(("pod", "selector", "message"), [
    ("web-1", "app=web", "not both"),
    ("", "", "give a pod name"),
])
async def test_logs_wants_a_pod_or_a_selector(pod: str, selector: str, message: str) -> None:
    from bramble.cli.commands import Env
    from bramble.cli.streams import logs

    env = Env(api=None, namespace="default")  # type: ignore[arg-type]  (never reached)
    with pytest.raises(UsageError, match=message):
        await logs(env, args(pod=pod, selector=selector))
