"""SPDY/3.1 framing and the port-forward session, against a loopback "pod" server.

The end-to-end test with the real kubectl is in tests/e2e/test_logs_exec.py; these pin
the pieces: the dictionary, header blocks, frames split anywhere, pairing, errors, pings.
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import AsyncIterator

import pytest

from bramble.node import portforward, spdy


class Client:
    """The kubectl side of a session, in frames."""

    def __init__(self) -> None:
        self.codec = spdy.HeaderCodec()
        self.reader = spdy.FrameReader(spdy.HeaderCodec())

    def syn(self, sid: int, headers: dict[str, str]) -> bytes:
        payload = struct.pack(">IIH", sid, 0, 0) + self.codec.encode(headers)
        return struct.pack(">HHI", 0x8003, spdy.SYN_STREAM, len(payload)) + payload

    def open(self, rid: str, port: str, first: int) -> bytes:
        return (self.syn(first, {"streamtype": "error", "port": port, "requestid": rid})
                + spdy.data_frame(first, b"", fin=True)
                + self.syn(first + 2, {"streamtype": "data", "port": port, "requestid": rid}))


class Session:
    """A session fed from a queue, its output collected as frames."""

    def __init__(self, connect: portforward.Connect) -> None:
        self.client = Client()
        self.inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.frames: list[spdy.Frame] = []
        self.changed = asyncio.Event()
        self.session = portforward.PortForwardSession(self._send, connect, "web", "uid-1")

    async def _send(self, data: bytes) -> None:
        self.frames += self.client.reader.feed(data)
        self.changed.set()

    async def _messages(self) -> AsyncIterator[bytes]:
        while (m := await self.inbox.get()) is not None:
            yield m

    def run(self) -> asyncio.Task[None]:
        return asyncio.create_task(self.session.run(self._messages()), name="pf-test")

    async def until(self, check, timeout: float = 5) -> None:  # noqa: ASYNC109
        async def wait() -> None:
            while not check(self.frames):
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(wait(), timeout)

    def data(self, sid: int) -> bytes:
        return b"".join(f.data for f in self.frames if f.type == 0 and f.stream_id == sid)

    def fin(self, sid: int) -> bool:
        return any(f.type == 0 and f.stream_id == sid and f.fin for f in self.frames)


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    """A "pod" that upper-cases what it gets until EOF, then closes."""
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write((await reader.read()).upper())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


def test_dictionary_is_the_spdy3_one() -> None:
    # 1423 bytes, and zlib streams made with it carry its adler32 as DICTID.
    assert len(spdy.DICTIONARY) == 1423
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert spdy.DICTIONARY.endswith(b"utf-,*,enq=0.")
    block = spdy.HeaderCodec().encode({"a": "b"})
    assert struct.unpack(">I", block[2:6])[0] == zlib.adler32(spdy.DICTIONARY)


def test_header_blocks_round_trip_across_one_compression_context() -> None:
    sender, receiver = spdy.HeaderCodec(), spdy.HeaderCodec()
    for headers in ({"streamtype": "error", "port": "8080", "requestid": "0"},
                    {"streamtype": "data", "port": "8080", "requestid": "0"}, {}):
        assert receiver.decode(sender.encode(headers)) == headers


@pytest.mark.parametrize("split", [1, 3, 7, 1000])
def test_frames_split_anywhere_are_reassembled(split: int) -> None:
    client = Client()
    wire = (client.syn(1, {"streamtype": "data", "port": "80"})
            + spdy.data_frame(1, b"hello", fin=True) + spdy.ping_frame(5)
            + spdy.rst_stream_frame(1, spdy.CANCEL) + spdy.goaway_frame(1))
    reader = spdy.FrameReader(spdy.HeaderCodec())
    frames = []
    for i in range(0, len(wire), split):
        frames += reader.feed(wire[i:i + split])
    assert [(f.type, f.stream_id) for f in frames] == [
        (spdy.SYN_STREAM, 1), (0, 1), (spdy.PING, 0), (spdy.RST_STREAM, 1), (spdy.GOAWAY, 1)]
    assert frames[0].headers == {"streamtype": "data", "port": "80"}
    assert (frames[1].data, frames[1].fin) == (b"hello", True)
    assert (frames[2].value, frames[3].value) == (5, spdy.CANCEL)


@pytest.mark.parametrize(("wire", "message"), [
    (struct.pack(">HHI", 0x8002, spdy.PING, 4) + b"\0\0\0\1", "version 2"),
    (struct.pack(">II", 1, 1 << 21), "larger than"),
    (struct.pack(">HHI", 0x8003, spdy.PING, 2) + b"\0\0", "too short"),
])
def test_bad_frames_are_protocol_errors(wire: bytes, message: str) -> None:
    with pytest.raises(spdy.ProtocolError, match=message):
        spdy.FrameReader(spdy.HeaderCodec()).feed(wire)


@pytest.mark.parametrize(("headers", "sid", "expected"), [
    ({"requestid": "7", "streamtype": "data"}, 3, "7"),
    ({"streamtype": "error"}, 5, "5"),   # old clients: the error stream's own id
    ({"streamtype": "data"}, 7, "5"),    # ...and the data stream opened right after it
])
def test_request_ids_pair_streams(headers: dict[str, str], sid: int, expected: str) -> None:
    assert portforward.request_id(headers, sid) == expected


async def test_a_connection_is_forwarded_both_ways(echo_port: int) -> None:
    async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", port)

    s = Session(connect)
    task = s.run()
    try:
        # Two connections at once; each request delivered in pieces, then half-closed.
        await s.inbox.put(s.client.open("0", str(echo_port), 1))
        await s.inbox.put(s.client.open("1", str(echo_port), 5))
        await s.inbox.put(spdy.data_frame(3, b"hel") + spdy.data_frame(7, b"other"))
        await s.inbox.put(spdy.data_frame(3, b"lo", fin=True) + spdy.data_frame(7, b"",
                                                                               fin=True))
        await s.until(lambda _: s.fin(1) and s.fin(3) and s.fin(5) and s.fin(7))
        assert (s.data(3), s.data(7)) == (b"HELLO", b"OTHER")
        assert s.data(1) == b"" and s.data(5) == b""  # no errors
        replies = [f.stream_id for f in s.frames if f.type == spdy.SYN_REPLY]
        assert sorted(replies) == [1, 3, 5, 7]
        # Pings from the client (odd ids) are echoed.
        await s.inbox.put(spdy.ping_frame(9))
        await s.until(lambda fs: any(f.type == spdy.PING and f.value == 9 for f in fs))
    finally:
        await s.inbox.put(None)
        await asyncio.wait_for(task, 5)


async def test_a_port_nobody_listens_on_fails_that_connection_only(echo_port: int) -> None:
    async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if port != echo_port:
            raise ConnectionRefusedError(111, "Connection refused")
        return await asyncio.open_connection("127.0.0.1", port)

    s = Session(connect)
    task = s.run()
    try:
        await s.inbox.put(s.client.open("0", "9", 1))
        await s.inbox.put(s.client.open("1", "nope", 5))
        await s.until(lambda _: s.fin(1) and s.fin(5))
        assert s.data(1) == b"error forwarding port 9 to pod web, uid uid-1: Connection refused"
        assert s.data(5) == b"error forwarding port nope to pod web, uid uid-1: invalid port 'nope'"
        await s.inbox.put(s.client.open("2", str(echo_port), 9) + spdy.data_frame(11, b"x",
                                                                                  fin=True))
        await s.until(lambda _: s.fin(11))
        assert s.data(11) == b"X"
    finally:
        await s.inbox.put(None)
        await asyncio.wait_for(task, 5)


async def test_closing_the_session_ends_open_forwards() -> None:
    held = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.set()
        await reader.read()  # never answers
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    async def connect(p: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", p)

    async with server:
        s = Session(connect)
        task = s.run()
        await s.inbox.put(s.client.open("0", str(port), 1))
        await asyncio.wait_for(held.wait(), 5)
        await s.inbox.put(None)  # the websocket closed
        await asyncio.wait_for(task, 5)
        assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("port-forward")]
