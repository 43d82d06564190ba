"""`bramble up`: the master and a node agent on this machine, in one process.

The README's main job: one command gives a working one-Pi cluster. The node joins its
own master with the master's join token over loopback. Stopping (Ctrl-C, SIGTERM) stops
the node first - its pods keep running, to be adopted at the next start - then the
master, which commits what is staged before it exits.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from bramble.daemon import run_until_signal
from bramble.master.daemon import MasterConfig, Running
from bramble.master.daemon import serve as serve_master
from bramble.node.agent import NodeConfig
from bramble.node.agent import serve as serve_node

log = logging.getLogger("bramble.up")


async def serve(master: MasterConfig, node: NodeConfig,
                shutdown: asyncio.Event | None = None,
                started: asyncio.Future[Running] | None = None) -> None:
    """Run both until `shutdown`; `started` gets the master's Running once the node is up
    too (systemd's READY=1)."""
    shutdown = shutdown or asyncio.Event()
    master_stop, node_stop = asyncio.Event(), asyncio.Event()
    master_started: asyncio.Future[Running] = asyncio.get_running_loop().create_future()
    master_task = asyncio.create_task(serve_master(master, master_stop, master_started),
                                      name="master")
    done, _ = await asyncio.wait({master_task, master_started},
                                 return_when=asyncio.FIRST_COMPLETED)
    if master_task in done:
        master_task.result()  # the master failed to start: its error, as is
        return
    running = master_started.result()
    node = replace(node, master=running.url, token=running.credentials.join_token)
    node_started: asyncio.Future[object] = asyncio.get_running_loop().create_future()

    def node_up(future: asyncio.Future[object]) -> None:
        if (started is not None and not started.done() and not future.cancelled()
                and future.exception() is None):
            started.set_result(running)

    node_started.add_done_callback(node_up)
    node_task = asyncio.create_task(serve_node(node, node_stop, node_started), name="node")
    log.info("bramble is up", extra={"api": running.url,
                                     "kubeconfig": str(running.credentials.kubeconfig_path),
                                     "node": node.node_name})
    stop_wait = asyncio.create_task(shutdown.wait(), name="shutdown-trigger")
    done, _ = await asyncio.wait({master_task, node_task, stop_wait},
                                 return_when=asyncio.FIRST_COMPLETED)
    node_stop.set()
    await asyncio.gather(node_task, return_exceptions=True)
    master_stop.set()
    await asyncio.gather(master_task, return_exceptions=True)
    stop_wait.cancel()
    for task in (master_task, node_task):
        if task in done and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


def run(master: MasterConfig, node: NodeConfig) -> int:
    run_until_signal(lambda shutdown, started: serve(master, node, shutdown, started))
    return 0
