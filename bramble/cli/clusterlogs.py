"""`bramble logs -l SELECTOR`: the logs of every matching pod and container, wherever they
run, merged into one output whose lines are prefixed `[pod/NAME/CONTAINER] ` as kubectl's
`--prefix` does.

Every stream is the pod log API kubectl uses (GET .../pods/NAME/log?container=C), asked
with `timestamps=true` whatever the user wants to see: the times order the merge, and a
followed stream that breaks (a node agent or the master restarting, a container
restarting) resumes with `sinceTime` = the time of the last line seen, skipping the lines
it had already printed - so nothing is repeated and nothing lost. The timestamps are cut
off again unless `--timestamps` asked for them.

- Without -f, every stream is read (at most --max-log-requests at a time) and the lines
  are merged by time, stably: lines of one stream keep their order, and lines of the same
  time keep the order of the pods (by name) and containers.
- With -f, the matching pods are listed and then watched. A container's stream starts once
  the container has started, reconnects while its pod lives, and ends when the pod is
  deleted or done (or the container finished for good); pods that appear later are
  followed from their first line. It runs until interrupted.

Lines are written whole, one write per batch: two streams never interleave half lines.

Invariants of the resume (`Cursor`): a server's timestamps may be coarse (Podman 4 gives
whole seconds), so a line is identified by its time and its rank among the lines of that
time; `sinceTime` keeps every line at or after the given time (the node agent's Podman
`since` is rounded down to the second), and the cursor drops what it has seen. The pure
pieces (times, line splitting, the cursor, the merge, which containers, when a stream may
start or is over) are functions here; `run` is the only I/O.
"""

from __future__ import annotations

import argparse
import asyncio
import calendar
import contextlib
import heapq
import os
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO

from bramble.cli.commands import Env, UsageError, server_error
from bramble.client import ClientError, list_and_watch, resource_path
from bramble.kube.errors import NotFound, StatusError

Obj = dict[str, Any]

DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"
SELECTOR_TAIL = 10  # kubectl's --tail when a selector is given and --tail is not
RETRY_FIRST, RETRY_MAX = 0.5, 5.0  # seconds between reconnects of a quiet, broken stream
GONE_GRACE = 5.0  # seconds a deleted pod's stream may still deliver its last lines

_STAMP = re.compile(
    rb"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?([Zz]|[+-]\d\d:\d\d)")


# --- times ----------------------------------------------------------------------------------

def parse_log_time(text: bytes) -> int | None:
    """An RFC 3339 time (fraction and offset optional, up to nanoseconds) as integer
    nanoseconds since the epoch - exact, where a float would round; None if it is none."""
    m = _STAMP.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    fraction, zone = m.group(7) or b"", m.group(8)
    try:
        seconds = calendar.timegm((year, month, day, hour, minute, second))
        datetime(year, month, day, hour, minute, second)  # refuses Feb 30 and the like
    except ValueError:
        return None
    if zone not in (b"Z", b"z"):
        sign = 1 if zone[:1] == b"+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds * 1_000_000_000 + int(fraction.ljust(9, b"0") or b"0")


def format_log_time(ns: int) -> str:
    """Nanoseconds since the epoch as RFC 3339 in UTC, with a fraction only when there is
    one (RFC3339Nano): what `sinceTime` takes."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if fraction:
        text += "." + f"{fraction:09d}".rstrip("0")
    return text + "Z"


def split_stamp(line: bytes) -> tuple[int | None, bytes]:
    """("2024-05-01T10:00:00.5Z hello\\n") -> (its time in ns, b"hello\\n"); a line that does
    not start with a time comes back whole, with None."""
    head, sep, rest = line.partition(b" ")
    if sep:
        ns = parse_log_time(head)
        if ns is not None:
            return ns, rest
    return None, line


# --- lines ----------------------------------------------------------------------------------

@dataclass
class LineSplitter:
    """Chunks in, whole lines (with their b"\\n") out; an unfinished line waits in `rest`."""

    rest: bytes = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        data = self.rest + chunk
        end = data.rfind(b"\n") + 1
        self.rest = data[end:]
        return data[:end].splitlines(keepends=True) if end else []


@dataclass(frozen=True)
class Line:
    ns: int | None  # the line's time, None when it came without one
    raw: bytes  # as the server sent it, timestamp included, ending in b"\n"
    text: bytes  # without the timestamp

    @classmethod
    def of(cls, raw: bytes) -> Line:
        if not raw.endswith(b"\n"):
            raw += b"\n"  # the last words of a stream that ended mid-line
        ns, text = split_stamp(raw)
        return cls(ns, raw, text)


def prefix(pod: str, container: str) -> bytes:
    """kubectl's --prefix: `[pod/NAME/CONTAINER] `."""
    return f"[pod/{pod}/{container}] ".encode()


def render(lines: Iterable[Line], head: bytes, timestamps: bool) -> bytes:
    """The bytes to write for these lines of one stream: prefix, then the line as the
    server sent it (with its time) or without the time."""
    return b"".join(head + (line.raw if timestamps else line.text) for line in lines)


@dataclass
class Cursor:
    """Where a followed stream is: the time of its last line and how many lines of that
    time were seen. After `resume()`, the replayed lines up to that point are dropped.

    Lines without a time pass (nothing to place them by) and do not move the cursor."""

    last: int | None = None
    at_last: int = 0
    _skip: int = 0
    _replaying: bool = False

    def admit(self, ns: int | None) -> bool:
        if ns is None:
            return True
        if self._replaying and self.last is not None:
            if ns < self.last:
                return False
            if ns == self.last and self._skip > 0:
                self._skip -= 1
                return False
            self._replaying = False
        if self.last is None or ns > self.last:
            self.last, self.at_last = ns, 1
        elif ns == self.last:
            self.at_last += 1
        return True

    def resume(self) -> str | None:
        """Start a replay; the `sinceTime` to ask for (None: nothing seen yet, ask as the
        first time)."""
        if self.last is None:
            return None
        self._replaying, self._skip = True, self.at_last
        return format_log_time(self.last)


def merge(streams: list[list[Line]]) -> Iterator[tuple[int, Line]]:
    """(stream index, line) of every stream's lines in time order - stable: a line
    without a time takes the time of the line before it, ties keep the streams' order."""
    def keyed(i: int, lines: list[Line]) -> Iterator[tuple[int, int, Line]]:
        ns = 0
        for line in lines:
            ns = line.ns if line.ns is not None else ns
            yield ns, i, line

    for _, i, line in heapq.merge(*(keyed(i, s) for i, s in enumerate(streams)),
                                  key=lambda t: (t[0], t[1])):
        yield i, line


# --- which containers, and when ---------------------------------------------------------------

def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _all_containers(pod: Obj) -> list[str]:
    """podutil.VisitContainers' order: init containers, containers, ephemeral ones."""
    spec = pod.get("spec") or {}
    return [c.get("name", "") for key in ("initContainers", "containers", "ephemeralContainers")
            for c in spec.get(key) or []]


def containers_of(pod: Obj, container: str, all_containers: bool) -> list[str]:
    """The containers whose logs are meant: all of them, the one named (none when the pod
    has no such container), or kubectl's default - the default-container annotation if it
    names one, else the first container."""
    names = _all_containers(pod)
    if all_containers:
        return names
    if container:
        return [container] if container in names else []
    main = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []]
    annotated = (_meta(pod).get("annotations") or {}).get(DEFAULT_CONTAINER)
    if annotated in names:
        return [annotated]
    return main[:1]


def _status_of(pod: Obj, container: str) -> Obj:
    status = pod.get("status") or {}
    for key in ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"):
        for s in status.get(key) or []:
            if s.get("name") == container:
                return s
    return {}


def has_started(pod: Obj, container: str) -> bool:
    """Whether a log of the container can be read: it runs or ran (now or before a
    restart), or the pod is past Pending."""
    if (pod.get("status") or {}).get("phase") in ("Running", "Succeeded", "Failed"):
        return True
    s = _status_of(pod, container)
    state, last = s.get("state") or {}, s.get("lastState") or {}
    return bool(s.get("started") or "running" in state or "terminated" in state
                or "terminated" in last)


def is_over(pod: Obj | None, container: str) -> bool:
    """Whether a stream that ended will have nothing more: the pod is gone, being deleted
    or done, or the container finished and will not run again (an init container that
    succeeded; restartPolicy Never, or OnFailure after a success)."""
    if pod is None or _meta(pod).get("deletionTimestamp"):
        return True
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return True
    terminated = (_status_of(pod, container).get("state") or {}).get("terminated")
    if terminated is None:
        return False
    spec = pod.get("spec") or {}
    is_init = any(c.get("name") == container for c in spec.get("initContainers") or [])
    succeeded = terminated.get("exitCode") == 0
    policy = spec.get("restartPolicy") or "Always"
    return (is_init and succeeded) or policy == "Never" or (policy == "OnFailure" and succeeded)


# --- options ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Options:
    """What `bramble logs` was asked, as the log API's query terms."""

    container: str = ""
    all_containers: bool = False
    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    prefix: bool = True
    tail: int | None = None
    since_seconds: int | None = None
    since_time: str = ""
    limit_bytes: int | None = None
    max_requests: int = 5

    def first_query(self, container: str, *, from_start: bool) -> dict[str, str]:
        """The query of a stream's first request; `from_start`: a pod that appeared while
        following, whose whole log is new (no --tail)."""
        q = {"container": container, "timestamps": "true"}
        if self.follow:
            q["follow"] = "true"
        if self.previous:
            q["previous"] = "true"
        if self.tail is not None and self.tail >= 0 and not from_start:
            q["tailLines"] = str(self.tail)
        if self.since_seconds is not None:
            q["sinceSeconds"] = str(self.since_seconds)
        elif self.since_time:
            q["sinceTime"] = self.since_time
        if self.limit_bytes is not None:
            q["limitBytes"] = str(self.limit_bytes)
        return q


def options_of(args: argparse.Namespace, *, selector: bool) -> Options:
    """The parsed command line as Options (kubectl's defaults: --tail 10 with a selector,
    --prefix on for one)."""
    from bramble.cli.streams import parse_duration

    if args.since and args.since_time:
        raise UsageError("at most one of --since and --since-time may be given")
    if args.all_containers and args.container:
        raise UsageError("--all-containers=true cannot be used with --container")
    since_time = ""
    if args.since_time:
        ns = parse_log_time(args.since_time.encode())
        if ns is None:
            raise UsageError(f"invalid --since-time {args.since_time!r}: use RFC 3339, e.g. "
                             f"2024-05-01T10:00:00Z")
        since_time = format_log_time(ns)
    if args.previous and args.follow:
        raise UsageError("--previous cannot be followed: a previous run is over")
    if args.max_log_requests < 1:
        raise UsageError("--max-log-requests must be at least 1")
    tail = args.tail if args.tail is not None and args.tail >= 0 else (
        SELECTOR_TAIL if selector else None)
    return Options(container=args.container, all_containers=args.all_containers,
                   follow=args.follow, previous=args.previous, timestamps=args.timestamps,
                   prefix=args.prefix if args.prefix is not None else selector, tail=tail,
                   since_seconds=parse_duration(args.since) if args.since else None,
                   since_time=since_time, limit_bytes=args.limit_bytes,
                   max_requests=args.max_log_requests)


# --- the I/O ----------------------------------------------------------------------------------

class _Closed(Exception):
    """The reader of our output went away (`| head`)."""


@dataclass
class Sink:
    """Writes batches of whole lines; the only writer of the output."""

    out: BinaryIO

    def write(self, data: bytes) -> None:
        if not data:
            return
        try:
            self.out.write(data)
            self.out.flush()
        except BrokenPipeError as err:
            raise _Closed from err


def _pod_path(ns: str, name: str = "", sub: str = "") -> str:
    return resource_path("", "v1", "pods", ns, name or None, sub or None)


async def run(env: Env, args: argparse.Namespace, out: BinaryIO | None = None) -> int:
    """`bramble logs -l SELECTOR ...` (or one pod, with --prefix/--all-containers)."""
    selector = args.selector or ""
    opts = options_of(args, selector=bool(selector))
    query = {"labelSelector": selector} if selector else {
        "fieldSelector": f"metadata.name={args.pod}"}
    sink = Sink(out if out is not None else sys.stdout.buffer)
    try:
        if opts.follow:
            return await Follower(env, opts, query, sink).run()
        return await _read_all(env, opts, query, sink, named=args.pod)
    except _Closed:
        if out is None:
            # What Python's docs advise for `| head`: stdout is gone, and the flush at
            # exit must not fail again.
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


async def _read_all(env: Env, opts: Options, query: dict[str, str], sink: Sink,
                    named: str | None) -> int:
    listing = await env.api.request("GET", _pod_path(env.namespace), params=query)
    pods = sorted(listing.get("items") or [], key=lambda p: _meta(p).get("name", ""))
    if not pods:
        if named:
            env.error(server_error(NotFound(f'pods "{named}" not found')))
            return 1
        env.error(f"No resources found in {env.namespace} namespace.")
        return 0
    streams = [(_meta(p).get("name", ""), c) for p in pods
               for c in containers_of(p, opts.container, opts.all_containers)]
    if not streams:
        env.error(f"error: container {opts.container} is not valid for the selected pods")
        return 1
    slots = asyncio.Semaphore(opts.max_requests)
    failed = False

    async def read(pod: str, container: str) -> list[Line]:
        nonlocal failed
        splitter, lines = LineSplitter(), []
        async with slots:
            try:
                async for chunk in env.api.stream(_pod_path(env.namespace, pod, "log"),
                                                  opts.first_query(container,
                                                                   from_start=False)):
                    lines += [Line.of(raw) for raw in splitter.feed(chunk)]
            except StatusError as err:
                env.error(server_error(err))
                failed = True
        if splitter.rest:
            lines.append(Line.of(splitter.rest))
        return lines

    results = await asyncio.gather(*(read(p, c) for p, c in streams))
    heads = [prefix(p, c) if opts.prefix else b"" for p, c in streams]
    out = bytearray()
    for i, line in merge(list(results)):
        out += render((line,), heads[i], opts.timestamps)
        if len(out) > 1 << 16:
            sink.write(bytes(out))
            out.clear()
    sink.write(bytes(out))
    return 1 if failed else 0


StreamKey = tuple[str, str]  # (pod uid, container)


@dataclass
class _Stream:
    pod: str
    container: str
    from_start: bool
    cursor: Cursor = field(default_factory=Cursor)


class Follower:
    """-f: the pods of a selector watched, one task per started container's stream, at
    most `max_requests` of them at once (the others wait for a free one)."""

    def __init__(self, env: Env, opts: Options, query: dict[str, str], sink: Sink) -> None:
        self.env = env
        self.opts = opts
        self.query = query
        self.sink = sink
        self.pods: dict[str, Obj] = {}  # uid -> the pod as last seen
        self.changed: dict[str, asyncio.Event] = {}  # uid -> set on every change
        self.tasks: dict[StreamKey, asyncio.Task[None]] = {}
        self.waiting: dict[StreamKey, _Stream] = {}  # started containers without a slot
        self.done: set[StreamKey] = set()
        self.failure: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closing = False
        self._warned: set[tuple[StreamKey, str]] = set()

    async def run(self) -> int:
        listing = await self.env.api.request("GET", _pod_path(self.env.namespace),
                                             params=self.query)
        items = listing.get("items") or []
        ready = sum(1 for p in items if not _meta(p).get("deletionTimestamp")
                    for c in containers_of(p, self.opts.container, self.opts.all_containers)
                    if has_started(p, c))
        if ready > self.opts.max_requests:
            # kubectl's rule: refuse rather than silently follow only some of them.
            self.env.error(f"error: you are attempting to follow {ready} log streams, but "
                           f"maximum allowed concurrency is {self.opts.max_requests}, use "
                           f"--max-log-requests to increase the limit")
            return 1
        if not items:
            self.env.error(f"No pods match yet in {self.env.namespace} namespace; waiting "
                           f"for some to appear.")
        self._sync(items, first=True)
        watch = asyncio.create_task(
            self._watch(listing["metadata"]["resourceVersion"]), name="logs-watch-pods")
        try:
            await asyncio.wait({watch, self.failure}, return_when=asyncio.FIRST_COMPLETED)
            if self.failure.done():
                self.failure.result()
            watch.result()
            return 0
        finally:
            self.closing = True  # a stream that ends now starts no waiting one
            tasks = [watch, *self.tasks.values()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- the pods ---------------------------------------------------------------------------

    async def _watch(self, rv: str) -> None:
        """Follow the pods for good: watch from `rv` (run()'s listing); list again when
        the watch ends or its history ran out, or the master is away for a while."""
        path = _pod_path(self.env.namespace)
        listed = rv

        async def relist() -> str:
            nonlocal listed
            if listed:
                first_rv, listed = listed, ""
                return first_rv
            listing = await self.env.api.request("GET", path, params=self.query)
            self._sync(listing.get("items") or [], first=False)
            return listing["metadata"]["resourceVersion"]

        def on_event(kind: str, obj: Obj) -> None:
            if kind == "DELETED":
                self._gone(_meta(obj).get("uid", ""))
            elif kind in ("ADDED", "MODIFIED"):
                self._seen(obj, first=False)

        await list_and_watch(
            self.env.api, path, self.query, relist, on_event, retry_max=RETRY_MAX,
            on_error=lambda _path, err, _delay: self._warn(("", ""),
                                                           f"error: watching pods: {err}"))

    def _sync(self, items: list[Obj], *, first: bool) -> None:
        """A full listing: pods no longer there are gone, the others seen."""
        listed = {_meta(p).get("uid", "") for p in items}
        for uid in [u for u in self.pods if u not in listed]:
            self._gone(uid)
        for pod in items:
            self._seen(pod, first=first)

    def _seen(self, pod: Obj, *, first: bool) -> None:
        uid = _meta(pod).get("uid", "")
        self.pods[uid] = pod
        self.changed.setdefault(uid, asyncio.Event()).set()
        if _meta(pod).get("deletionTimestamp"):
            return  # its running streams end with the containers; no new ones
        for container in containers_of(pod, self.opts.container, self.opts.all_containers):
            key = (uid, container)
            if key in self.tasks or key in self.waiting or key in self.done:
                continue
            if has_started(pod, container):
                self._start(key, _Stream(_meta(pod).get("name", ""), container,
                                         from_start=not first))

    def _gone(self, uid: str) -> None:
        self.pods.pop(uid, None)
        event = self.changed.pop(uid, None)
        if event is not None:
            event.set()  # a stream waiting to reconnect sees the pod is gone
        for key in [k for k in self.waiting if k[0] == uid]:
            del self.waiting[key]
        # A deleted pod's containers have stopped: its streams end by themselves. One whose
        # node went silent would not; it is cut after a grace for its last lines.
        loop = asyncio.get_running_loop()
        for key, task in self.tasks.items():
            if key[0] == uid:
                loop.call_later(GONE_GRACE, task.cancel)

    # -- the streams ------------------------------------------------------------------------

    def _start(self, key: StreamKey, stream: _Stream) -> None:
        if len(self.tasks) >= self.opts.max_requests:
            self.waiting[key] = stream
            self._warn(key, f"waiting for a free stream to follow pod/{stream.pod}/"
                            f"{stream.container} (--max-log-requests="
                            f"{self.opts.max_requests})")
            return
        task = asyncio.create_task(self._follow(key, stream),
                                   name=f"logs-{stream.pod}-{stream.container}")
        self.tasks[key] = task
        task.add_done_callback(lambda t: self._ended(key, t))

    def _ended(self, key: StreamKey, task: asyncio.Task[None]) -> None:
        self.tasks.pop(key, None)
        self.done.add(key)
        error = None if task.cancelled() else task.exception()
        if error is not None:
            if not self.failure.done():
                self.failure.set_exception(error)  # the run ends with it
            return
        while not self.closing and self.waiting and len(self.tasks) < self.opts.max_requests:
            waiting_key = next(iter(self.waiting))
            self._start(waiting_key, self.waiting.pop(waiting_key))

    async def _follow(self, key: StreamKey, stream: _Stream) -> None:
        """One container's stream, for as long as there may be more of it."""
        uid, container = key
        path = _pod_path(self.env.namespace, stream.pod, "log")
        head = prefix(stream.pod, container) if self.opts.prefix else b""
        delay = RETRY_FIRST
        query = self.opts.first_query(container, from_start=stream.from_start)
        while True:
            splitter = LineSplitter()
            limited = False  # --limit-bytes: the first whole answer is all
            try:
                async for chunk in self.env.api.stream(path, query):
                    lines = [Line.of(raw) for raw in splitter.feed(chunk)]
                    fresh = [line for line in lines if stream.cursor.admit(line.ns)]
                    self.sink.write(render(fresh, head, self.opts.timestamps))
                    delay = RETRY_FIRST
            except NotFound:
                return  # the pod is gone
            except StatusError as err:
                if "is not valid for pod" in err.message:
                    self._warn(key, server_error(err))
                    return
                if "waiting to start" not in err.message:  # that one is normal: try again
                    self._warn(key, f"{server_error(err)} (following pod/{stream.pod}/"
                                    f"{container}: trying again)")
            except ClientError as err:
                self._warn(key, f"error: {err} (following pod/{stream.pod}/{container}: "
                                f"trying again)")
            else:
                limited = "limitBytes" in query
            if not limited and not is_over(self.pods.get(uid), container):
                await self._changed_or(uid, delay)
                delay = min(delay * 2, RETRY_MAX)
            if limited or is_over(self.pods.get(uid), container):
                # Its last words: a line the container did not finish still counts.
                if splitter.rest:
                    line = Line.of(splitter.rest)
                    if stream.cursor.admit(line.ns):
                        self.sink.write(render((line,), head, self.opts.timestamps))
                return
            # The stream broke (or the container restarts): the rest, from where it was.
            since = stream.cursor.resume()
            query = {"container": container, "timestamps": "true", "follow": "true"}
            if since is not None:
                query["sinceTime"] = since
            else:
                query = self.opts.first_query(container, from_start=stream.from_start)

    async def _changed_or(self, uid: str, seconds: float) -> None:
        """Wait until the pod changes (a container restarted, the pod went) or `seconds`."""
        event = self.changed.get(uid)
        if event is None:
            return
        event.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await event.wait()

    def _warn(self, key: StreamKey, message: str) -> None:
        if (key, message) not in self._warned:
            self._warned.add((key, message))
            self.env.error(message)
