"""The join handshake's proofs and the pending fingerprint (bramble/joinproof.py)."""

from __future__ import annotations

import pytest

from bramble import joinproof
from bramble.joinproof import MASTER, NODE, Transcript

T = Transcript("pi1", "a" * 64, "b" * 64, "c" * 64)


def test_both_sides_compute_the_same_proofs() -> None:
    for role in (MASTER, NODE):
        assert joinproof.verify("tok", T, role, joinproof.prove("tok", T, role))


@pytest.mark.parametrize(("token", "transcript", "role"), [
    ("other-token", T, NODE),  # the wrong token
    ("tok", Transcript("pi2", "a" * 64, "b" * 64, "c" * 64), NODE),  # another name
    ("tok", Transcript("pi1", "d" * 64, "b" * 64, "c" * 64), NODE),  # another node nonce
    ("tok", Transcript("pi1", "a" * 64, "d" * 64, "c" * 64), NODE),  # another challenge
    ("tok", Transcript("pi1", "a" * 64, "b" * 64, "d" * 64), NODE),  # another CA
    ("tok", T, MASTER),  # the master's proof is not the node's (no reflection)
])
def test_a_proof_covers_everything(token: str, transcript: Transcript, role: str) -> None:
    proof = joinproof.prove("tok", T, NODE)
    assert not joinproof.verify(token, transcript, role, proof)


def test_the_ca_fingerprint_is_compared_normalised() -> None:
    upper = Transcript("pi1", "a" * 64, "b" * 64, ":".join(["CC"] * 32))
    assert joinproof.verify("tok", upper, NODE, joinproof.prove("tok", T, NODE))


@pytest.mark.parametrize("proof", [None, 5, "", "zz", b"x"])
def test_junk_proofs_do_not_verify(proof: object) -> None:
    assert not joinproof.verify("tok", T, NODE, proof)


def test_nonces_and_keys() -> None:
    nonce = joinproof.new_nonce()
    assert joinproof.is_hex64(nonce) and nonce != joinproof.new_nonce()
    secret = joinproof.new_secret()
    assert joinproof.is_hex64(joinproof.key_of(secret))
    assert not joinproof.is_hex64("A" * 64)  # lower case only
    assert not joinproof.is_hex64("a" * 64 + "\n")  # the whole string, no trailing newline
    assert not joinproof.is_hex64(None)


def test_pending_fingerprint() -> None:
    code = joinproof.pending_fingerprint("pi4", "1" * 64, "2" * 64)
    # 12 base32 characters in three groups: 60 bits.
    assert len(code) == 14 and code.count("-") == 2
    assert code == joinproof.pending_fingerprint("pi4", "1" * 64, "2" * 64)
    # Any difference in name, key or CA changes it: a person comparing codes checks all.
    assert code != joinproof.pending_fingerprint("pi5", "1" * 64, "2" * 64)
    assert code != joinproof.pending_fingerprint("pi4", "3" * 64, "2" * 64)
    assert code != joinproof.pending_fingerprint("pi4", "1" * 64, "3" * 64)
    assert joinproof.same_fingerprint(code, code.lower().replace("-", " "))
    assert not joinproof.same_fingerprint(code, "AAAA-AAAA-AAAA")
