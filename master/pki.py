"""The master's security material, made on first start and reused after.

Layout in the data dir (mode 0700; every file in it 0600, written atomically):

    pki/ca.crt, pki/ca.key          cluster CA, ECDSA P-256, 10 years
    pki/server.crt, pki/server.key  the API server's certificate, signed by the CA
    pki/server.json                 what the server certificate was issued for (see below)
    tokens.json                     {sha256(token): {"user": ..., "groups": [...]}}
    join-token                      the cluster join token, in plain text
    admin.kubeconfig                kubectl/bramble config with the admin token

Invariants:
- The CA is never replaced silently: nodes and kubeconfigs pin it. A CA certificate
  without its key is an error a person must resolve.
- Only token hashes are kept in the token table; each plaintext lives in the one file
  that uses it (admin.kubeconfig, join-token). Deleting that file rotates the token on
  the next start. Node tokens (user "system:node:NAME") will go in the same table.
- The server certificate is re-issued (same CA) when it expires within 30 days or does
  not cover the current host names and addresses (a Pi's DHCP address changes).
  Validity is one year: short enough that a key copied off an SD card goes stale, long
  enough that any restart in the last month renews it. A master that runs for a year
  without a restart needs the daemon to call `ensure_credentials` again now and then
  (it is cheap when nothing changes) and reload `server_ssl_context`.
- `cryptography` costs ~14 MB of RSS, so it is imported only when material is created.
  Normal starts decide from pki/server.json (written last, removed first when
  re-issuing, so a crash mid-way means "re-issue", never a key that does not match).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
import ssl
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bramble import kubeconfig

CA_VALIDITY = timedelta(days=3650)
SERVER_VALIDITY = timedelta(days=365)
RENEW_BEFORE = timedelta(days=30)
# Certificates start a little in the past: nodes' clocks drift, and Pis have no RTC.
BACKDATE = timedelta(hours=1)
# A Pi boots with a clock from its last shutdown (or 1970) until NTP answers. A CA made
# then would carry wrong dates for ten years, so refuse instead.
EARLIEST_PLAUSIBLE_NOW = datetime(2025, 1, 1, tzinfo=UTC)

ADMIN = "admin"
ADMIN_GROUPS = ("system:masters",)
JOIN_USER = "system:bootstrap:bramble"
JOIN_GROUPS = ("system:bootstrappers",)

_CA_CERT, _CA_KEY = "pki/ca.crt", "pki/ca.key"
_SERVER_CERT, _SERVER_KEY, _SERVER_META = "pki/server.crt", "pki/server.key", "pki/server.json"
_TOKENS, _JOIN_TOKEN = "tokens.json", "join-token"


class PKIError(Exception):
    """Security material that cannot be created or trusted; the message says what to do."""


@dataclass(frozen=True)
class Identity:
    """Who a bearer token authenticates as."""

    user: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Credentials:
    ca_file: Path
    cert_file: Path
    key_file: Path
    ca_pem: str
    admin_token: str = field(repr=False)
    join_token: str = field(repr=False)
    kubeconfig_path: Path
    server_not_after: datetime
    server_dns_names: tuple[str, ...] = ()
    server_ip_addresses: tuple[str, ...] = ()

    def ca_fingerprint(self) -> str:
        """sha256 of the CA certificate (DER), hex: what a joining node checks."""
        return ca_fingerprint(self.ca_pem)


def ca_fingerprint(ca_pem: str) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(ca_pem)).hexdigest()


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def verify_token(presented: str, expected: str) -> bool:
    """Compare two tokens in time independent of where they differ."""
    return hmac.compare_digest(presented.encode(), expected.encode())


def load_token_table(data_dir: Path) -> dict[str, Identity]:
    """The token table, keyed by sha256(token) hex; empty if there is none yet."""
    path = Path(data_dir) / _TOKENS
    try:
        raw = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        raise PKIError(f"cannot read the token table {path}: {err}") from err
    if not isinstance(raw, dict):
        raise PKIError(f"the token table {path} is not a JSON object")
    table = {}
    for digest, entry in raw.items():
        if isinstance(entry, dict) and isinstance(entry.get("user"), str):
            table[digest] = Identity(entry["user"], tuple(entry.get("groups") or ()))
    return table


def authenticate(table: dict[str, Identity], presented: str) -> Identity | None:
    """Look a presented bearer token up by its hash (hashing first makes the lookup's
    timing say nothing about stored tokens)."""
    if not presented:
        return None
    return table.get(token_digest(presented))


def issue_token(data_dir: Path, identity: Identity, token: str | None = None) -> str:
    """Make a new token (or register `token`) for `identity`, replacing any token that
    user had."""
    table = load_token_table(data_dir)
    token = token or _new_token()
    table = {d: i for d, i in table.items() if i.user != identity.user}
    table[token_digest(token)] = identity
    _write_token_table(Path(data_dir), table)
    return token


def revoke_tokens(data_dir: Path, user: str) -> int:
    """Remove every token of `user`; returns how many there were."""
    table = load_token_table(data_dir)
    kept = {d: i for d, i in table.items() if i.user != user}
    if len(kept) != len(table):
        _write_token_table(Path(data_dir), kept)
    return len(table) - len(kept)


def rotate_join_token(data_dir: Path, token: str | None = None) -> str:
    """Replace the cluster join token (file and table entry) with a new one, or with
    `token` (64 hex digits: an SD card's bramble.toml carries the cluster's token before
    the master ever ran); returns it. Nodes that joined keep their own credentials; only
    new joins need the new token."""
    data_dir = Path(data_dir)
    if token is not None and (len(token) != 64 or token.strip("0123456789abcdef")):
        raise PKIError("a join token is 64 hex digits")
    token = issue_token(data_dir, Identity(JOIN_USER, JOIN_GROUPS), token)
    kubeconfig.atomic_write(data_dir / _JOIN_TOKEN, (token + "\n").encode())
    return token


def server_ssl_context(creds: Credentials) -> ssl.SSLContext:
    """The API server's TLS context. Calling `load_cert_chain` on it again after a
    re-issue switches new connections to the new certificate."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(creds.cert_file, creds.key_file)
    return ctx


def ensure_credentials(data_dir: Path, hostnames: list[str], addresses: list[str], port: int,
                       *, now: datetime | None = None) -> Credentials:
    """Create what is missing in `data_dir`, re-issue the server certificate if needed, and
    return paths and secrets. Idempotent; safe to call again while the master runs."""
    data_dir = Path(data_dir)
    now = now or datetime.now(UTC)
    _private_dir(data_dir)
    _private_dir(data_dir / "pki")

    ca_pem = _ensure_ca(data_dir, now)
    dns_names, ip_addresses = subject_alt_names(hostnames, addresses)
    meta = _ensure_server_cert(data_dir, ca_pem, dns_names, ip_addresses, now)

    join_token = _ensure_join_token(data_dir)
    kubeconfig_path = data_dir / kubeconfig.ADMIN_KUBECONFIG
    admin_token = _ensure_admin_kubeconfig(kubeconfig_path, data_dir, ca_pem, port)

    return Credentials(
        ca_file=data_dir / _CA_CERT,
        cert_file=data_dir / _SERVER_CERT,
        key_file=data_dir / _SERVER_KEY,
        ca_pem=ca_pem,
        admin_token=admin_token,
        join_token=join_token,
        kubeconfig_path=kubeconfig_path,
        server_not_after=datetime.fromisoformat(meta["not_after"]),
        server_dns_names=tuple(meta["dns"]),
        server_ip_addresses=tuple(meta["ips"]),
    )


def certificates_current(data_dir: Path, hostnames: list[str], addresses: list[str], *,
                         now: datetime | None = None) -> bool:
    """True when `ensure_credentials` would make no key or certificate (so it will not
    import `cryptography`). Cheap: reads only the small files."""
    data_dir = Path(data_dir)
    if not ((data_dir / _CA_CERT).exists() and (data_dir / _CA_KEY).exists()):
        return False
    meta = _read_meta(data_dir / _SERVER_META)
    if meta is None:
        return False
    dns_names, ip_addresses = subject_alt_names(hostnames, addresses)
    return not _needs_reissue(meta, (data_dir / _CA_CERT).read_text(), dns_names,
                              ip_addresses, now or datetime.now(UTC))


def subject_alt_names(hostnames: list[str], addresses: list[str]) -> tuple[list[str], list[str]]:
    """The names the server certificate must cover, deduplicated, in a stable order."""
    dns: list[str] = []
    ips: list[str] = []

    def add_ip(value: str) -> None:
        text = str(ipaddress.ip_address(value.split("%", 1)[0]))  # drop an IPv6 zone
        if text not in ips:
            ips.append(text)

    def add_dns(value: str) -> None:
        value = value.strip().rstrip(".").lower()
        if value and value not in dns:
            dns.append(value)

    for host in hostnames:
        try:
            add_ip(host)
            continue
        except ValueError:
            pass
        add_dns(host)
        short = host.strip().rstrip(".").lower()
        if short and "." not in short:
            add_dns(f"{short}.local")  # mDNS name a Pi answers to
    for name in ("bramble.local", "localhost"):
        add_dns(name)
    for address in addresses:
        try:
            add_ip(address)
        except ValueError as err:
            raise PKIError(f'"{address}" is not an IP address') from err
    for address in ("127.0.0.1", "::1"):
        add_ip(address)
    return dns, ips


# --- the pieces ---------------------------------------------------------------------------

def _ensure_ca(data_dir: Path, now: datetime) -> str:
    cert_path, key_path = data_dir / _CA_CERT, data_dir / _CA_KEY
    if cert_path.exists():
        if not key_path.exists():
            raise PKIError(
                f"{cert_path} exists but its key {key_path} is missing. Restore the key from a "
                f"backup, or remove {data_dir / 'pki'} to create a new cluster CA (every node "
                f"will have to join again and kubeconfigs will need replacing)")
        return cert_path.read_text()
    # A key without a certificate means a crash during the very first start: nothing can
    # have trusted that CA yet, so it is safe to make a new one.
    _check_clock(now)
    ca_key_pem, ca_cert_pem = _make_ca(now)
    kubeconfig.atomic_write(key_path, ca_key_pem)
    kubeconfig.atomic_write(cert_path, ca_cert_pem)
    return ca_cert_pem.decode()


def _ensure_server_cert(data_dir: Path, ca_pem: str, dns_names: list[str],
                        ip_addresses: list[str], now: datetime) -> dict[str, Any]:
    meta_path = data_dir / _SERVER_META
    meta = _read_meta(meta_path)
    if meta is not None and not _needs_reissue(meta, ca_pem, dns_names, ip_addresses, now):
        return meta
    _check_clock(now)
    # Remove the record first: a crash below then means "re-issue", whatever was written.
    try:
        meta_path.unlink()
    except FileNotFoundError:
        pass
    key_pem, cert_pem, not_after = _make_server_cert(data_dir, dns_names, ip_addresses, now)
    kubeconfig.atomic_write(data_dir / _SERVER_KEY, key_pem)
    kubeconfig.atomic_write(data_dir / _SERVER_CERT, cert_pem)
    meta = {"not_after": not_after.isoformat(), "dns": dns_names, "ips": ip_addresses,
            "ca_sha256": ca_fingerprint(ca_pem)}
    kubeconfig.atomic_write(meta_path, json.dumps(meta, indent=2).encode())
    return meta


def _read_meta(path: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads(path.read_bytes())
        datetime.fromisoformat(meta["not_after"])
        if not (isinstance(meta["dns"], list) and isinstance(meta["ips"], list)):
            return None
        if not ((path.parent / "server.crt").exists() and (path.parent / "server.key").exists()):
            return None
        return meta
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _needs_reissue(meta: dict[str, Any], ca_pem: str, dns_names: list[str],
                   ip_addresses: list[str], now: datetime) -> bool:
    if meta.get("ca_sha256") != ca_fingerprint(ca_pem):
        return True
    if datetime.fromisoformat(meta["not_after"]) - now < RENEW_BEFORE:
        return True
    return not (set(dns_names) <= set(meta["dns"]) and set(ip_addresses) <= set(meta["ips"]))


def _ensure_join_token(data_dir: Path) -> str:
    path = data_dir / _JOIN_TOKEN
    table = load_token_table(data_dir)
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        token = ""
    known = authenticate(table, token)
    if token and known is not None and known.user == JOIN_USER:
        return token
    token = issue_token(data_dir, Identity(JOIN_USER, JOIN_GROUPS))
    kubeconfig.atomic_write(path, (token + "\n").encode())
    return token


def _ensure_admin_kubeconfig(path: Path, data_dir: Path, ca_pem: str, port: int) -> str:
    server = f"https://127.0.0.1:{port}"
    table = load_token_table(data_dir)
    current = None
    if path.exists():
        try:
            current = kubeconfig.load(path)
        except kubeconfig.KubeconfigError:
            current = None  # unreadable or edited into nonsense: write a fresh one
    token = current.token if current is not None else None
    known = authenticate(table, token or "")
    if token is None or known is None or known.user != ADMIN:
        token = issue_token(data_dir, Identity(ADMIN, ADMIN_GROUPS))
    elif (current is not None and current.server == server
          and current.ca_data is not None and current.ca_data.decode().strip() == ca_pem.strip()):
        return token
    kubeconfig.write(path, kubeconfig.build(server, ca_pem, token))
    return token


def _write_token_table(data_dir: Path, table: dict[str, Identity]) -> None:
    raw = {d: {"user": i.user, "groups": list(i.groups)} for d, i in table.items()}
    kubeconfig.atomic_write(data_dir / _TOKENS, json.dumps(raw, indent=2).encode())


def _new_token() -> str:
    # 256 bits as hex: people paste tokens into command lines and config files, and a
    # urlsafe-base64 token starting with "-" reads as an option (`--token -x...`).
    return secrets.token_hex(32)


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)


def _check_clock(now: datetime) -> None:
    if now < EARLIEST_PLAUSIBLE_NOW:
        raise PKIError(
            f"the system clock says {now:%Y-%m-%d %H:%M} UTC, which cannot be right; "
            f"certificates made now would carry wrong dates. Wait for NTP "
            f"(`timedatectl status` shows 'System clock synchronized: yes') or set the time, "
            f"then start again")


# --- certificate making (the only code that needs `cryptography`) -------------------------

def _make_ca(now: datetime) -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bramble-ca")])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True,
            content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def _make_server_cert(data_dir: Path, dns_names: list[str], ip_addresses: list[str],
                      now: datetime) -> tuple[bytes, bytes, datetime]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_cert = x509.load_pem_x509_certificate((data_dir / _CA_CERT).read_bytes())
    ca_key = serialization.load_pem_private_key((data_dir / _CA_KEY).read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise PKIError(f"{data_dir / _CA_KEY} is not an ECDSA key")

    key = ec.generate_private_key(ec.SECP256R1())
    not_after = min(now + SERVER_VALIDITY, ca_cert.not_valid_after_utc)
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bramble-master")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=False, crl_sign=False,
            content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM), not_after


def _main(argv: list[str]) -> int:
    """`python -m bramble.master.pki DATA_DIR PORT HOSTNAMES_JSON ADDRESSES_JSON`: make
    what is missing. The master runs this as a child process so that the ~14 MB of
    `cryptography` never stays in the long-running daemon."""
    data_dir, port, hostnames, addresses = argv
    try:
        ensure_credentials(Path(data_dir), json.loads(hostnames), json.loads(addresses),
                           int(port))
    except PKIError as err:
        print(err, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
