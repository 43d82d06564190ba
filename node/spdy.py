"""SPDY/3.1 framing, the server side of what `kubectl port-forward` speaks.

kubectl (1.31+) tunnels a SPDY/3.1 session through a websocket (subprotocol
`SPDY/3.1+portforward.k8s.io`): websocket binary messages carry the raw SPDY byte stream,
split anywhere. This module is pure: `FrameReader` turns bytes into frames, the `*_frame`
functions make frames, and `HeaderCodec` keeps the two zlib contexts SPDY uses for header
blocks (one per direction, for the whole session, primed with the SPDY/3 dictionary).

Only what a port-forward server needs is here: SYN_STREAM (client opens a stream),
SYN_REPLY (we accept it), DATA (with FIN), RST_STREAM, PING (echoed), GOAWAY,
WINDOW_UPDATE/SETTINGS (read and ignored: the peer, moby/spdystream, does no flow control,
and neither do we - the websocket's own back-pressure bounds the buffers).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = (
    1, 2, 3, 4, 6, 7, 8, 9)
FLAG_FIN = 0x01
# RST_STREAM status codes
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, CANCEL, INTERNAL_ERROR = 1, 2, 3, 5, 6


def _dictionary() -> bytes:
    """The SPDY/3 header-compression dictionary (draft-mbelshe-httpbis-spdy-00 2.6.10.1):
    length-prefixed header names and values, then a run of common text. Both peers must
    use it byte for byte: zlib checks its adler32 on the first header block."""
    words = (
        "options head post put delete trace accept accept-charset accept-encoding "
        "accept-language accept-ranges age allow authorization cache-control connection "
        "content-base content-encoding content-language content-length content-location "
        "content-md5 content-range content-type date etag expect expires from host if-match "
        "if-modified-since if-none-match if-range if-unmodified-since last-modified location "
        "max-forwards pragma proxy-authenticate proxy-authorization range referer "
        "retry-after server te trailer transfer-encoding upgrade user-agent vary via warning "
        "www-authenticate method get status"
    ).split() + ["200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie",
                 "keep-alive", "origin"]
    tail = (
        "100101201202205206300302303304305306307402405406407408409410411412413414415416417"
        "502504505203 Non-Authoritative Information204 No Content301 Moved Permanently"
        "400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error"
        "501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct "
        "Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,"
        "image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
        "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8"
        "charset=iso-8859-1,utf-,*,enq=0."
    )
    return b"".join(struct.pack(">I", len(w)) + w.encode() for w in words) + tail.encode()


DICTIONARY = _dictionary()


class ProtocolError(Exception):
    """The peer sent something that is not SPDY/3.1 as we speak it; the session ends."""


@dataclass(frozen=True)
class Frame:
    """One frame. Control frames have `type` > 0; DATA frames have type 0."""

    type: int
    flags: int
    stream_id: int = 0
    headers: dict[str, str] = field(default_factory=dict)  # SYN_STREAM / SYN_REPLY / HEADERS
    data: bytes = b""              # DATA payload
    value: int = 0                 # PING id, RST_STREAM / GOAWAY status, WINDOW_UPDATE delta

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


class HeaderCodec:
    """Header blocks: a 32-bit count, then (32-bit length, name, 32-bit length, value) pairs,
    zlib-compressed with a per-direction context that lives as long as the session."""

    def __init__(self) -> None:
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(zdict=DICTIONARY)

    def decode(self, block: bytes) -> dict[str, str]:
        try:
            raw = self._inflate.decompress(block)
        except zlib.error as err:
            raise ProtocolError(f"bad header block: {err}") from None
        headers: dict[str, str] = {}
        try:
            (count,), pos = struct.unpack_from(">I", raw), 4
            for _ in range(count):
                (n,) = struct.unpack_from(">I", raw, pos)
                name = raw[pos + 4:pos + 4 + n].decode().lower()
                pos += 4 + n
                (n,) = struct.unpack_from(">I", raw, pos)
                value = raw[pos + 4:pos + 4 + n].decode()
                pos += 4 + n
                if pos > len(raw):
                    raise ProtocolError("truncated header block")
                # A repeated header is NUL-separated in one value; the first one is enough.
                headers[name] = value.split("\0", 1)[0]
        except (struct.error, UnicodeDecodeError) as err:
            raise ProtocolError(f"bad header block: {err}") from None
        return headers

    def encode(self, headers: dict[str, str]) -> bytes:
        raw = struct.pack(">I", len(headers))
        for name, value in headers.items():
            n, v = name.lower().encode(), value.encode()
            raw += struct.pack(">I", len(n)) + n + struct.pack(">I", len(v)) + v
        return self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)


def _control(type_: int, flags: int, payload: bytes) -> bytes:
    return struct.pack(">HHI", 0x8000 | VERSION, type_, (flags << 24) | len(payload)) + payload


def syn_reply_frame(codec: HeaderCodec, stream_id: int, headers: dict[str, str],
                    fin: bool = False) -> bytes:
    return _control(SYN_REPLY, FLAG_FIN if fin else 0,
                    struct.pack(">I", stream_id & 0x7FFFFFFF) + codec.encode(headers))


def data_frame(stream_id: int, data: bytes, fin: bool = False) -> bytes:
    return struct.pack(">II", stream_id & 0x7FFFFFFF,
                       ((FLAG_FIN if fin else 0) << 24) | len(data)) + data


def rst_stream_frame(stream_id: int, status: int) -> bytes:
    return _control(RST_STREAM, 0, struct.pack(">II", stream_id & 0x7FFFFFFF, status))


def ping_frame(ping_id: int) -> bytes:
    return _control(PING, 0, struct.pack(">I", ping_id))


def goaway_frame(last_stream_id: int, status: int = 0) -> bytes:
    return _control(GOAWAY, 0, struct.pack(">II", last_stream_id & 0x7FFFFFFF, status))


class FrameReader:
    """Bytes in, frames out; frames may arrive split across, or several to, one message."""

    def __init__(self, codec: HeaderCodec, max_frame: int = 1 << 20) -> None:
        self._codec = codec
        self._buf = bytearray()
        self._max = max_frame

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames = []
        while len(self._buf) >= 8:
            first, second = struct.unpack_from(">II", self._buf)
            flags, length = second >> 24, second & 0xFFFFFF
            if length > self._max:
                raise ProtocolError(f"frame of {length} bytes is larger than {self._max}")
            if len(self._buf) < 8 + length:
                break
            payload = bytes(self._buf[8:8 + length])
            del self._buf[:8 + length]
            if first & 0x80000000:
                version, type_ = (first >> 16) & 0x7FFF, first & 0xFFFF
                if version != VERSION:
                    raise ProtocolError(f"SPDY version {version} is not supported")
                frame = self._control(type_, flags, payload)
                if frame is not None:
                    frames.append(frame)
            else:
                frames.append(Frame(0, flags, first & 0x7FFFFFFF, data=payload))
        return frames

    def _control(self, type_: int, flags: int, p: bytes) -> Frame | None:
        try:
            if type_ == SYN_STREAM:
                stream_id = struct.unpack_from(">I", p)[0] & 0x7FFFFFFF
                return Frame(type_, flags, stream_id, headers=self._codec.decode(p[10:]))
            if type_ in (SYN_REPLY, HEADERS):
                stream_id = struct.unpack_from(">I", p)[0] & 0x7FFFFFFF
                return Frame(type_, flags, stream_id, headers=self._codec.decode(p[4:]))
            if type_ in (RST_STREAM, WINDOW_UPDATE):
                stream_id, value = struct.unpack_from(">II", p)
                return Frame(type_, flags, stream_id & 0x7FFFFFFF, value=value)
            if type_ == PING:
                return Frame(type_, flags, value=struct.unpack_from(">I", p)[0])
            if type_ == GOAWAY:
                last, status = struct.unpack_from(">II", p)
                return Frame(type_, flags, last & 0x7FFFFFFF, value=status)
        except struct.error:
            raise ProtocolError(f"control frame {type_} is too short") from None
        return None  # SETTINGS, CREDENTIAL, NOOP, unknown: ignored as the spec asks
