"""Discovery and join figures, on the namespace bed of tests/e2e/test_discovery.py.

    python tests/bench/bench_discovery.py [--rounds 5]

Prints, per round and as medians (no assertions): a `bramble master` in one namespace;
in another, a node process started with nothing but the join token; the time from that
process's start until it
- has seen the master on the LAN (mDNS browse + resolve),
- has joined (HMAC challenge, pinned credential) and read the Nodes with its credential.
Process start-up (Python imports) is included, as for a real agent. Needs root.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import socket
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bramble.master import pki  # noqa: E402
from tests.e2e.test_discovery import (  # noqa: E402
    last,
    netns_bed,
    pump,
    start_master,
    stop,
    wait_for,
)


def _stamp(log: str, pattern: str) -> float | None:
    m = re.search(r"time=(\S+)Z [^\n]*" + pattern, log)
    if not m:
        return None
    return datetime.fromisoformat(m.group(1) + "+00:00").timestamp()


async def one_round(base: Path) -> tuple[float, float]:
    with netns_bed(base) as bed:
        bed.add_host("m")
        bed.add_host("n")
        data = base / "master"
        data.mkdir(mode=0o700)
        token = pki.ensure_credentials(data, [socket.gethostname()], [bed.hosts["m"]],
                                       6443).join_token
        master = start_master(bed, "m", data, 6443)
        await wait_for("the master's announcement",
                       lambda: "advertising the master on the LAN" in master.stderr(), [master])
        started = time.time()
        node = bed.helper("n", "join", "pi-bench", str(base / "node"), token)
        reader = asyncio.create_task(pump(node))
        try:
            await wait_for("the join", lambda: last(node, "joined"), [node, master])
            joined = time.time() - started
            seen_at = _stamp(node.stderr(), 'msg="master seen on the LAN"')
            seen = (seen_at - started) if seen_at else float("nan")
        finally:
            for p in (node, master):
                stop(p)
            await asyncio.gather(reader, return_exceptions=True)
    return seen, joined


async def main(rounds: int) -> None:
    seen, joined = [], []
    for i in range(rounds):
        with tempfile.TemporaryDirectory(prefix="bench-discovery-") as tmp:
            s, j = await one_round(Path(tmp))
        seen.append(s)
        joined.append(j)
        print(f"round {i + 1}: master seen {s:.2f} s, joined {j:.2f} s after the node "
              f"process started", flush=True)
    print(f"median of {rounds}: master seen {statistics.median(seen):.2f} s, "
          f"joined {statistics.median(joined):.2f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(main(parser.parse_args().rounds))
