"""The systemd units: each parses, and carries what the daemons and the image rely on.

`systemd-analyze verify` (when present) checks them as systemd reads them; the only
complaint accepted is the missing /opt/bramble venv, which exists only on a Pi.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import pytest

DAEMONS = ("bramble-master.service", "bramble-node.service", "bramble-up.service")
FIRSTBOOT = "bramble-firstboot.service"


def _text(name: str) -> str:
    return resources.files("bramble.systemd").joinpath(name).read_text()


def _parse(name: str) -> configparser.ConfigParser:
    # strict=False: systemd allows repeated keys; keys are case-sensitive.
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(_text(name))
    return parser


@pytest.mark.parametrize("name", DAEMONS)
def test_daemon_units(name: str) -> None:
    unit = _parse(name)
    s = unit["Service"]
    assert s["Type"] == "notify" and s["NotifyAccess"] == "main"
    assert int(s["WatchdogSec"]) >= 10
    assert s["Restart"] == "always"
    assert int(unit["Unit"]["StartLimitBurst"]) > 1 and unit["Unit"]["StartLimitIntervalSec"]
    for target in ("network-online.target", "time-sync.target"):
        assert target in unit["Unit"]["After"].split() and target in unit["Unit"]["Wants"].split()
    assert "bramble-firstboot.service" in unit["Unit"]["After"].split()
    assert int(s["LimitNOFILE"]) >= 65536
    assert s["StandardOutput"] == s["StandardError"] == "journal"
    assert s["ExecStart"].startswith("/opt/bramble/venv/bin/bramble ")
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    assert "PrivateNetwork" not in s
    # Only one role runs on a Pi.
    others = set(DAEMONS) - {name}
    assert set(unit["Unit"]["Conflicts"].split()) == others


@pytest.mark.parametrize("name", ["bramble-node.service", "bramble-up.service"])
def test_pod_running_units_keep_pods_and_podman_working(name: str) -> None:
    s = _parse(name)["Service"]
    assert s["KillMode"] == "process"  # pods outlive the agent
    assert s["Delegate"] == "yes"
    assert s["TasksMax"] == "infinity"
    # No own mount namespace, no capability or namespace limits: Podman needs them.
    for option in ("ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices",
                   "ReadWritePaths", "CapabilityBoundingSet", "RestrictNamespaces",
                   "NoNewPrivileges", "SystemCallFilter", "ProtectKernelTunables",
                   "RestrictAddressFamilies", "ProtectControlGroups"):
        assert option not in s, option


def test_master_is_sandboxed() -> None:
    s = _parse("bramble-master.service")["Service"]
    assert s["ProtectSystem"] == "strict" and s["ReadWritePaths"] == "/var/lib/bramble"
    assert s["NoNewPrivileges"] == "yes"
    assert set(s["RestrictAddressFamilies"].split()) >= {"AF_UNIX", "AF_INET", "AF_INET6"}


def test_firstboot_unit() -> None:
    unit = _parse(FIRSTBOOT)
    s = unit["Service"]
    assert s["Type"] == "oneshot" and s["RemainAfterExit"] == "yes"
    assert s["ExecStart"] == "/usr/lib/bramble/firstboot"
    assert unit["Unit"]["ConditionPathExists"] == "!/var/lib/bramble/firstboot.done"
    assert "/boot/firmware" in unit["Unit"]["RequiresMountsFor"].split()
    assert set(unit["Unit"]["Before"].split()) == set(DAEMONS)
    assert "PARTUUID" not in _text(FIRSTBOOT).replace("No PARTUUID", "")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    names = [*DAEMONS, FIRSTBOOT]
    for name in names:
        (tmp_path / name).write_text(_text(name))
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *(str(tmp_path / n) for n in names)],
        capture_output=True, text=True, env={"SYSTEMD_LOG_LEVEL": "notice", "PATH": "/usr/bin:/bin"},
        check=False)
    problems = [line for line in (proc.stdout + proc.stderr).splitlines()
                if line.strip() and "is not executable: No such file" not in line]
    assert problems == []


def test_the_node_takes_its_join_token_from_the_environment(monkeypatch) -> None:
    # First boot writes BRAMBLE_JOIN_TOKEN into the unit's EnvironmentFile (0600), so the
    # token never shows on the command line that every user can read in /proc.
    from bramble.cli.main import build_parser

    monkeypatch.setenv("BRAMBLE_JOIN_TOKEN", "ab" * 32)
    assert build_parser().parse_args(["node"]).token == "ab" * 32
    assert build_parser().parse_args(["node", "--token", "cd" * 32]).token == "cd" * 32
    monkeypatch.delenv("BRAMBLE_JOIN_TOKEN")
    assert build_parser().parse_args(["node"]).token == ""
