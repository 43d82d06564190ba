"""One side of an mDNS test, run as a process inside a test network namespace.

    python -m tests.e2e.mdns_helper master-mdns BIND CA_SHA256 PORT
        advertise a master (master/discovery.py) and print the node agents it sees
    python -m tests.e2e.mdns_helper node-mdns NAME
        advertise a node and print the masters it finds (node/discovery.py), and what
        bramble.local resolves to
    python -m tests.e2e.mdns_helper join NAME DATA_DIR [TOKEN]
        find the master on the LAN and join it (node/join.py), then read Nodes with the
        new credential

Each prints JSON lines on stdout ({"event": ...}); logs go to stderr. SIGTERM stops it
the way the agent stops (goodbyes sent, sockets closed).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from bramble import kubeconfig, mdns
from bramble.client import Client
from bramble.log import LogfmtFormatter


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


async def master_mdns(bind: str, ca_sha256: str, port: str, stop: asyncio.Event) -> None:
    from bramble.master import discovery

    class Seen(discovery.SeenNodes):
        def record(self, instance: str, resolved: mdns.Resolved | None) -> None:
            super().record(instance, resolved)
            emit("nodes", nodes=[s.as_json() for s in self.items()])

    task = asyncio.create_task(discovery.run(discovery.Advertisement(
        api_port=int(port), ca_sha256=ca_sha256, bind=bind), Seen()), name="mdns")
    await stop.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def node_mdns(name: str, stop: asyncio.Event) -> None:
    from zeroconf import AddressResolver

    from bramble.node.discovery import NodeDiscovery, lan_choice

    d = NodeDiscovery(name, lan_choice(), port=10250)
    await d.start()
    try:
        resolver = AddressResolver(mdns.HOST_NAME)
        if await resolver.async_request(d._responder._zc.zeroconf, 3000):  # type: ignore[union-attr]  # noqa: SLF001
            emit("host", addresses=resolver.parsed_scoped_addresses())
        while not stop.is_set():
            emit("masters", masters=[{"cluster": m.cluster, "api_port": m.api_port,
                                      "ca_sha256": m.ca_sha256, "urls": m.urls()}
                                     for m in d.masters()])
            waiter = asyncio.create_task(stop.wait())
            changed = asyncio.create_task(d.changed.wait())
            await asyncio.wait({waiter, changed}, return_when=asyncio.FIRST_COMPLETED)
            for t in (waiter, changed):
                t.cancel()
    finally:
        await d.aclose()


async def join(name: str, data_dir: str, token: str, stop: asyncio.Event) -> None:
    from bramble.node import join as joinmod

    async with AsyncExitStack() as stack:
        path = await joinmod.connect("", token, name, Path(data_dir), stack)
        cfg = kubeconfig.load(path)
        async with Client(cfg) as client:
            nodes = await client.request("GET", "/api/v1/nodes")
        emit("joined", server=cfg.server, nodes=len(nodes.get("items") or []))
        await stop.wait()


async def main(argv: list[str]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    action, *args = argv
    if action == "master-mdns":
        await master_mdns(*args, stop=stop)
    elif action == "node-mdns":
        await node_mdns(*args, stop=stop)
    elif action == "join":
        await join(args[0], args[1], args[2] if len(args) > 2 else "", stop)
    else:
        raise SystemExit(f"unknown action {action}")


if __name__ == "__main__":
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    logging.getLogger().handlers[:] = [handler]
    logging.getLogger().setLevel(logging.INFO)
    asyncio.run(main(sys.argv[1:]))
