"""kill -9 the master during a stream of writes: every acknowledged write survives.

Sixteen clients create ConfigMaps as fast as the master acknowledges them; the master is
killed with SIGKILL mid-stream, three times, and restarted on the same data dir. After
each restart every acknowledged object is there, the file loads, and resourceVersions
keep increasing.
"""

from __future__ import annotations

import asyncio
import json
import signal
import ssl
from pathlib import Path

import aiohttp

from bramble.kubeconfig import load as load_kubeconfig
from tests.conftest import free_port, start_master_process, stop_process, wait_healthy

CMS = "/api/v1/namespaces/default/configmaps"


async def _writer(session: aiohttp.ClientSession, url: str, headers: dict, ctx: ssl.SSLContext,
                  prefix: str, acked: dict[str, int], enough: asyncio.Event) -> None:
    i = 0
    while True:
        name = f"{prefix}-{i}"
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                "data": {"n": str(i)}}
        try:
            async with session.post(url + CMS, json=body, headers=headers, ssl=ctx) as r:
                if r.status == 201:
                    acked[name] = int((await r.json())["metadata"]["resourceVersion"])
                    if len(acked) >= 150:
                        enough.set()
        except (TimeoutError, aiohttp.ClientError, OSError):
            return  # the master died under us: unacknowledged writes may be lost
        i += 1


async def _round(url: str, kubeconfig: Path, proc, round_no: int) -> dict[str, int]:
    cfg = load_kubeconfig(kubeconfig)
    ctx = ssl.create_default_context(cadata=cfg.ca_data.decode())
    headers = {"Authorization": f"Bearer {cfg.token}"}
    acked: dict[str, int] = {}
    enough = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        writers = [asyncio.create_task(_writer(session, url, headers, ctx,
                                               f"r{round_no}w{w}", acked, enough))
                   for w in range(16)]
        await asyncio.wait_for(enough.wait(), 60)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        await asyncio.gather(*writers)
    return acked


async def _list(url: str, kubeconfig: Path) -> tuple[dict[str, int], int]:
    cfg = load_kubeconfig(kubeconfig)
    ctx = ssl.create_default_context(cadata=cfg.ca_data.decode())
    async with aiohttp.ClientSession() as session:
        async with session.get(url + CMS, headers={"Authorization": f"Bearer {cfg.token}"},
                               ssl=ctx) as r:
            body = json.loads(await r.read())
    found = {i["metadata"]["name"]: int(i["metadata"]["resourceVersion"])
             for i in body["items"]}
    return found, int(body["metadata"]["resourceVersion"])


def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    data_dir = tmp_path / "master"
    data_dir.mkdir(mode=0o700)
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    kubeconfig = data_dir / "admin.kubeconfig"
    all_acked: dict[str, int] = {}
    highest = 0
    for round_no in range(3):
        proc = start_master_process(data_dir, port)
        wait_healthy(url, proc)
        found, list_rv = asyncio.run(_list(url, kubeconfig))
        missing = set(all_acked) - set(found)
        assert not missing, f"acknowledged writes lost after kill -9: {sorted(missing)[:5]}"
        assert list_rv >= highest
        acked = asyncio.run(_round(url, kubeconfig, proc, round_no))
        assert len(acked) >= 150
        assert min(acked.values()) > highest, "resourceVersions went backwards"
        all_acked.update(acked)
        highest = max(all_acked.values())
    proc = start_master_process(data_dir, port)
    try:
        wait_healthy(url, proc)
        found, _ = asyncio.run(_list(url, kubeconfig))
        assert set(all_acked) <= set(found)
        for name, rv in all_acked.items():
            assert found[name] == rv
    finally:
        assert stop_process(proc) == 0
