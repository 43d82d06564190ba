"""The master's security material: made once, reused, re-issued when it must be."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import ssl
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bramble import kubeconfig
from bramble.master import pki

HOSTS, ADDRS, PORT = ["pi1"], ["192.168.1.10"], 6443


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "master"


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_first_start_creates_private_files(data_dir: Path) -> None:
    creds = pki.ensure_credentials(data_dir, HOSTS, ADDRS, PORT)
    assert mode(data_dir) == 0o700
    assert mode(data_dir / "pki") == 0o700
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"ca.crt", "ca.key", "server.crt", "server.key",
                                       "tokens.json", "join-token", "admin.kubeconfig"}
    for p in files:
        assert mode(p) == 0o600, p
    assert not [p for p in files if ".tmp" in p.name]
    assert creds.ca_file.read_text() == creds.ca_pem
    assert creds.admin_token and creds.join_token and creds.admin_token != creds.join_token
    assert len(creds.ca_fingerprint()) == 64
    assert "pi1.local" in creds.server_dns_names and "::1" in creds.server_ip_addresses


def test_loose_data_dir_is_tightened(data_dir: Path) -> None:
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    pki.ensure_credentials(data_dir, HOSTS, ADDRS, PORT)
    assert mode(data_dir) == 0o700


def test_second_start_reuses_everything(data_dir: Path) -> None:
    first = pki.ensure_credentials(data_dir, HOSTS, ADDRS, PORT)
    snapshot = {p: p.read_bytes() for p in data_dir.rglob("*") if p.is_file()}
    second = pki.ensure_credentials(data_dir, HOSTS, ADDRS, PORT)
    assert second == first
    assert second.admin_token == first.admin_token and second.join_token == first.join_token
    assert {p: p.read_bytes() for p in data_dir.rglob("*") if p.is_file()} == snapshot


def test_later_starts_do_not_load_cryptography(data_dir: Path) -> None:
    pki.ensure_credentials(data_dir, HOSTS, ADDRS, PORT)
    code = ("import sys; from pathlib import Path; from bramble.master import pki; "
            f"pki.ensure_credentials(Path({str(data_dir)!r}), {HOSTS!r}, {ADDRS!r}, {PORT}); "
            "print(any(m.startswith('cryptography') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


def test_new_address_reissues_the_server_certificate(data_dir: Path) -> None:
    first = pki.ensure_credentials(data_dir, HOSTS, ADDRS, PORT)
    old_cert = first.cert_file.read_bytes()
    # The DHCP lease changed.
    second = pki.ensure_credentials(data_dir, HOSTS, ["192.168.1.23"], PORT)
    assert second.cert_file.read_bytes() != old_cert
    assert second.ca_pem == first.ca_pem and second.admin_token == first.admin_token
    assert "192.168.1.23" in second.server_ip_addresses
    assert "192.168.1.23" in san_ips(second.cert_file)
    # A new host name too.
    third = pki.ensure_credentials(data_dir, ["pi1", "cluster.example.org"], ["192.168.1.23"],
                                   PORT)
    assert "cluster.example.org" in third.server_dns_names
    assert "cluster.example.org.local" not in third.server_dns_names


def test_expiring_certificate_is_reissued(data_dir: Path) -> None:
    first = pki.ensure_credentials(data_dir, HOSTS, ADDRS, PORT)
    old_cert = first.cert_file.read_bytes()
    later = first.server_not_after - timedelta(days=40)
    assert pki.ensure_credentials(data_dir, HOSTS, ADDRS, PORT, now=later) == first
    soon = first.server_not_after - timedelta(days=10)
    renewed = pki.ensure_credentials(data_dir, HOSTS, ADDRS, PORT, now=soon)
    assert renewed.cert_file.read_bytes() != old_cert
    assert renewed.server_not_after > first.server_not_after


def test_crash_while_reissuing_means_reissue(data_dir: Path) -> None:
    creds = pki.ensure_credentials(data_dir, HOSTS, ADDRS, PORT)
    (data_dir / "pki" / "server.json").unlink()  # as if the last write never happened
    creds.key_file.write_bytes(b"torn")
    again = pki.ensure_credentials(data_dir, HOSTS, ADDRS, PORT)
    assert again.key_file.read_bytes() != b"torn"
    pki.server_ssl_context(again)  # key and certificate match


def san_ips(cert_file: Path) -> list[str]:
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)]


def test_certificate_chain_verifies(data_dir: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    creds = pki.ensure_credentials(data_dir, HOSTS, ADDRS, PORT)
    ca = x509.load_pem_x509_certificate(creds.ca_pem.encode())
    server = x509.load_pem_x509_certificate(creds.cert_file.read_bytes())
    server.verify_directly_issued_by(ca)
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.not_valid_after_utc - ca.not_valid_before_utc > timedelta(days=3649)
    assert server.not_valid_after_utc - server.not_valid_before_utc <= timedelta(days=366)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == {"pi1", "pi1.local", "bramble.local",
                                                            "localhost"}
    assert set(san_ips(creds.cert_file)) == {"192.168.1.10", "127.0.0.1", "::1"}


@pytest.mark.parametrize("server_name", ["127.0.0.1", "localhost", "pi1.local"])
async def test_tls_handshake_pins_the_ca(data_dir: Path, server_name: str) -> None:
    creds = pki.ensure_credentials(data_dir, HOSTS, ADDRS, PORT)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=pki.server_ssl_context(creds))
    port = server.sockets[0].getsockname()[1]
    try:
        client_ctx = ssl.create_default_context(cadata=creds.ca_pem)
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx,
                                                       server_hostname=server_name)
        assert await reader.read() == b"hello"
        writer.close()
        # Another CA's client refuses the certificate.
        other = pki.ensure_credentials(data_dir.parent / "other", HOSTS, ADDRS, PORT)
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.open_connection(
                "127.0.0.1", port, ssl=ssl.create_default_context(cadata=other.ca_pem),
                server_hostname=server_name)
    finally:
        server.close()
        await server.wait_closed()


def test_admin_kubeconfig_loads(data_dir: Path) -> None:
    creds = pki.ensure_credentials(data_dir, HOSTS, ADDRS, 7443)
    cfg = kubeconfig.load(creds.kubeconfig_path)
    assert cfg.server == "https://127.0.0.1:7443"
    assert cfg.token == creds.admin_token
    assert cfg.ca_data is not None and cfg.ca_data.decode() == creds.ca_pem
    assert cfg.context == "bramble" and not cfg.insecure


def test_kubectl_reads_the_admin_kubeconfig(data_dir: Path) -> None:
    kubectl = Path(sys.executable).parent / "kubectl"
    if not kubectl.exists():
        kubectl = Path(shutil.which("kubectl") or "/nonexistent")
    if not kubectl.exists():
        pytest.skip("kubectl is not installed")
    creds = pki.ensure_credentials(data_dir, HOSTS, ADDRS, PORT)
    out = subprocess.run(
        [str(kubectl), "config", "view", "--kubeconfig", str(creds.kubeconfig_path), "--raw",
         "--minify", "-o", "json"], capture_output=True, text=True, check=True).stdout
    view = json.loads(out)
    assert view["current-context"] == "bramble"
    assert view["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"
    assert view["users"][0]["user"]["token"] == creds.admin_token


def test_port_change_rewrites_the_kubeconfig_keeping_the_token(data_dir: Path) -> None:
    first = pki.ensure_credentials(data_dir, HOSTS, ADDRS, 6443)
    second = pki.ensure_credentials(data_dir, HOSTS, ADDRS, 7443)
    assert second.admin_token == first.admin_token
    assert kubeconfig.load(second.kubeconfig_path).server == "https://127.0.0.1:7443"


def test_token_table_authenticates_by_hash(data_dir: Path) -> None:
    creds = pki.ensure_credentials(data_dir, HOSTS, ADDRS, PORT)
    table = pki.load_token_table(data_dir)
    raw = (data_dir / "tokens.json").read_text()
    assert creds.admin_token not in raw and creds.join_token not in raw
    assert pki.authenticate(table, creds.admin_token) == pki.Identity("admin",
                                                                      ("system:masters",))
    joined = pki.authenticate(table, creds.join_token)
    assert joined is not None and joined.groups == ("system:bootstrappers",)
    assert pki.authenticate(table, "wrong") is None
    assert pki.authenticate(table, "") is None
    assert pki.verify_token(creds.admin_token, creds.admin_token)
    assert not pki.verify_token(creds.admin_token, creds.join_token)


def test_tokens_are_safe_on_a_command_line(data_dir: Path) -> None:
    # A urlsafe-base64 token began with "-" one time in 64, and `bramble node --token
    # -abc...` then failed with "expected one argument" (found by the multi-host bed).
    creds = pki.ensure_credentials(data_dir, HOSTS, ADDRS, PORT)
    tokens = [creds.admin_token, creds.join_token, pki.rotate_join_token(data_dir)]
    tokens += [pki.issue_token(data_dir, pki.Identity(f"system:node:pi{i}", ()))
               for i in range(50)]
    for token in tokens:
        assert len(token) == 64 and set(token) <= set("0123456789abcdef"), token


def test_node_tokens_share_the_table(data_dir: Path) -> None:
    creds = pki.ensure_credentials(data_dir, HOSTS, ADDRS, PORT)
    node = pki.Identity("system:node:pi2", ("system:nodes",))
    first = pki.issue_token(data_dir, node)
    second = pki.issue_token(data_dir, node)  # re-issuing replaces the old token
    table = pki.load_token_table(data_dir)
    assert pki.authenticate(table, first) is None
    assert pki.authenticate(table, second) == node
    assert pki.revoke_tokens(data_dir, "system:node:pi2") == 1
    assert pki.authenticate(pki.load_token_table(data_dir), second) is None
    assert pki.authenticate(pki.load_token_table(data_dir), creds.admin_token) is not None
    assert pki.ensure_credentials(data_dir, HOSTS, ADDRS, PORT) == creds


def test_deleting_a_token_file_rotates_that_token(data_dir: Path) -> None:
    first = pki.ensure_credentials(data_dir, HOSTS, ADDRS, PORT)
    first.kubeconfig_path.unlink()
    (data_dir / "join-token").unlink()
    second = pki.ensure_credentials(data_dir, HOSTS, ADDRS, PORT)
    table = pki.load_token_table(data_dir)
    assert second.admin_token != first.admin_token
    assert second.join_token != first.join_token
    assert pki.authenticate(table, first.admin_token) is None
    assert pki.authenticate(table, first.join_token) is None
    assert len(table) == 2
    assert second.ca_pem == first.ca_pem


def test_ca_certificate_without_key_is_refused(data_dir: Path) -> None:
    pki.ensure_credentials(data_dir, HOSTS, ADDRS, PORT)
    (data_dir / "pki" / "ca.key").unlink()
    with pytest.raises(pki.PKIError, match="ca.key is missing"):
        pki.ensure_credentials(data_dir, HOSTS, ADDRS, PORT)


def test_implausible_clock_is_refused(data_dir: Path) -> None:
    with pytest.raises(pki.PKIError, match="system clock"):
        pki.ensure_credentials(data_dir, HOSTS, ADDRS, PORT,
                               now=datetime(1970, 1, 1, 0, 1, tzinfo=UTC))
    assert not (data_dir / "pki" / "ca.crt").exists()


def test_bad_address_is_reported() -> None:
    with pytest.raises(pki.PKIError, match="not an IP address"):
        pki.subject_alt_names(["pi1"], ["300.1.1.1"])


def test_subject_alt_names() -> None:
    dns, ips = pki.subject_alt_names(["Pi1", "10.0.0.5"], ["fe80::1%eth0", "10.0.0.5"])
    assert dns == ["pi1", "pi1.local", "bramble.local", "localhost"]
    assert ips == ["10.0.0.5", "fe80::1", "127.0.0.1", "::1"]


def test_files_are_private_even_with_a_permissive_umask(data_dir: Path) -> None:
    old = os.umask(0)
    try:
        pki.ensure_credentials(data_dir, HOSTS, ADDRS, PORT)
    finally:
        os.umask(old)
    assert all(mode(p) == 0o600 for p in data_dir.rglob("*") if p.is_file())


def test_certificates_current_tells_when_nothing_needs_making(tmp_path: Path) -> None:
    data = tmp_path / "d"
    assert not pki.certificates_current(data, ["pi"], ["192.0.2.10"])
    pki.ensure_credentials(data, ["pi"], ["192.0.2.10"], 6443)
    assert pki.certificates_current(data, ["pi"], ["192.0.2.10"])
    # A new DHCP address must be in the certificate: re-issue needed.
    assert not pki.certificates_current(data, ["pi"], ["192.0.2.11"])


def test_credentials_made_by_the_child_process_entry_point(tmp_path: Path) -> None:
    data = tmp_path / "d"
    proc = subprocess.run([sys.executable, "-m", "bramble.master.pki", str(data), "6443",
                           '["pi"]', '["192.0.2.10"]'], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert pki.certificates_current(data, ["pi"], ["192.0.2.10"])
    assert (data / "admin.kubeconfig").stat().st_mode & 0o777 == 0o600
