"""`bramble logs` and `bramble exec`: the streaming commands, over the same API kubectl uses
(pods/log as a chunked text stream, pods/exec as a v5.channel.k8s.io websocket). One pod's
log is copied through as it comes; a selector's (or --prefix/--all-containers) is merged
and followed by bramble/cli/clusterlogs.py.

Exec frames are binary messages whose first byte is the channel: 0 stdin, 1 stdout,
2 stderr, 3 the final Status, 4 resize, 255 close (v5: `255 0` closes stdin). The Status
gives the exit code (Failure/NonZeroExitCode carries it in an ExitCode cause), which
`bramble exec` exits with, as kubectl does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import sys
from collections.abc import Iterator
from typing import Any, BinaryIO

import orjson
from aiohttp import WSMsgType

from bramble.cli.commands import Env, UsageError, server_error
from bramble.client import resource_path
from bramble.kube.errors import StatusError

EXEC_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
_DURATION = re.compile(r"(\d+)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> int:
    """"1h30m" -> 5400 (whole seconds, at least 1), as kubectl's --since takes them."""
    parts = _DURATION.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise UsageError(f"invalid duration {text!r}: use e.g. 30s, 10m, 1h30m")
    return max(1, int(sum(int(n) * _UNITS[u] for n, u in parts)))


def log_params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if args.container:
        params["container"] = args.container
    if args.follow:
        params["follow"] = "true"
    if args.previous:
        params["previous"] = "true"
    if args.timestamps:
        params["timestamps"] = "true"
    if args.tail is not None and args.tail >= 0:
        params["tailLines"] = str(args.tail)
    if args.since:
        params["sinceSeconds"] = str(parse_duration(args.since))
    if getattr(args, "since_time", ""):
        params["sinceTime"] = args.since_time
    if getattr(args, "limit_bytes", None) is not None:
        params["limitBytes"] = str(args.limit_bytes)
    return params


def exit_code(status: dict[str, Any]) -> tuple[int, str]:
    """The exit code and message an exec's final Status means."""
    if status.get("status") == "Success":
        return 0, ""
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            with contextlib.suppress(TypeError, ValueError):
                return int(cause.get("message")), ""
    return 1, str(status.get("message") or "exec failed")


def stdin_frames(data: bytes, chunk: int = 32 * 1024) -> Iterator[bytes]:
    for i in range(0, len(data), chunk):
        yield bytes([STDIN]) + data[i:i + chunk]


async def logs(env: Env, args: argparse.Namespace) -> int:
    if getattr(args, "selector", None) and args.pod:
        raise UsageError("give a pod name or a selector (-l), not both")
    if not getattr(args, "selector", None) and not args.pod:
        raise UsageError("give a pod name, or a selector: bramble logs -l app=web")
    if args.since and getattr(args, "since_time", ""):
        raise UsageError("at most one of --since and --since-time may be given")
    if args.selector or args.all_containers or args.prefix:
        # Several streams (or one, prefixed): merged, followed across the cluster.
        from bramble.cli import clusterlogs

        return await clusterlogs.run(env, args)
    path = resource_path("", "v1", "pods", env.namespace, args.pod, "log")
    out = sys.stdout.buffer
    try:
        async for chunk in env.api.stream(path, log_params(args)):
            out.write(chunk)
            out.flush()
    except StatusError as err:
        env.error(server_error(err))
        return 1
    return 0


def split_command(args: argparse.Namespace) -> None:
    """`exec POD [-i] [-t] [-c C] -- CMD...`: argparse hands everything after POD over as
    the command; the flags before `--` are taken back out of it."""
    words = list(args.argv)
    if "--" in words:
        at = words.index("--")
        flags, words = words[:at], words[at + 1:]
        extra = argparse.ArgumentParser(prog="bramble exec", add_help=False)
        extra.add_argument("-c", "--container", default=args.container)
        extra.add_argument("-i", "--stdin", action="store_true", default=args.stdin)
        extra.add_argument("-t", "--tty", action="store_true", default=args.tty)
        known, unknown = extra.parse_known_args(flags)
        if unknown:
            raise UsageError(f"unknown flags before --: {' '.join(unknown)}")
        args.container, args.stdin, args.tty = known.container, known.stdin, known.tty
    args.argv = words


async def exec_(env: Env, args: argparse.Namespace) -> int:
    split_command(args)
    if not args.argv:
        raise UsageError("give the command to run after --, e.g. bramble exec web -- ls /")
    try:
        # A GET first, as kubectl does: a missing pod is a clear 404, not a failed upgrade.
        await env.api.request("GET", resource_path("", "v1", "pods", env.namespace, args.pod))
        params: dict[str, Any] = {"command": list(args.argv), "stdout": "true",
                                  "stderr": "false" if args.tty else "true"}
        if args.container:
            params["container"] = args.container
        if args.stdin:
            params["stdin"] = "true"
        if args.tty:
            params["tty"] = "true"
        ws = await env.api.websocket(
            resource_path("", "v1", "pods", env.namespace, args.pod, "exec"), params,
            EXEC_PROTOCOLS)
    except StatusError as err:
        env.error(server_error(err))
        return 1
    with _raw_terminal(args.tty and args.stdin):
        async with ws:
            return await _run_exec(ws, args, env)


async def _run_exec(ws: Any, args: argparse.Namespace, env: Env) -> int:
    out, err = sys.stdout.buffer, sys.stderr.buffer
    feeder: asyncio.Task[None] | None = None
    if args.stdin:
        feeder = asyncio.create_task(_feed_stdin(ws, sys.stdin.buffer, ws.protocol),
                                     name="exec-stdin")
    if args.tty:
        size = shutil.get_terminal_size()
        await ws.send_bytes(bytes([RESIZE]) + orjson.dumps({"Width": size.columns,
                                                             "Height": size.lines}))
    code, message = 1, "the connection ended without an exit status"
    try:
        async for msg in ws:
            if msg.type != WSMsgType.BINARY or not msg.data:
                continue
            channel, data = msg.data[0], msg.data[1:]
            if channel == STDOUT:
                out.write(data)
                out.flush()
            elif channel == STDERR:
                err.write(data)
                err.flush()
            elif channel == ERROR:
                code, message = exit_code(orjson.loads(data))
                break
    finally:
        if feeder is not None:
            feeder.cancel()
            await asyncio.gather(feeder, return_exceptions=True)
    if message:
        env.error(f"error: {message}")
    return code


async def _feed_stdin(ws: Any, source: BinaryIO, protocol: str | None) -> None:
    """Copy our stdin to channel 0 (read off the event loop); at its end, close the
    command's stdin (v5) so `cat`-like commands finish."""
    fd = source.fileno()
    while data := await asyncio.to_thread(os.read, fd, 32 * 1024):
        for frame in stdin_frames(data):
            await ws.send_bytes(frame)
    if protocol == "v5.channel.k8s.io":
        await ws.send_bytes(bytes([CLOSE, STDIN]))


@contextlib.contextmanager
def _raw_terminal(enabled: bool) -> Iterator[None]:
    """-it on a terminal: keys go to the remote shell as typed (no local echo or line
    editing); the terminal is restored however the session ends."""
    if not enabled or not sys.stdin.isatty():
        yield
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
