"""The join handshake's cryptography, shared by the master and the node agent (pure).

Joining with the cluster's join token (node/join.py is the node's side, master/api/joinapi.py
the master's): the token itself never crosses the network. Both sides prove they hold it
with an HMAC-SHA256 keyed by the token over one transcript:

    node -> master   node name, node nonce                       (TLS not yet verified)
    master -> node   master nonce, CA certificate, master proof
    node             checks the master proof; from now on TLS is pinned to that CA
    node -> master   node proof                                  (pinned TLS)
    master -> node   the node's own credential                   (pinned TLS)

The transcript binds both nonces (no replay: the master's nonce is used once, the node's
is fresh), the node's name and the SHA-256 of the CA the master sent. Binding the CA is
what stops a rogue master that relays the exchange to the real one: it gets a valid proof
only for the real CA, whose key it does not hold, so the pinned connection fails. The role
label differs per side, so neither side's proof can be reflected back as the other's.

A node without the token asks to join as "pending". Its request carries sha256(secret) of
a random secret only it knows; the master lists it with `pending_fingerprint` over (node
name, key, CA) and the node prints the same fingerprint computed over the CA *it* saw. A
person who approves only matching fingerprints has checked both directions at once: the
node's key reached this master, and the node pinned this master's CA. 60 bits keeps it
short to compare yet out of reach of grinding a colliding key or CA.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

# The master's public join endpoints (no bearer token: the proofs are the credentials).
CHALLENGE_PATH = "/bramble/v1/join/challenge"
JOIN_PATH = "/bramble/v1/join"
REQUEST_PATH = "/bramble/v1/join/request"

VERSION = b"bramble-join-v1"
MASTER = "master"
NODE = "node"
NONCE_BYTES = 32
_HEX64 = re.compile(r"[0-9a-f]{64}")


def new_nonce() -> str:
    return secrets.token_hex(NONCE_BYTES)


def new_secret() -> str:
    """A pending node's secret (its sha256 is the key the master records)."""
    return secrets.token_hex(32)


def is_hex64(value: object) -> bool:
    """A 32-byte value as 64 lowercase hex digits (nonces, keys, fingerprints)."""
    return isinstance(value, str) and _HEX64.fullmatch(value) is not None


def normalize_sha256(text: str) -> str:
    """A SHA-256 fingerprint as given by a person ("AB:CD:..." or upper case) -> hex."""
    return text.strip().lower().replace(":", "")


def key_of(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Transcript:
    """What both proofs cover."""

    node: str
    node_nonce: str
    master_nonce: str
    ca_sha256: str

    def message(self, role: str) -> bytes:
        parts = (VERSION, role.encode(), self.node.encode(), self.node_nonce.encode(),
                 self.master_nonce.encode(), normalize_sha256(self.ca_sha256).encode())
        # NUL cannot occur in any part (names, hex), so the encoding is unambiguous.
        return b"\0".join(parts)


def prove(token: str, transcript: Transcript, role: str) -> str:
    return hmac.new(token.encode(), transcript.message(role), hashlib.sha256).hexdigest()


def verify(token: str, transcript: Transcript, role: str, proof: object) -> bool:
    if not isinstance(proof, str):
        return False
    return hmac.compare_digest(prove(token, transcript, role).encode(), proof.encode())


def pending_fingerprint(node: str, key: str, ca_sha256: str) -> str:
    """The short code a person compares: 12 base32 characters (60 bits) in groups of 4."""
    digest = hashlib.sha256(b"\0".join((b"bramble-pending-v1", node.encode(), key.encode(),
                                        normalize_sha256(ca_sha256).encode()))).digest()
    code = base64.b32encode(digest[:10]).decode()[:12]
    return "-".join(code[i:i + 4] for i in range(0, 12, 4))


def same_fingerprint(a: str, b: str) -> bool:
    """Compare codes as people type them: case, spaces and dashes do not matter."""
    def norm(s: str) -> str:
        return re.sub(r"[\s-]", "", s).upper()
    return hmac.compare_digest(norm(a).encode(), norm(b).encode())
