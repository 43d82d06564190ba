"""`kubectl port-forward`, the node's side: one SPDY/3.1 session per websocket.

For each local connection kubectl opens two SPDY streams carrying the same `requestid`
and `port` headers: an "error" stream (kubectl closes its half at once and reads what we
write: a message if forwarding fails) and a "data" stream (the connection's bytes both
ways). When both have arrived, one forward connects to the port on the pod's own
localhost (node/netns.py) and copies both ways. The pod closing its side ends our half
of the data stream (FIN); kubectl resets the streams when its local connection closes.
Streams of one session are independent: a port nobody listens on fails that connection
only. PINGs from kubectl are echoed; a GOAWAY or the websocket closing ends everything.

Invariants: every forward is a named task the session owns and cancels on close; bytes
from kubectl to the pod go through a bounded queue per connection, so a pod that stops
reading slows its own kubectl connection down (TCP back-pressure) instead of growing
memory; frames to the websocket are written by one coroutine at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from . import spdy

log = logging.getLogger(__name__)

PROTOCOL = "SPDY/3.1+portforward.k8s.io"
CHUNK = 32 * 1024
QUEUE_CHUNKS = 16  # per connection towards the pod: ~512 KiB at most

Connect = Callable[[int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]
Send = Callable[[bytes], Awaitable[None]]


@dataclass
class _Pair:
    """The two streams of one forwarded connection."""

    request_id: str
    port: int | None = None
    bad_port: str = ""
    error_id: int = 0
    data_id: int = 0
    to_pod: asyncio.Queue[bytes | None] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_CHUNKS))
    task: asyncio.Task[None] | None = None
    reset: asyncio.Event = field(default_factory=asyncio.Event)


def request_id(headers: dict[str, str], stream_id: int) -> str:
    """The pairing key; clients older than the `requestid` header pair an error stream
    with the data stream opened right after it (the kubelet's rule)."""
    if headers.get("requestid"):
        return headers["requestid"]
    if headers.get("streamtype") == "data":
        return str(stream_id - 2)
    return str(stream_id)


def parse_port(value: str) -> int | None:
    try:
        port = int(value)
    except ValueError:
        return None
    return port if 0 < port < 65536 else None


class PortForwardSession:
    def __init__(self, send: Send, connect: Connect, pod: str, uid: str) -> None:
        self._send_raw = send
        self._connect = connect
        self._pod = pod
        self._uid = uid
        self._codec = spdy.HeaderCodec()
        self._reader = spdy.FrameReader(self._codec)
        self._write_lock = asyncio.Lock()
        self._pairs: dict[str, _Pair] = {}
        self._by_stream: dict[int, _Pair] = {}

    async def _send(self, frame: bytes) -> None:
        async with self._write_lock:
            await self._send_raw(frame)

    async def run(self, messages: AsyncIterator[bytes]) -> None:
        """Serve until the caller closes or says GOAWAY; always ends every forward."""
        try:
            async for message in messages:
                for frame in self._reader.feed(message):
                    if not await self._handle(frame):
                        return
        except spdy.ProtocolError as err:
            log.info("port-forward session ended: protocol error", extra={"pod": self._pod,
                                                                         "error": str(err)})
            with contextlib.suppress(ConnectionError):
                await self._send(spdy.goaway_frame(0, spdy.PROTOCOL_ERROR))
        finally:
            await self.close()

    async def close(self) -> None:
        tasks = [p.task for p in self._pairs.values() if p.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pairs.clear()
        self._by_stream.clear()

    async def _handle(self, frame: spdy.Frame) -> bool:
        if frame.type == spdy.SYN_STREAM:
            await self._open(frame)
        elif frame.type == 0:
            pair = self._by_stream.get(frame.stream_id)
            if pair is not None and frame.stream_id == pair.data_id:
                if frame.data:
                    await pair.to_pod.put(frame.data)
                if frame.fin:
                    await pair.to_pod.put(None)
            # Data on the error stream, or for a stream already gone: nothing to do.
        elif frame.type == spdy.RST_STREAM:
            pair = self._by_stream.get(frame.stream_id)
            if pair is not None:
                pair.reset.set()
        elif frame.type == spdy.PING:
            if frame.value % 2 == 1:  # the client's (odd ids); we send none of our own
                await self._send(spdy.ping_frame(frame.value))
        elif frame.type == spdy.GOAWAY:
            return False
        return True

    async def _open(self, frame: spdy.Frame) -> None:
        headers, sid = frame.headers, frame.stream_id
        kind = headers.get("streamtype", "")
        if kind not in ("error", "data") or sid in self._by_stream:
            await self._send(spdy.rst_stream_frame(sid, spdy.PROTOCOL_ERROR))
            return
        rid = request_id(headers, sid)
        pair = self._pairs.setdefault(rid, _Pair(rid))
        port = parse_port(headers.get("port", ""))
        if port is None:
            pair.bad_port = headers.get("port", "")
        else:
            pair.port = port
        if kind == "error":
            pair.error_id = sid
        else:
            pair.data_id = sid
        self._by_stream[sid] = pair
        await self._send(spdy.syn_reply_frame(self._codec, sid, {}))
        if pair.error_id and pair.data_id and pair.task is None:
            pair.task = asyncio.create_task(self._forward(pair),
                                            name=f"port-forward-{self._pod}-{rid}")

    async def _forward(self, pair: _Pair) -> None:
        try:
            await self._copy(pair)
        except (ConnectionError, OSError) as err:
            log.debug("port-forward connection ended", extra={"pod": self._pod,
                                                              "error": str(err)})
        finally:
            for sid in (pair.data_id, pair.error_id):
                self._by_stream.pop(sid, None)
            self._pairs.pop(pair.request_id, None)

    async def _copy(self, pair: _Pair) -> None:
        if pair.port is None:
            await self._fail(pair, f"invalid port {pair.bad_port!r}")
            return
        try:
            reader, writer = await self._connect(pair.port)
        except OSError as err:
            await self._fail(pair, err.strerror or str(err))
            return
        try:
            async def to_pod() -> None:
                while (chunk := await pair.to_pod.get()) is not None:
                    writer.write(chunk)
                    await writer.drain()
                if writer.can_write_eof():
                    writer.write_eof()

            async def from_pod() -> None:
                while chunk := await reader.read(CHUNK):
                    if pair.reset.is_set():
                        return
                    await self._send(spdy.data_frame(pair.data_id, chunk))
                if not pair.reset.is_set():
                    await self._send(spdy.data_frame(pair.data_id, b"", fin=True))

            up = asyncio.create_task(to_pod(), name=f"port-forward-up-{pair.request_id}")
            down = asyncio.create_task(from_pod(), name=f"port-forward-down-{pair.request_id}")
            reset = asyncio.create_task(pair.reset.wait(),
                                        name=f"port-forward-reset-{pair.request_id}")
            try:
                # The pod closing its side ends the connection: kubectl closes its local
                # connection once the error stream ends too, then resets both streams.
                await asyncio.wait({down, reset}, return_when=asyncio.FIRST_COMPLETED)
                if down.done() and not pair.reset.is_set():
                    down.result()
                    await self._send(spdy.data_frame(pair.error_id, b"", fin=True))
                    await asyncio.wait({up, reset}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (up, down, reset):
                    task.cancel()
                results = await asyncio.gather(up, down, reset, return_exceptions=True)
            for result in results:
                if isinstance(result, Exception) and not isinstance(
                        result, ConnectionError | OSError):
                    raise result
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _fail(self, pair: _Pair, reason: str) -> None:
        """What the kubelet writes when it cannot forward: kubectl prints it."""
        message = (f"error forwarding port {pair.port or pair.bad_port} to pod {self._pod}, "
                   f"uid {self._uid}: {reason}")
        log.info("port-forward failed", extra={"pod": self._pod, "port": pair.port,
                                               "error": reason})
        await self._send(spdy.data_frame(pair.error_id, message.encode(), fin=True))
        await self._send(spdy.data_frame(pair.data_id, b"", fin=True))
