"""Pure pieces of `bramble logs` and `bramble exec`."""

from __future__ import annotations

import argparse

import pytest

from bramble.cli.commands import UsageError
from bramble.cli.streams import exit_code, log_params, parse_duration, split_command


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("10m", 600), ("1h30m", 5400), ("1500ms", 1),
    ("100ms", 1),  # at least one second: the API's sinceSeconds minimum
])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "soon", "1h30", "m10", "-5m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(UsageError, match="invalid duration"):
        parse_duration(text)


def test_log_params_carry_only_what_was_asked() -> None:
    args = argparse.Namespace(container="", follow=False, previous=False, timestamps=False,
                              tail=-1, since="")
    assert log_params(args) == {}
    args = argparse.Namespace(container="c", follow=True, previous=True, timestamps=True,
                              tail=0, since="2m")
    assert log_params(args) == {"container": "c", "follow": "true", "previous": "true",
                                "timestamps": "true", "tailLines": "0", "sinceSeconds": "120"}


@pytest.mark.parametrize(("status", "expected"), [
    ({"status": "Success"}, (0, "")),
    ({"status": "Failure", "reason": "NonZeroExitCode",
      "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}}, (3, "")),
    ({"status": "Failure", "message": 'container "x" is not running'},
     (1, 'container "x" is not running')),
    ({"status": "Failure", "details": {"causes": [{"reason": "ExitCode",
                                                   "message": "junk"}]}}, (1, "exec failed")),
])
def test_exit_codes_from_the_final_status(status: dict, expected: tuple[int, str]) -> None:
    assert exit_code(status) == expected


@pytest.mark.parametrize(("argv", "flags", "command"), [
    (["--", "ls", "-l"], ("", False, False), ["ls", "-l"]),
    (["-it", "--", "sh"], ("", True, True), ["sh"]),
    (["-c", "side", "-i", "--", "cat", "--", "x"], ("side", True, False), ["cat", "--", "x"]),
    (["ls"], ("", False, False), ["ls"]),  # no --: all of it is the command
])
def test_flags_before_the_double_dash(argv: list[str], flags: tuple[str, bool, bool],
                                      command: list[str]) -> None:
    args = argparse.Namespace(argv=argv, container="", stdin=False, tty=False)
    split_command(args)
    assert (args.container, args.stdin, args.tty) == flags
    assert args.argv == command


def test_unknown_flags_before_the_double_dash() -> None:
    args = argparse.Namespace(argv=["--bogus", "--", "ls"], container="", stdin=False,
                              tty=False)
    with pytest.raises(UsageError, match="--bogus"):
        split_command(args)
