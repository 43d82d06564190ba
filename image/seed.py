"""Run on the Pi by firstboot: make the token from bramble.toml the master's join token.

`python -m bramble.image.seed DATA_DIR` with the token on stdin (never in argv, which
other users can read). Idempotent: a master that already has this join token is left
alone; another join token is replaced (joined nodes keep their own credentials).
"""

from __future__ import annotations

import sys
from pathlib import Path

from bramble.master import pki


def seed(data_dir: Path, token: str) -> bool:
    """True when the join token changed."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    known = pki.authenticate(pki.load_token_table(data_dir), token)
    path = data_dir / "join-token"
    current = path.read_text().strip() if path.exists() else ""
    if known is not None and known.user == pki.JOIN_USER and current == token:
        return False
    pki.rotate_join_token(data_dir, token)
    return True


def main() -> int:
    token = sys.stdin.read().strip()
    if len(sys.argv) != 2 or not token:
        print("usage: python -m bramble.image.seed DATA_DIR < token", file=sys.stderr)
        return 2
    try:
        changed = seed(Path(sys.argv[1]), token)
    except pki.PKIError as err:
        print(f"cannot set the join token: {err}", file=sys.stderr)
        return 1
    print("join token set" if changed else "join token already set")
    return 0


if __name__ == "__main__":
    sys.exit(main())
