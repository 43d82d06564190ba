"""`bramble dashboard`: a one-time login link to the status page, for the phone.

Asks the master (POST /bramble/v1/dashboard/links, admins only) for a link that logs in
once within ten minutes, prints it and, unless --no-qr, draws it as a QR code in the
terminal (segno: pure Python) so the phone's camera can open it. The master's side is
master/web/routes.py.
"""

from __future__ import annotations

import argparse
import io

from .commands import Env

LINKS_PATH = "/bramble/v1/dashboard/links"


def qr_text(url: str) -> str:
    """The QR code of `url` as terminal text (two modules per character row)."""
    import segno  # imported here: only this command needs it

    out = io.StringIO()
    segno.make(url, error="l").terminal(out=out, compact=True)
    return out.getvalue()


async def dashboard(env: Env, args: argparse.Namespace) -> int:
    link = await env.api.request("POST", LINKS_PATH, json={})
    url, expires = link["url"], link.get("expiresAt", "")
    if not getattr(args, "no_qr", False):
        print(qr_text(url), end="", file=env.out)
    print(f"Open the status page (this link logs in once, until {expires}):\n{url}",
          file=env.out, flush=True)
    return 0
