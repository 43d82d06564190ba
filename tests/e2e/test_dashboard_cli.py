"""`bramble dashboard` and `bramble master --dashboard-read-only-public` as processes: the
printed link logs a browser in once; the flag opens the view without a login."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from bramble.kubeconfig import load
from tests.conftest import (
    MasterHandle,
    free_port,
    start_master_process,
    stop_process,
    wait_healthy,
)

BRAMBLE = str(Path(sys.executable).parent / "bramble")


def dashboard(master: MasterHandle, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    proc = subprocess.run([BRAMBLE, "dashboard", "--kubeconfig", str(master.kubeconfig),
                           *args], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc


def get(master: MasterHandle, path: str,
        cookie: str = "") -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(master.url)
    conn = http.client.HTTPSConnection(parts.hostname or "", parts.port,
                                       context=master.ssl_context(), timeout=30)
    try:
        conn.request("GET", path, headers={"Cookie": cookie} if cookie else {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_dashboard_prints_a_one_time_link_and_its_qr_code(master_proc: MasterHandle) -> None:
    plain = dashboard(master_proc, "--no-qr").stdout
    url = plain.strip().splitlines()[-1]
    assert url.startswith(f"{master_proc.url}/web/v1/login/")
    assert "█" not in plain

    path = urlsplit(url).path
    status, headers, _ = get(master_proc, path)
    assert status == 303 and headers["location"] == "/"
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Strict" in cookie
    status, _, body = get(master_proc, "/web/v1/session", cookie.split(";")[0])
    assert json.loads(body)["authenticated"] is True
    # Used once: the second visit is told the link expired.
    status, headers, _ = get(master_proc, path)
    assert (status, headers["location"]) == (303, "/?login=expired")

    with_qr = dashboard(master_proc).stdout
    assert "█" in with_qr or "▀" in with_qr
    assert with_qr.strip().splitlines()[-1].startswith(f"{master_proc.url}/web/v1/login/")


def test_master_flag_opens_a_read_only_view(tmp_path: Path) -> None:
    data_dir = tmp_path / "master"
    data_dir.mkdir(mode=0o700)
    port = free_port()
    proc = start_master_process(data_dir, port, "--dashboard-read-only-public")
    try:
        master = MasterHandle(url=f"https://127.0.0.1:{port}", data_dir=data_dir,
                              kubeconfig=data_dir / "admin.kubeconfig", token="",
                              ca_file=tmp_path / "ca.pem")
        wait_healthy(master.url, proc)
        master.ca_file.write_bytes(load(master.kubeconfig).ca_data or b"")
        status, _, body = get(master, "/web/v1/session")
        assert json.loads(body) == {"authenticated": False, "readOnly": True}
        status, _, body = get(master, "/web/v1/view")
        assert status == 200
        assert json.loads(body)["session"] == {"csrf": "", "readOnly": True}
    finally:
        assert stop_process(proc) == 0
