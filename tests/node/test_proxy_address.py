"""address.ensure_address/remove_address on a real dummy link - inside a throwaway network
namespace, never the host's network. Needs root and iproute2 (skipped otherwise).

The functions run in a child process started with `ip netns exec`, which binds and
connects to the ClusterIP there: proof that the address is local inside that namespace.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import uuid

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                                reason="needs root and iproute2 for a network namespace")

CHILD = textwrap.dedent("""
    import asyncio, socket, subprocess
    from bramble.node.proxy.address import LINK, ensure_address, remove_address

    def addrs(link):
        out = subprocess.run(["ip", "-o", "-4", "addr", "show", "dev", link],
                             capture_output=True, text=True, check=True).stdout
        return sorted(line.split()[3] for line in out.splitlines() if " 10.43." in line)

    async def main():
        link = await ensure_address("10.43.7.7")
        assert link in (LINK, "lo"), link  # lo only on kernels without the dummy driver
        assert await ensure_address("10.43.7.7") == link   # idempotent
        await ensure_address("10.43.7.8")                   # the link exists already
        assert addrs(link) == ["10.43.7.7/32", "10.43.7.8/32"], addrs(link)
        with socket.socket() as server:
            server.bind(("10.43.7.7", 80))
            server.listen()
            with socket.create_connection(("10.43.7.7", 80), timeout=5):
                conn, _ = server.accept()
                conn.close()
        await remove_address("10.43.7.7")
        await remove_address("10.43.7.7")   # already gone: fine
        await remove_address("10.43.7.99", link="nosuchlink0")  # no link: fine
        assert addrs(link) == ["10.43.7.8/32"], addrs(link)
        print(link)

    asyncio.run(main())
""")


@pytest.fixture
def netns():
    name = f"bpx-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True)
    assert name not in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                      text=True).stdout


def test_cluster_ips_on_the_dummy_link(netns):
    result = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", CHILD],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() in ("bramble0", "lo")


def test_bad_address_is_an_address_error():
    import asyncio

    from bramble.node.proxy.address import ensure_address
    from bramble.node.proxy.errors import AddressError

    with pytest.raises(AddressError, match="not an IP address"):
        asyncio.run(ensure_address("10.43.7.300"))
