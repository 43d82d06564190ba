"""mDNS discovery and joining across "Pis" that are network namespaces on a bridge.

The bed: a bridge in a namespace of its own (the host's network is never touched) and
one namespace per host, each with a veth on the bridge and an address in 10.77.N.0/24,
and no multicast route (so nothing but the explicit interface choice makes mDNS work).
Each side runs as a process in its namespace (tests/e2e/netbed.py has the bed):
tests/e2e/mdns_helper.py for the discovery pieces, `bramble master` for masters, `bramble
nodes` for the CLI.

Teardown stops every process and deletes every namespace (which takes the veths and the
bridge with it); data dirs are under tmp_path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bramble.kubeconfig import build as build_kubeconfig
from bramble.kubeconfig import load as load_kubeconfig
from bramble.kubeconfig import write as write_kubeconfig
from bramble.master import pki
from tests.e2e.netbed import Bed, Proc, netns_bed, stop

TIMEOUT = 60.0  # a guard against hangs, never a speed expectation
CA = "ab" * 32

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                                reason="network namespaces need root and iproute2")


async def pump(proc: Proc) -> None:
    """Collect a process's JSON lines (off the event loop: a pipe read blocks)."""
    assert proc.popen.stdout is not None
    while True:
        line = await asyncio.to_thread(proc.popen.stdout.readline)
        if not line:
            return
        with contextlib.suppress(ValueError):
            proc.lines.append(json.loads(line))


async def wait_for(what: str, check: Callable[[], Any], procs: list[Proc]) -> Any:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        await asyncio.sleep(0.05)
    logs = "\n".join(f"--- {p.err_path.name}\n{p.stderr()[-3000:]}" for p in procs)
    raise AssertionError(f"timed out waiting for {what}\n{logs}")


def last(proc: Proc, event: str) -> dict[str, Any] | None:
    found = [line for line in proc.lines if line.get("event") == event]
    return found[-1] if found else None


async def test_master_and_node_agents_find_each_other(tmp_path: Path) -> None:
    with netns_bed(tmp_path) as bed:
        master_ip = bed.add_host("m")
        node_ip = bed.add_host("n1")
        master = bed.helper("m", "master-mdns", master_ip, CA, "6443")
        node = bed.helper("n1", "node-mdns", "pi-one")
        pumps = [asyncio.create_task(pump(p)) for p in (master, node)]
        try:
            # The node finds the master's API, cluster id and CA fingerprint...
            found = await wait_for("the node to see the master", lambda: (
                (last(node, "masters") or {}).get("masters")), [master, node])
            assert found == [{"cluster": CA[:16], "api_port": 6443, "ca_sha256": CA,
                              "urls": [f"https://{master_ip}:6443"]}]
            # ...bramble.local answers with the master's address...
            host = await wait_for("bramble.local", lambda: last(node, "host"), [node])
            assert host["addresses"] == [master_ip]
            # ...and the master sees the node agent, with no configuration on either side.
            seen = await wait_for("the master to see the node", lambda: (
                (last(master, "nodes") or {}).get("nodes")), [master, node])
            assert [(s["name"], s["state"], s["addresses"][0]) for s in seen] == \
                [("pi-one", "joining", node_ip)]
            # The node advertises IPv6 too (its link-local address); never loopback.
            assert all(a.startswith("fe80:") for a in seen[0]["addresses"][1:])
            # A node that stops says goodbye: the master forgets it (not a liveness signal;
            # a Pi losing power would linger until its records expire).
            stop(node)
            await wait_for("the goodbye", lambda: last(master, "nodes") == {
                "event": "nodes", "nodes": []}, [master])
        finally:
            for p in (master, node):
                stop(p)
            await asyncio.gather(*pumps, return_exceptions=True)


def start_master(bed: Bed, host: str, data_dir: Path, port: int) -> Proc:
    data_dir.mkdir(mode=0o700, exist_ok=True)
    return bed.run(host, sys.executable, "-m", "bramble", "master", "--data-dir",
                   str(data_dir), "--bind", bed.hosts[host], "--port", str(port))


@pytest.mark.slow  # two masters, three joins and the CLI: ~15 s
async def test_nodes_join_with_no_address_a_rogue_master_is_ignored_pending_is_approved(
        tmp_path: Path) -> None:
    with netns_bed(tmp_path) as bed:
        for host in ("m", "rogue", "n1", "n2"):
            bed.add_host(host)
        # A rogue master (a cluster of its own: another token and CA) is on the LAN first.
        rogue = start_master(bed, "rogue", tmp_path / "rogue", 6443)
        # The real cluster's token exists before its master runs (as on an SD-card image).
        real_dir = tmp_path / "real"
        real_dir.mkdir(mode=0o700)
        creds = pki.ensure_credentials(real_dir, [socket.gethostname()], [bed.hosts["m"]],
                                       6443)
        token = creds.join_token
        # The admin's kubeconfig, for the master's LAN address (it listens only there).
        kubeconfig = str(tmp_path / "admin.kubeconfig")
        write_kubeconfig(kubeconfig, build_kubeconfig(f"https://{bed.hosts['m']}:6443",
                                                      creds.ca_pem, creds.admin_token))
        real: Proc | None = None

        joiner = bed.helper("n1", "join", "pi-one", str(tmp_path / "n1"), token)
        pumps = [asyncio.create_task(pump(p)) for p in (joiner, rogue)]
        pending: Proc | None = None
        try:
            await wait_for("the rogue to be refused",
                           lambda: "ignoring a master on the LAN" in joiner.stderr(),
                           [joiner, rogue])
            assert "could not prove it holds this cluster's join token" in joiner.stderr()
            assert not (tmp_path / "n1" / "node.kubeconfig").exists()
            # The rogue admitted nobody. It goes (one cluster on the LAN for what follows).
            assert "node joined" not in rogue.stderr()
            stop(rogue)

            real = start_master(bed, "m", real_dir, 6443)
            joined = await wait_for("the join", lambda: last(joiner, "joined"),
                                    [joiner, real])
            assert joined["server"] == f"https://{bed.hosts['m']}:6443"
            cfg = load_kubeconfig(tmp_path / "n1" / "node.kubeconfig")
            assert cfg.ca_data is not None
            assert cfg.ca_data.decode().strip() == (real_dir / "pki" / "ca.crt").read_text(
                ).strip()  # pinned to the real master's CA

            # A node without the token: pending until a person approves its fingerprint.
            pending = bed.helper("n2", "join", "pi-two", str(tmp_path / "n2"))
            pumps.append(asyncio.create_task(pump(pending)))
            code = await wait_for("the node's fingerprint", lambda: (m := re.search(
                r"fingerprint=(\w{4}-\w{4}-\w{4})", pending.stderr())) and m.group(1),
                [pending])
            def listed() -> str | None:
                out = bed.bramble("m", "nodes", "--kubeconfig", kubeconfig)
                assert out.returncode == 0, out.stderr
                return out.stdout if "Pending" in out.stdout else None

            table = await wait_for("`bramble nodes` to list it", listed, [pending, real])
            row = next(line for line in table.splitlines() if line.startswith("pi-two"))
            assert row.split()[1:3] == ["Pending", code]
            approved = bed.bramble("m", "nodes", "approve", "pi-two", "--kubeconfig",
                                   kubeconfig)
            assert approved.returncode == 0, approved.stderr
            await wait_for("the approved join", lambda: last(pending, "joined"),
                           [pending, real])
            table = bed.bramble("m", "nodes", "--kubeconfig", kubeconfig).stdout
            assert "Pending" not in table, table
        finally:
            for p in [joiner, rogue, *([real] if real else []), *([pending] if pending else [])]:
                stop(p)
            await asyncio.gather(*pumps, return_exceptions=True)
