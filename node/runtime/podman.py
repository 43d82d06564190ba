"""The container runtime: the only module that imports the `podman` package.

`PodmanService` starts and supervises (or attaches to) a `podman system service` with
bramble's own configuration (node/runtime/config.py). `PodmanRuntime` implements what the
node agent asks of a runtime (node/runtime/types.py) over that service's REST API.

Invariants:
- The `podman` client is synchronous and not thread-safe. Every request/response call runs
  in ONE dedicated single-thread executor that owns one client; the event loop never blocks.
- Long-lived streams (events, logs --follow) each run in their own thread with their own
  client, feed an asyncio.Queue with backpressure, and are stopped by shutting their socket
  down, so a cancelled consumer never leaves a thread reading forever. A pull (minutes on
  a Pi) also gets its own thread and client, so it never holds up the other calls.
- Interactive exec needs a hijacked (upgraded) HTTP connection with stdin, which neither
  `podman` nor `requests` offer: it speaks the REST API directly over the unix socket with
  asyncio streams (no thread at all).
- Every podman/requests exception is translated here into ContainerRuntimeError and its
  subclasses (`raise ... from err`); callers never see a podman type.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import os
import posixpath
import signal
import struct
import tarfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import requests
from podman import PodmanClient
from podman.errors import APIError, PodmanError
from podman.errors import NotFound as PodmanNotFound

from bramble.node.runtime import config as podman_config
from bramble.node.runtime.types import (
    LABEL_CONTAINER_NAME,
    LABEL_MANAGED,
    LABEL_POD_UID,
    ContainerEvent,
    ContainerSpec,
    ImageInfo,
    ObservedContainer,
    ObservedPod,
    ObservedSandbox,
    SandboxSpec,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# The raw exec connection speaks the libpod API of the oldest server we support.
RAW_API_PREFIX = "/v4.0.0/libpod"
CPU_PERIOD_US = 100_000  # the CFS period Kubernetes uses; quota = millicores * period / 1000
MIN_CPU_QUOTA_US = 1_000  # the kernel's minimum quota
_ZERO_TIME = "0001-01-01T00:00:00Z"
_STREAM_QUEUE = 256  # chunks/events buffered per stream before its thread waits


# --- errors -------------------------------------------------------------------------------


class ContainerRuntimeError(Exception):
    """Anything the runtime could not do; `status` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotFound(ContainerRuntimeError):
    """The container, pod, image or network does not exist."""


class NetworkInUseError(ContainerRuntimeError):
    """The network exists with another subnet and containers still use it."""


class ImagePullError(ContainerRuntimeError):
    """An image could not be pulled (no registry, unknown image, auth...)."""


class ServiceError(ContainerRuntimeError):
    """The Podman service could not be started or reached."""


def _translate(err: BaseException, what: str) -> ContainerRuntimeError:
    if isinstance(err, ContainerRuntimeError):
        return err
    if isinstance(err, APIError):
        status = err.status_code
        detail = err.explanation or str(err)
        if status is None:  # podman wraps connection failures (OSError) in APIError
            return ServiceError(f"{what}: podman service unreachable: {detail}: "
                                f"{err.__cause__ or err}")
        if status == 404 or isinstance(err, PodmanNotFound):
            return NotFound(f"{what}: {detail}", 404)
        return ContainerRuntimeError(f"{what}: {detail}", status)
    if isinstance(err, requests.RequestException | OSError):
        return ServiceError(f"{what}: podman service unreachable: {err}")
    return ContainerRuntimeError(f"{what}: {err}")


def _check(response: Any, what: str) -> Any:
    """Raise the translated error for a failed libpod response; return it otherwise."""
    try:
        response.raise_for_status()
    except (APIError, PodmanError) as err:
        raise _translate(err, what) from err
    return response


# --- small pure helpers -------------------------------------------------------------------


def rfc3339(value: str | int | None) -> str:
    """Podman's nanosecond timestamps (or unix seconds) as Kubernetes' RFC 3339 seconds;
    "" for Podman's zero time."""
    if value in (None, "", 0) or value == _ZERO_TIME:
        return ""
    if isinstance(value, int):
        if value <= 0:
            return ""
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = str(value)
    if text.startswith("0001-01-01"):
        return ""
    # 2026-11-23T19:24:32.564799011Z or ...+01:00: keep the seconds, normalise to UTC.
    head, _, rest = text.partition(".")
    if rest:
        tz = rest.lstrip("0123456789")
        text = head + (tz or "Z")
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return ""
    return stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def container_state(podman_state: str) -> str:
    state = (podman_state or "").lower()
    if state in ("running", "paused", "stopping"):
        return "running"
    if state in ("exited", "stopped", "dead"):
        return "exited"
    if state in ("created", "configured", "initialized"):
        return "created"
    return "unknown"


def label_filters(labels: dict[str, str] | None) -> dict[str, list[str]]:
    return {"label": [f"{k}={v}" for k, v in sorted(labels.items())]} if labels else {}


def cpu_quota(millis: int) -> int:
    return max(MIN_CPU_QUOTA_US, millis * CPU_PERIOD_US // 1000)


def mount_source(source: str, sub_path: str) -> str:
    """Kubernetes subPath: a path inside the volume, never outside it."""
    if not sub_path:
        return source
    norm = posixpath.normpath(sub_path)
    if posixpath.isabs(sub_path) or norm == ".." or norm.startswith("../"):
        raise ContainerRuntimeError(f"subPath {sub_path!r} must be relative, inside the volume")
    return posixpath.join(source, norm)


def bridge_name(network_name: str) -> str:
    """A Linux interface name (at most 15 bytes) for the network's bridge."""
    name = "".join(ch for ch in network_name if ch.isalnum() or ch in "-_.")
    if len(name) <= 15 and name:
        return name
    digest = hashlib.sha256(network_name.encode()).hexdigest()[:8]
    return f"brmb-{digest}"


def image_id(hex_id: str) -> str:
    return hex_id if not hex_id or hex_id.startswith("sha256:") else f"sha256:{hex_id}"


def remove_empty_cgroups(path: str, root: Path = Path("/sys/fs/cgroup")) -> None:
    """rmdir what is left of a removed pod's cgroupfs cgroup, in every hierarchy.

    Podman 4.3's cgroupfs manager on hybrid hosts creates <parent>/<pod id> in every
    hierarchy but removes it only from the v1 controllers: each removed pod would leave
    empty dirs in name=systemd and unified forever. rmdir removes only empty cgroups, so
    this can never take one that still has processes. Systemd-managed (".slice") paths
    are systemd's to clean."""
    rel = path.strip("/")
    if not rel or not path.startswith("/") or ".slice" in path or ".." in rel.split("/"):
        return
    tops = [root / rel, *(d / rel for d in root.iterdir() if d.is_dir())] \
        if root.is_dir() else []
    for top in tops:
        if not top.is_dir():
            continue
        for folder, _dirs, _files in os.walk(top, topdown=False):
            with contextlib.suppress(OSError):  # busy (processes left) or already gone
                os.rmdir(folder)


def demux_frames(buffer: bytearray) -> list[tuple[int, bytes]]:
    """Pop the complete multiplexed frames (8-byte header: stream, 0, 0, 0, size) off
    the front of `buffer`; leave a partial frame in it."""
    out: list[tuple[int, bytes]] = []
    while len(buffer) >= 8:
        stream, size = struct.unpack_from(">BxxxL", buffer)
        if len(buffer) < 8 + size:
            break
        out.append((stream, bytes(buffer[8:8 + size])))
        del buffer[:8 + size]
    return out


# --- the service --------------------------------------------------------------------------


async def ping(socket_path: Path) -> bool:
    """True when a Podman service answers `_ping` on the socket (within 2 s)."""
    try:
        async with asyncio.timeout(2.0):
            reader, writer = await asyncio.open_unix_connection(str(socket_path))
            try:
                writer.write(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
                await writer.drain()
                status = await reader.readline()
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (OSError, TimeoutError):
        return False
    return b" 200 " in status


class PodmanService:
    """A `podman system service` for one node: attach to `socket_path`, or start our own
    under `data_dir` (its config written by node/runtime/config.py) and stop it on exit.

    Running containers survive a stop/restart of the service (conmon keeps them).
    `command_prefix` runs it inside something, e.g. ("nsenter", "--net=/run/netns/pi1").
    """

    def __init__(self, data_dir: Path | None = None, *, socket_path: Path | None = None,
                 run_dir: Path | None = None, podman: str = "podman",
                 command_prefix: Sequence[str] = (), start_timeout: float = 20.0,
                 stop_timeout: float = 10.0,
                 facts: podman_config.HostFacts | None = None) -> None:
        if data_dir is None and socket_path is None:
            raise ValueError("PodmanService needs a data_dir (own service) or a socket_path")
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.paths = (podman_config.podman_paths(self.data_dir, run_dir)
                      if self.data_dir is not None else None)
        self.socket_path = Path(socket_path) if socket_path else self.paths.socket  # type: ignore[union-attr]
        self._run_dir = run_dir
        self._podman = podman
        self._prefix = tuple(command_prefix)
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._facts = facts
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def owned(self) -> bool:
        return self.data_dir is not None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.returncode is None else None

    @property
    def oom_flag_dir(self) -> Path | None:
        """Where conmon drops its `oom` file (the service's cwd), when we started it."""
        return self.paths.conmon_dir if self.paths is not None else None

    async def __aenter__(self) -> PodmanService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        if not self.owned:
            await self._wait_ready(None)
            return
        if self.pid is not None:
            return
        assert self.paths is not None and self.data_dir is not None
        paths, stale_pid = await asyncio.to_thread(self._prepare)
        if stale_pid is not None:
            # The service of a previous agent that died without stopping it (it runs in its
            # own session): stop it, so exactly one service serves this store.
            log.warning("stopping the podman service %s left by a previous run", stale_pid)
            await _terminate(stale_pid, self._stop_timeout)
        env = podman_config.podman_environment(self.data_dir, self._run_dir, dict(os.environ))
        command = [*self._prefix, self._podman, "system", "service", "--time=0",
                   f"unix://{paths.socket}"]
        stderr = await asyncio.to_thread(open, paths.service_log, "ab")
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *command, env=env, cwd=str(paths.conmon_dir), stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL, stderr=stderr,
                start_new_session=True)  # a Ctrl-C to the agent must not hit the service
        except OSError as err:
            raise ServiceError(f"cannot run {self._podman}: {err}") from err
        finally:
            stderr.close()
        await asyncio.to_thread(paths.service_pid.write_text, f"{self._proc.pid}\n")
        try:
            await self._wait_ready(self._proc)
        except BaseException:
            await self.close()
            raise

    def _prepare(self) -> tuple[podman_config.PodmanPaths, int | None]:
        """Write the config; find a service a previous run left on our socket (blocking)."""
        assert self.data_dir is not None
        paths = podman_config.write_config(self.data_dir, self._run_dir, self._facts)
        stale: int | None = None
        with contextlib.suppress(OSError, ValueError):
            pid = int(paths.service_pid.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if f"unix://{paths.socket}".encode() in cmdline:
                stale = pid
        with contextlib.suppress(FileNotFoundError):
            paths.socket.unlink()
        return paths, stale

    async def _wait_ready(self, proc: asyncio.subprocess.Process | None) -> None:
        # Polling is the only way: the service has no readiness notification here.
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            if proc is not None and proc.returncode is not None:
                raise ServiceError(f"podman service exited with {proc.returncode} at start; "
                                   f"see {self.paths.service_log if self.paths else '?'}")
            if await ping(self.socket_path):
                return
            await asyncio.sleep(0.05)
        raise ServiceError(f"podman service at {self.socket_path} not ready "
                           f"after {self._start_timeout} s")

    async def close(self) -> None:
        """Stop our service (SIGTERM, bounded wait, SIGKILL). Idempotent; no-op if attached."""
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), self._stop_timeout)
        except TimeoutError:
            log.warning("podman service %s ignored SIGTERM; killing it", proc.pid)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    async def restart(self) -> None:
        await self.close()
        await self.start()


async def _terminate(pid: int, grace: float) -> None:
    """SIGTERM a process that is not our child, SIGKILL it after `grace` seconds."""
    start = time.monotonic()
    sig = signal.SIGTERM
    while time.monotonic() - start < grace + 5:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if time.monotonic() - start > grace:
            sig = signal.SIGKILL
        await asyncio.sleep(0.05)  # not our child: there is no wait() to block on
    raise ServiceError(f"the old podman service {pid} does not go away")


# --- streams in their own threads --------------------------------------------------------


class _End:
    pass


_END = _End()


@dataclass
class _Failure:
    error: BaseException


class _Pump:
    """A blocking producer in its own thread feeding an asyncio.Queue. Backpressure: the
    thread waits while _STREAM_QUEUE items are unread. `stop()` shuts the producer's
    current HTTP response down, so a read blocked on the socket returns at once."""

    def __init__(self, name: str, produce: Callable[[_Pump], None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._room = threading.Semaphore(_STREAM_QUEUE)
        self._produce = produce
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._response: Any = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # producer side (the pump's thread)

    def emit(self, item: Any) -> bool:
        """Hand an item to the consumer; False when the pump is stopping."""
        while not self._room.acquire(timeout=0.5):
            if self.stopping.is_set():
                return False
        if self.stopping.is_set():
            return False
        return self._deliver(item)

    def _deliver(self, item: Any) -> bool:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is closed
            return False
        return True

    def attach(self, response: Any) -> None:
        with self._lock:
            self._response = response
        if self.stopping.is_set():
            _shutdown_response(response)

    def _run(self) -> None:
        try:
            self._produce(self)
        except BaseException as err:  # handed to the consumer, who raises it
            if not self.stopping.is_set():
                self._deliver(_Failure(err))
        finally:
            self._deliver(_END)

    # consumer side (the event loop)

    async def get(self) -> Any:
        """The next item; _END when the producer finished. Re-raises producer failures."""
        item = await self._queue.get()
        if isinstance(item, _Failure):
            raise item.error
        if item is not _END:
            self._room.release()
        return item

    def stop(self) -> None:
        self.stopping.set()
        with self._lock:
            response = self._response
        if response is not None:
            _shutdown_response(response)

    async def join(self) -> None:
        self.stop()
        await asyncio.to_thread(self._thread.join, 5.0)

    @property
    def name(self) -> str:
        return self._thread.name


class Subscription:
    """An async iterator over a stream that runs in its own thread from the moment it is
    created. Close it (`aclose()`, `async with`) when done; PodmanRuntime.close() closes
    the ones still open."""

    def __init__(self, runtime: PodmanRuntime, pump: _Pump) -> None:
        self._runtime = runtime
        self._pump = pump
        self._done = False

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Any:
        if self._done:
            raise StopAsyncIteration
        try:
            item = await self._pump.get()
        except (APIError, PodmanError, requests.RequestException, OSError) as err:
            await self.aclose()
            raise _translate(err, self._pump.name) from err
        except ContainerRuntimeError:
            await self.aclose()
            raise
        if item is _END:
            await self.aclose()
            raise StopAsyncIteration
        return item

    async def aclose(self) -> None:
        self._done = True
        self._pump.stop()  # the thread ends on its own; runtime.close() joins stragglers
        self._runtime._pumps.discard(self._pump)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _shutdown_response(response: Any) -> None:
    """Make a blocked read on a streamed response return (urllib3 >= 2.3: shutdown)."""
    raw = getattr(response, "raw", None)
    try:
        if raw is not None and hasattr(raw, "shutdown"):
            raw.shutdown()
        else:
            response.close()
    except (OSError, ValueError, RuntimeError):
        with contextlib.suppress(Exception):
            response.close()


# --- exec ----------------------------------------------------------------------------------


STDOUT = 1
STDERR = 2


class ExecSession:
    """An exec in a container: read its output, write its stdin, resize its tty, wait for
    its exit code. For a tty everything arrives as STDOUT, as with kubectl."""

    def __init__(self, runtime: PodmanRuntime, exec_id: str, tty: bool,
                 reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.id = exec_id
        self.tty = tty
        self._runtime = runtime
        self._reader = reader
        self._writer = writer
        self._buffer = bytearray()
        self._pending: list[tuple[int, bytes]] = []
        self._eof = False

    async def read(self) -> tuple[int, bytes] | None:
        """The next (STDOUT|STDERR, data) chunk, or None once the process closed its output."""
        while not self._pending:
            if self._eof:
                return None
            data = await self._reader.read(65536)
            if not data:
                self._eof = True
                continue
            if self.tty:
                self._pending.append((STDOUT, data))
            else:
                self._buffer += data
                self._pending.extend(demux_frames(self._buffer))
        return self._pending.pop(0)

    async def output(self) -> tuple[bytes, bytes]:
        """Everything up to the end: (stdout, stderr)."""
        out, err = bytearray(), bytearray()
        while (chunk := await self.read()) is not None:
            (err if chunk[0] == STDERR else out).extend(chunk[1])
        return bytes(out), bytes(err)

    async def write(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    async def close_stdin(self) -> None:
        if self._writer.can_write_eof():
            self._writer.write_eof()
            await self._writer.drain()

    async def resize(self, height: int, width: int) -> None:
        await self._runtime._call(self._runtime._exec_resize, self.id, height, width)

    async def wait(self) -> int:
        """The exit code, once the process exited (reads and drops unread output)."""
        while await self.read() is not None:
            pass
        # Podman records the exit code a moment after the stream ends; no event for it.
        deadline = time.monotonic() + 30
        while True:
            running, code = await self._runtime._call(self._runtime._exec_state, self.id)
            if not running and code is not None:
                return code
            if time.monotonic() > deadline:
                raise ContainerRuntimeError(f"exec {self.id}: no exit code after 30 s")
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    async def __aenter__(self) -> ExecSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


# --- the runtime --------------------------------------------------------------------------


class PodmanRuntime:
    """bramble's container runtime over one Podman service (see the module docstring).

    `network_name`/`subnet` must be unique per simulated host: netavark's IPAM database is
    shared machine-wide. `cgroup_parent` is the default parent of every sandbox cgroup.
    `oom_flag_dir` is the service's cwd (PodmanService.oom_flag_dir), see `_oom_flag`.
    """

    def __init__(self, socket_path: Path | str, network_name: str, subnet: str, *,
                 gateway: str = "", bridge: str = "", cgroup_parent: str = "",
                 oom_flag_dir: Path | None = None, timeout: float = 60.0,
                 pull_timeout: float = 600.0) -> None:
        self.socket_path = Path(socket_path)
        self.network_name = network_name
        self.subnet = subnet
        self.gateway = gateway
        # Netavark names bridges podman1, podman2... counting only ITS OWN networks: two
        # services in one network namespace would share "podman1". Name it after the network.
        self.bridge = bridge or bridge_name(network_name)
        self.cgroup_parent = cgroup_parent
        self._oom_flag_dir = oom_flag_dir
        self._timeout = timeout
        self._pull_timeout = pull_timeout
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"podman-{network_name}")
        self._client: PodmanClient | None = None  # created and used in the executor only
        self._version: str | None = None
        self._info: dict[str, Any] | None = None
        # Inspecting is the costly part of observe(): keep the result per container while
        # its (state, started, exited) stays the same; same for sandbox IPs per infra start.
        self._observed: dict[str, tuple[tuple, ObservedContainer]] = {}
        self._sandbox_ips: dict[str, tuple[tuple, str]] = {}
        self._pumps: set[_Pump] = set()
        self._closed = False

    # plumbing

    def _base_url(self) -> str:
        return f"unix://{self.socket_path}"

    def _api(self) -> Any:
        if self._client is None:
            self._client = PodmanClient(base_url=self._base_url(), timeout=self._timeout)
        return self._client.api

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._closed:
            raise ContainerRuntimeError("runtime is closed")
        loop = asyncio.get_running_loop()
        what = getattr(fn, "__name__", "podman").lstrip("_")
        return await loop.run_in_executor(
            self._executor, functools.partial(self._guarded, what, fn, *args, **kwargs))

    @staticmethod
    def _guarded(what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except ContainerRuntimeError:
            raise
        except (APIError, PodmanError, requests.RequestException, OSError) as err:
            raise _translate(err, what) from err

    async def close(self) -> None:
        """Stop every stream, then the executor. Idempotent."""
        if self._closed:
            return
        self._closed = True
        pumps = list(self._pumps)
        for pump in pumps:
            pump.stop()
        await asyncio.gather(*(pump.join() for pump in pumps))
        client = self._client
        await asyncio.get_running_loop().run_in_executor(
            self._executor, lambda: client.close() if client is not None else None)
        await asyncio.to_thread(self._executor.shutdown, True)

    async def __aenter__(self) -> PodmanRuntime:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # system

    async def version(self) -> str:
        if self._version is None:
            self._version = await self._call(self._get_version)
        return self._version

    def _get_version(self) -> str:
        body = _check(self._api().get("/version"), "version").json()
        return str(body.get("Version", ""))

    async def info(self) -> dict[str, Any]:
        if self._info is None:
            self._info = await self._call(self._get_info)
        return self._info

    def _get_info(self) -> dict[str, Any]:
        return _check(self._api().get("/info"), "info").json()

    # network

    async def ensure_network(self, subnet: str | None = None) -> str:
        """The node's bridge network with `subnet` (default: the one given at
        construction), created if missing; returns its name. A network left with another
        subnet (the node joined a new cluster, which gave it another podCIDR) is made
        again when no container uses it any more."""
        if subnet is not None:
            self.subnet = subnet
        return await self._call(self._ensure_network)

    def _ensure_network(self) -> str:
        api = self._api()
        response = api.get(f"/networks/{self.network_name}/json")
        if response.status_code == 200:
            subnets = [s.get("subnet") for s in response.json().get("subnets") or []]
            if self.subnet in subnets:
                return self.network_name
            # Without force, Podman refuses while containers are attached: they keep it.
            removed = api.delete(f"/networks/{self.network_name}")
            if removed.status_code not in (200, 204, 404):
                raise NetworkInUseError(
                    f"network {self.network_name} exists with subnets {subnets}, "
                    f"not {self.subnet}, and is in use; remove its pods first")
            log.info("network made again for a new subnet", extra={
                "network": self.network_name, "old": subnets, "new": self.subnet})
        elif response.status_code != 404:
            _check(response, f"inspect network {self.network_name}")
        subnet: dict[str, str] = {"subnet": self.subnet}
        if self.gateway:
            subnet["gateway"] = self.gateway
        body = {"name": self.network_name, "driver": "bridge", "subnets": [subnet],
                # Cluster DNS is bramble's; aardvark-dns would be one more machine-wide daemon.
                "dns_enabled": False, "labels": {LABEL_MANAGED: "true"},
                "network_interface": self.bridge}
        _check(api.post("/networks/create", data=json.dumps(body)),
               f"create network {self.network_name}")
        return self.network_name

    async def remove_network(self) -> None:
        await self._call(self._remove_network)

    def _remove_network(self) -> None:
        response = self._api().delete(f"/networks/{self.network_name}", params={"force": True})
        if response.status_code != 404:
            _check(response, f"remove network {self.network_name}")

    async def purge(self) -> None:
        """Remove every pod and container of this service, and the node's network
        (a node reset; tests' teardown)."""
        await self._call(self._purge)

    def _purge(self) -> None:
        api = self._api()
        for pod in _check(api.get("/pods/json"), "list pods").json() or []:
            self._remove_sandbox(pod["Id"])
        listing = api.get("/containers/json", params={"all": True})
        for ctr in _check(listing, "list containers").json() or []:
            self._remove_container(ctr["Id"])
        self._remove_network()
        self._observed.clear()
        self._sandbox_ips.clear()

    # images

    async def load_image(self, path: Path | str, reference: str = "") -> list[str]:
        """Load a docker-archive / oci-archive (`podman save`), or import a plain rootfs tar
        as `reference`. Returns the image names."""
        return await self._call(self._load_image, Path(path), reference)

    def _load_image(self, path: Path, reference: str) -> list[str]:
        try:
            with tarfile.open(path) as tar:
                names = set(tar.getnames())
        except tarfile.TarError as err:
            raise ContainerRuntimeError(f"{path} is not an image archive: {err}") from err
        api = self._api()
        with open(path, "rb") as archive:
            if {"manifest.json", "index.json"} & names:
                response = api.post("/images/load", data=archive,
                                    headers={"Content-Type": "application/x-tar"})
                return list(_check(response, f"load {path}").json().get("Names") or [])
            if not reference:
                raise ContainerRuntimeError(f"{path} is a plain rootfs tar: give a reference")
            response = api.post("/images/import", data=archive, params={"reference": reference},
                                headers={"Content-Type": "application/x-tar"})
            _check(response, f"import {path}")
            return [reference]

    async def images(self) -> list[ImageInfo]:
        return await self._call(self._images)

    def _images(self) -> list[ImageInfo]:
        found = _check(self._api().get("/images/json", params={"all": True}),
                       "list images").json() or []
        return [ImageInfo(id=(i.get("Id") or "").removeprefix("sha256:"),
                          names=tuple(i.get("Names") or i.get("RepoTags") or ()),
                          size=int(i.get("Size") or 0), created=float(i.get("Created") or 0))
                for i in found if i.get("Id")]

    async def images_in_use(self) -> set[str]:
        """Ids of the images any container (running or not, ours or not) was made from."""
        return await self._call(self._images_in_use)

    def _images_in_use(self) -> set[str]:
        ctrs = _check(self._api().get("/containers/json", params={"all": True}),
                      "list containers").json() or []
        return {(c.get("ImageID") or "").removeprefix("sha256:") for c in ctrs} - {""}

    async def remove_image(self, image: str) -> None:
        """Remove an image that no container uses (Podman refuses one in use)."""
        await self._call(self._remove_image, image)

    def _remove_image(self, image: str) -> None:
        response = self._api().delete(f"/images/{image}", params={"force": False})
        if response.status_code != 404:
            _check(response, f"remove image {image[:12]}")

    async def image_present(self, ref: str) -> bool:
        return await self._call(self._image_present, ref)

    def _image_present(self, ref: str) -> bool:
        response = self._api().get(f"/images/{ref}/exists")
        if response.status_code == 404:
            return False
        _check(response, f"image {ref}")
        return True

    async def image_id(self, ref: str) -> str:
        return await self._call(self._image_id, ref)

    def _image_id(self, ref: str) -> str:
        body = _check(self._api().get(f"/images/{ref}/json"), f"image {ref}").json()
        return image_id(body.get("Id", ""))

    async def pull(self, ref: str) -> str:
        """Pull `ref`; returns the image id, or raises ImagePullError with Podman's reason.
        A pull can take minutes on a Pi: it runs in its own thread with its own client,
        so it does not hold up the runtime's other calls."""
        if self._closed:
            raise ContainerRuntimeError("runtime is closed")
        return await asyncio.to_thread(self._pull, ref)

    def _pull(self, ref: str) -> str:
        with PodmanClient(base_url=self._base_url(), timeout=self._pull_timeout) as client:
            try:
                response = client.api.post("/images/pull", stream=True,
                                           params={"reference": ref, "policy": "always"})
                if response.status_code >= 400:
                    response.raise_for_status()
                pulled = ""
                with contextlib.closing(response):
                    for line in response.iter_lines():
                        item = json.loads(line) if line else {}
                        if item.get("error"):
                            raise ImagePullError(f"pull {ref}: {item['error']}")
                        pulled = item.get("id") or pulled
            except APIError as err:
                raise ImagePullError(f"pull {ref}: {err.explanation or err}",
                                     err.status_code) from err
            except (requests.RequestException, OSError, ValueError) as err:
                raise ImagePullError(f"pull {ref}: {err}") from err
        if not pulled:
            raise ImagePullError(f"pull {ref}: no image in Podman's answer")
        return image_id(pulled)

    # sandboxes

    async def create_sandbox(self, spec: SandboxSpec) -> str:
        """Create and start the pod (its infra container holds the network namespace)."""
        return await self._call(self._create_sandbox, spec)

    def _create_sandbox(self, spec: SandboxSpec) -> str:
        body: dict[str, Any] = {
            "name": spec.name,
            "hostname": spec.hostname,
            "labels": {**spec.labels, LABEL_MANAGED: "true"},
            "portmappings": [{"container_port": p.container_port, "host_port": p.host_port,
                              "protocol": p.protocol.lower(), "host_ip": p.host_ip}
                             for p in spec.ports],
        }
        if spec.host_network:
            body["netns"] = {"nsmode": "host"}
        else:
            body["netns"] = {"nsmode": "bridge"}
            body["Networks"] = {self.network_name: {}}
        if spec.dns_servers:
            body["dns_server"] = list(spec.dns_servers)
        if spec.dns_search:
            body["dns_search"] = list(spec.dns_search)
        if spec.dns_options:
            body["dns_option"] = list(spec.dns_options)
        if spec.cgroup_parent or self.cgroup_parent:
            body["cgroup_parent"] = spec.cgroup_parent or self.cgroup_parent
        api = self._api()
        pod_id = _check(api.post("/pods/create", data=json.dumps(body)),
                        f"create sandbox {spec.name}").json()["Id"]
        response = api.post(f"/pods/{pod_id}/start")
        if response.status_code >= 400:
            with contextlib.suppress(APIError, requests.RequestException, OSError):
                api.delete(f"/pods/{pod_id}", params={"force": True})
            _check(response, f"start sandbox {spec.name}")
        return pod_id

    async def sandbox_ip(self, sandbox_id: str) -> str:
        return await self._call(self._sandbox_ip, sandbox_id)

    def _sandbox_ip(self, sandbox_id: str) -> str:
        pod = _check(self._api().get(f"/pods/{sandbox_id}/json"),
                     f"sandbox {sandbox_id}").json()
        infra = pod.get("InfraContainerID") or ""
        return self._infra_ip(infra) if infra else ""

    def _infra_ip(self, infra_id: str) -> str:
        body = _check(self._api().get(f"/containers/{infra_id}/json"),
                      f"infra {infra_id}").json()
        networks = (body.get("NetworkSettings") or {}).get("Networks") or {}
        mine = networks.get(self.network_name) or next(iter(networks.values()), {})
        return mine.get("IPAddress", "") or ""

    async def sandbox_netns(self, sandbox_id: str) -> str:
        """The path of the sandbox's network namespace (its infra process's), for
        connections that must start inside the pod (port-forward to its localhost)."""
        return await self._call(self._sandbox_netns, sandbox_id)

    def _sandbox_netns(self, sandbox_id: str) -> str:
        pod = _check(self._api().get(f"/pods/{sandbox_id}/json"),
                     f"sandbox {sandbox_id}").json()
        infra = pod.get("InfraContainerID") or ""
        if not infra:
            raise ContainerRuntimeError(f"sandbox {sandbox_id[:12]} has no infra container")
        body = _check(self._api().get(f"/containers/{infra}/json"), f"infra {infra}").json()
        pid = (body.get("State") or {}).get("Pid") or 0
        if not pid:
            raise ContainerRuntimeError(f"sandbox {sandbox_id[:12]} is not running")
        return f"/proc/{pid}/ns/net"

    async def remove_sandbox(self, sandbox_id: str) -> None:
        """Remove the pod and its containers, killing what still runs at once (stop them
        first for a graceful end). Idempotent."""
        await self._call(self._remove_sandbox, sandbox_id)

    def _remove_sandbox(self, sandbox_id: str) -> None:
        api = self._api()
        inspected = api.get(f"/pods/{sandbox_id}/json")
        cgroup = inspected.json().get("CgroupPath", "") if inspected.status_code == 200 else ""
        response = api.delete(f"/pods/{sandbox_id}", params={"force": True, "timeout": 0})
        if response.status_code != 404:
            _check(response, f"remove sandbox {sandbox_id}")
        self._sandbox_ips.pop(sandbox_id, None)
        if cgroup:
            remove_empty_cgroups(cgroup)

    # containers

    async def create_container(self, sandbox_id: str, spec: ContainerSpec) -> str:
        return await self._call(self._create_container, sandbox_id, spec)

    def _create_container(self, sandbox_id: str, spec: ContainerSpec) -> str:
        body = container_body(sandbox_id, spec)
        for mount in spec.mounts:
            if mount.sub_path:  # Kubernetes creates a missing subPath folder in the volume
                os.makedirs(mount_source(mount.source, mount.sub_path), exist_ok=True)
        response = self._api().post("/containers/create", data=json.dumps(body))
        return _check(response, f"create container {spec.name}").json()["Id"]

    async def start(self, container_id: str) -> None:
        await self._call(self._start, container_id)

    def _start(self, container_id: str) -> None:
        _check(self._api().post(f"/containers/{container_id}/start"),
               f"start {container_id}")

    # `timeout` is Podman's (and Kubernetes') grace period, not a bound on this call.
    async def stop(self, container_id: str, timeout: int = 30) -> None:  # noqa: ASYNC109
        """Stop signal, then SIGKILL after `timeout` seconds. Stopped already: no-op.

        Runs in a thread of its own with a client of its own (as pulls do): a stop can
        wait out a whole grace period, and must not hold up every other pod's calls.
        """
        await self._own_thread("stop", self._stop, container_id, timeout)

    def _stop(self, container_id: str, timeout: int) -> None:
        with PodmanClient(base_url=self._base_url(), timeout=self._timeout + timeout) as c:
            response = c.api.post(f"/containers/{container_id}/stop",
                                  params={"timeout": int(timeout)},
                                  timeout=self._timeout + timeout)
            if response.status_code not in (304, 404):
                _check(response, f"stop {container_id}")

    async def stop_sandbox(self, sandbox_id: str, timeout: int = 10) -> None:  # noqa: ASYNC109
        """Stop every container of the sandbox, keeping them (exited containers keep their
        status and logs until the pod is deleted). In its own thread, as `stop`."""
        await self._own_thread("stop sandbox", self._stop_sandbox, sandbox_id, timeout)

    def _stop_sandbox(self, sandbox_id: str, timeout: int) -> None:
        with PodmanClient(base_url=self._base_url(), timeout=self._timeout + timeout) as c:
            response = c.api.post(f"/pods/{sandbox_id}/stop", params={"t": int(timeout)},
                                  timeout=self._timeout + timeout)
            if response.status_code not in (304, 404):
                _check(response, f"stop sandbox {sandbox_id}")

    async def _own_thread(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise ContainerRuntimeError("runtime is closed")
        return await asyncio.to_thread(self._guarded, what, fn, *args)

    async def kill(self, container_id: str, sig: int = signal.SIGKILL) -> None:
        await self._call(self._kill, container_id, int(sig))

    def _kill(self, container_id: str, sig: int) -> None:
        _check(self._api().post(f"/containers/{container_id}/kill", params={"signal": sig}),
               f"kill {container_id}")

    async def remove_container(self, container_id: str) -> None:
        """Remove it and its anonymous volumes, killing it at once if it still runs.
        Idempotent."""
        await self._call(self._remove_container, container_id)

    def _remove_container(self, container_id: str) -> None:
        response = self._api().delete(f"/containers/{container_id}",
                                      params={"force": True, "v": True, "timeout": 0})
        if response.status_code != 404:
            _check(response, f"remove {container_id}")

    async def inspect(self, container_id: str) -> dict[str, Any]:
        """Podman's own view of one container (for debugging and tests)."""
        return await self._call(self._inspect, container_id)

    def _inspect(self, container_id: str) -> dict[str, Any]:
        return _check(self._api().get(f"/containers/{container_id}/json"),
                      f"inspect {container_id}").json()

    # observing

    async def observe(self, labels_filter: dict[str, str] | None = None,
                      ) -> dict[str, ObservedPod]:
        """Every sandbox and container (also exited ones) carrying a pod uid label and
        matching `labels_filter`, by pod uid. A pod's containers are oldest first."""
        return await self._call(self._observe, labels_filter or {})

    def _observe(self, labels_filter: dict[str, str]) -> dict[str, ObservedPod]:
        api = self._api()
        filters = json.dumps(label_filters(labels_filter))
        pods = _check(api.get("/pods/json", params={"filters": filters}), "list pods").json()
        ctrs = _check(api.get("/containers/json", params={"all": True, "filters": filters}),
                      "list containers").json() or []
        ctrs.sort(key=lambda c: c.get("Created") or "")
        infras = {c["Id"]: c for c in ctrs if c.get("IsInfra")}
        sandboxes: dict[str, ObservedSandbox] = {}
        for pod in pods or []:
            labels = dict(pod.get("Labels") or {})
            uid = labels.get(LABEL_POD_UID)
            if not uid:
                continue
            infra_id = pod.get("InfraId") or ""
            infra = infras.get(infra_id) or {}
            status = infra.get("State") or next(
                (m.get("Status", "") for m in pod.get("Containers") or []
                 if m.get("Id") == infra_id), "")
            state = container_state(status)
            ip = ""
            if state == "running" and infra_id:
                ip = self._cached_ip(pod["Id"], infra_id, infra.get("StartedAt"), labels)
            sandboxes[uid] = ObservedSandbox(id=pod["Id"], state=state, ip=ip, labels=labels)
        containers: dict[str, list[ObservedContainer]] = {}
        oom_flag = self._oom_flag()
        took_flag = False
        listed: set[str] = set()
        for item in ctrs:
            labels = item.get("Labels") or {}
            uid = labels.get(LABEL_POD_UID)
            if item.get("IsInfra") or not uid:
                continue
            cid = item["Id"]
            listed.add(cid)
            key = (item.get("State"), item.get("StartedAt"), item.get("ExitedAt"))
            cached = self._observed.get(cid)
            if cached is not None and cached[0] == key:
                observed = cached[1]
            else:
                observed, memory_limited = self._observe_container(item)
                if (oom_flag is not None and memory_limited and not observed.oom_killed
                        and observed.state == "exited" and observed.exit_code == 137):
                    observed = dataclasses.replace(observed, oom_killed=True)
                    took_flag = True
                self._observed[cid] = (key, observed)
            containers.setdefault(uid, []).append(observed)
        if took_flag and oom_flag is not None:
            with contextlib.suppress(FileNotFoundError):
                oom_flag.unlink()
        # Forget what is gone: whatever matches the filter but was not listed.
        wanted = labels_filter.items()
        self._observed = {cid: entry for cid, entry in self._observed.items()
                          if cid in listed or not wanted <= entry[1].labels.items()}
        pod_ids = {sandbox.id for sandbox in sandboxes.values()}
        self._sandbox_ips = {pid: entry for pid, entry in self._sandbox_ips.items()
                             if pid in pod_ids or not wanted <= dict(entry[0][2]).items()}
        return {uid: ObservedPod(uid=uid, sandbox=sandboxes.get(uid),
                                 containers=tuple(containers.get(uid, ())))
                for uid in sandboxes.keys() | containers.keys()}

    def _cached_ip(self, pod_id: str, infra_id: str, started: object,
                   labels: dict[str, str]) -> str:
        key = (infra_id, started, tuple(sorted(labels.items())))
        cached = self._sandbox_ips.get(pod_id)
        if cached is not None and cached[0] == key:
            return cached[1]
        try:
            ip = self._infra_ip(infra_id)
        except NotFound:
            return ""
        self._sandbox_ips[pod_id] = (key, ip)
        return ip

    def _observe_container(self, item: dict[str, Any]) -> tuple[ObservedContainer, bool]:
        """The container as observed, and whether it has a memory limit."""
        labels = dict(item.get("Labels") or {})
        name = labels.get(LABEL_CONTAINER_NAME) or (item.get("Names") or [""])[0]
        state = container_state(item.get("State", ""))
        try:
            body = self._inspect(item["Id"])
        except NotFound:  # removed meanwhile: what the listing said is all there is
            return ObservedContainer(
                id=item["Id"], name=name, state=state, labels=labels,
                exit_code=item.get("ExitCode") if state == "exited" else None,
                started_at=rfc3339(item.get("StartedAt")),
                finished_at=rfc3339(item.get("ExitedAt")) if state == "exited" else "",
                image=item.get("Image", ""), image_id=image_id(item.get("ImageID", ""))), False
        st = body.get("State") or {}
        state = container_state(st.get("Status", ""))
        observed = ObservedContainer(
            id=item["Id"], name=name, state=state, labels=labels,
            exit_code=st.get("ExitCode") if state == "exited" else None,
            oom_killed=bool(st.get("OOMKilled")),
            started_at=rfc3339(st.get("StartedAt")),
            finished_at=rfc3339(st.get("FinishedAt")) if state == "exited" else "",
            image=(body.get("Config") or {}).get("Image") or item.get("Image", ""),
            image_id=image_id(body.get("Image") or item.get("ImageID", "")),
            error=st.get("Error") or "",
        )
        return observed, bool((body.get("HostConfig") or {}).get("Memory"))

    def _oom_flag(self) -> Path | None:
        """conmon 2.1.x writes its OOM marker `oom` into ITS cwd (the service's), not into
        the container's bundle where Podman 4.3 looks for it, so Podman never reports
        OOMKilled. Our service runs in a private cwd: a marker there means "some container
        of this node was OOM-killed since the last look"; it is given to the containers
        with a memory limit seen exiting 137 at that look, and then removed."""
        if self._oom_flag_dir is None:
            return None
        flag = self._oom_flag_dir / "oom"
        return flag if flag.exists() else None

    async def stats(self) -> dict[str, tuple[int, int]]:
        """Running containers: id -> (cumulative CPU nanoseconds, memory bytes in use)."""
        return await self._call(self._stats)

    def _stats(self) -> dict[str, tuple[int, int]]:
        body = _check(self._api().get("/containers/stats", params={"stream": False}),
                      "stats").json()
        return {s["ContainerID"]: (int(s.get("CPUNano") or 0), int(s.get("MemUsage") or 0))
                for s in body.get("Stats") or [] if s.get("PIDs")}

    # events and logs

    def events(self) -> Subscription:
        """Container events (ContainerEvent) from now on, until closed. The stream thread
        starts at once, so nothing that happens after this call is missed, and it
        reconnects by itself when the service restarts (replayed duplicates are dropped)."""
        start = time.time_ns()
        base_url = self._base_url()
        flag_dir = self._oom_flag_dir

        def produce(pump: _Pump) -> None:
            client = PodmanClient(base_url=base_url, timeout=None)
            since = start
            last: set[tuple[str, str, int]] = set()
            try:
                while not pump.stopping.is_set():
                    # `since` has a one-second grain: older events are skipped below.
                    params = {"stream": True, "since": str(since // 1_000_000_000),
                              "filters": json.dumps({"type": ["container"]})}
                    try:
                        response = client.api.get("/events", params=params, stream=True)
                        pump.attach(response)
                        _check(response, "events")
                        for line in response.iter_lines():
                            if not line:
                                continue
                            event = json.loads(line)
                            nano = int(event.get("timeNano") or 0)
                            key = (event.get("id", ""), event.get("status", ""), nano)
                            if nano < since or key in last:
                                continue  # from before the subscription, or replayed
                            if nano != since:
                                last = set()
                            since = nano
                            last.add(key)
                            for converted in _convert_event(event, flag_dir):
                                if not pump.emit(converted):
                                    return
                    except (APIError, PodmanError, requests.RequestException, OSError,
                            ContainerRuntimeError) as err:
                        if pump.stopping.is_set():
                            return
                        log.info("podman events stream broke (%s); reconnecting", err)
                    pump.stopping.wait(0.5)  # the service restarts, or is gone for good
            finally:
                client.close()

        return self._subscribe(f"podman-events-{self.network_name}", produce)

    async def logs(self, container_id: str, *, follow: bool = False, tail: int | None = None,
                   since: float | None = None, timestamps: bool = False,
                   ) -> AsyncIterator[bytes]:
        """The container's output (stdout and stderr interleaved). `tail`: only the last
        lines; `since`: unix time; `follow`: keep streaming until the container stops
        or the consumer stops."""
        body = await self._call(self._inspect, container_id)
        tty = bool((body.get("Config") or {}).get("Tty"))
        params: dict[str, Any] = {"stdout": True, "stderr": True, "follow": follow,
                                  "timestamps": timestamps}
        if tail is not None:
            params["tail"] = str(max(0, int(tail)))
        if since is not None:
            params["since"] = str(int(since))
        if not follow:
            data = await self._call(self._logs_all, container_id, params)
            for chunk in _log_chunks(data, tty):
                yield chunk
            return
        base_url = self._base_url()

        def produce(pump: _Pump) -> None:
            client = PodmanClient(base_url=base_url, timeout=None)
            try:
                response = client.api.get(f"/containers/{container_id}/logs", params=params,
                                          stream=True)
                pump.attach(response)
                _check(response, f"logs {container_id}")
                buffer = bytearray()
                for data in response.iter_content(chunk_size=None):
                    if tty:
                        chunks = [data]
                    else:
                        buffer += data
                        chunks = [payload for _, payload in demux_frames(buffer)]
                    for chunk in chunks:
                        if not pump.emit(chunk):
                            return
            except (requests.RequestException, OSError):
                if not pump.stopping.is_set():
                    raise
            finally:
                client.close()

        async with self._subscribe(f"podman-logs-{self.network_name}-{container_id[:12]}",
                                   produce) as chunks:
            async for chunk in chunks:
                yield chunk

    def _logs_all(self, container_id: str, params: dict[str, Any]) -> bytes:
        response = self._api().get(f"/containers/{container_id}/logs", params=params)
        return _check(response, f"logs {container_id}").content

    def _subscribe(self, name: str, produce: Callable[[_Pump], None]) -> Subscription:
        if self._closed:
            raise ContainerRuntimeError("runtime is closed")
        pump = _Pump(name, produce)
        self._pumps.add(pump)
        return Subscription(self, pump)

    # exec

    async def exec(self, container_id: str, cmd: Sequence[str], *, stdin: bool = False,
                   tty: bool = False) -> ExecSession:
        """Start `cmd` in the container; returns the session to talk to it."""
        exec_id = await self._call(self._exec_create, container_id, list(cmd), stdin, tty)
        try:
            reader, writer = await asyncio.open_unix_connection(str(self.socket_path),
                                                                limit=1 << 20)
        except OSError as err:
            raise ServiceError(f"exec {container_id}: {err}") from err
        body = json.dumps({"Detach": False, "Tty": tty}).encode()
        writer.write(
            f"POST {RAW_API_PREFIX}/exec/{exec_id}/start HTTP/1.1\r\nHost: podman\r\n"
            f"Content-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        try:
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as err:
            writer.close()
            raise ServiceError(f"exec {container_id}: {err}") from err
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status and b" 200 " not in status:
            rest = await reader.read(4096)
            writer.close()
            message = (head + rest).decode(errors="replace").strip()
            raise ContainerRuntimeError(f"exec {container_id}: {message}")
        return ExecSession(self, exec_id, tty, reader, writer)

    def _exec_create(self, container_id: str, cmd: list[str], stdin: bool, tty: bool) -> str:
        body = {"AttachStdin": stdin, "AttachStdout": True, "AttachStderr": True, "Tty": tty,
                "Cmd": cmd}
        response = self._api().post(f"/containers/{container_id}/exec", data=json.dumps(body))
        return _check(response, f"exec in {container_id}").json()["Id"]

    def _exec_state(self, exec_id: str) -> tuple[bool, int | None]:
        body = _check(self._api().get(f"/exec/{exec_id}/json"), f"exec {exec_id}").json()
        return bool(body.get("Running")), body.get("ExitCode")

    def _exec_resize(self, exec_id: str, height: int, width: int) -> None:
        _check(self._api().post(f"/exec/{exec_id}/resize", params={"h": height, "w": width}),
               f"resize exec {exec_id}")


# --- mapping -------------------------------------------------------------------------------


def container_body(sandbox_id: str, spec: ContainerSpec) -> dict[str, Any]:
    """The libpod create body (SpecGenerator) for a Kubernetes-shaped container (pure)."""
    body: dict[str, Any] = {
        "name": spec.name,
        "image": spec.image,
        "pod": sandbox_id,
        "labels": {**spec.labels, LABEL_MANAGED: "true"},
        "env": dict(spec.env),
        "stdin": spec.stdin,
        "terminal": spec.tty,
        "stop_signal": int(spec.stop_signal),
        "privileged": spec.privileged,
        "read_only_filesystem": spec.read_only_rootfs,
        # Kubernetes' readOnlyRootFilesystem adds no writable /tmp, /run, /var/tmp.
        "read_only_tmpfs": False,
        "mounts": [],
    }
    # Kubernetes: `command` replaces the image's ENTRYPOINT (and drops its CMD), `args`
    # replace its CMD. Podman drops the image CMD too once an entrypoint is given.
    if spec.command:
        body["entrypoint"] = list(spec.command)
    if spec.args:
        body["command"] = list(spec.args)
    if spec.working_dir:
        body["work_dir"] = spec.working_dir
    if spec.user:
        body["user"] = spec.user
    for mount in spec.mounts:
        source = mount_source(mount.source, mount.sub_path)
        body["mounts"].append({"type": "bind", "source": source, "destination": mount.target,
                               "options": ["rbind", "ro" if mount.read_only else "rw"]})
    limits: dict[str, Any] = {}
    if spec.memory_limit:
        limits["memory"] = {"limit": int(spec.memory_limit)}
    if spec.cpu_quota_millis:
        limits["cpu"] = {"period": CPU_PERIOD_US, "quota": cpu_quota(spec.cpu_quota_millis)}
    if limits:
        body["resource_limits"] = limits
    return body


def _convert_event(event: dict[str, Any], oom_flag_dir: Path | None) -> Iterable[ContainerEvent]:
    actor = event.get("Actor") or {}
    attributes = actor.get("Attributes") or {}
    cid = actor.get("ID") or event.get("id") or ""
    action = event.get("Action") or event.get("status") or ""
    pod_uid = attributes.get(LABEL_POD_UID, "")
    if (action == "died" and attributes.get("containerExitCode") == "137"
            and oom_flag_dir is not None and (oom_flag_dir / "oom").exists()):
        yield ContainerEvent(container_id=cid, pod_uid=pod_uid, action="oom")
    yield ContainerEvent(container_id=cid, pod_uid=pod_uid, action=action)


def _log_chunks(data: bytes, tty: bool) -> list[bytes]:
    if tty:
        return [data] if data else []
    return [payload for _, payload in demux_frames(bytearray(data))]

