"""`bramble nodes` and `bramble token`: who is (or wants to be) a node of this cluster.

- `bramble nodes`: the Nodes, the nodes waiting for approval (with the fingerprint the
  node also prints), and node agents seen on the LAN that have not joined;
- `bramble nodes approve NAME [--fingerprint CODE]`, `bramble nodes remove NAME`;
- `bramble token rotate`: a new join token (the old one stops working for new joins).

The master's side is master/api/joinapi.py; these commands only format its answers.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from bramble.kube.errors import NotFound
from bramble.kube.printers import node_status, since

from .commands import Env, now
from .output import TabWriter

Obj = dict[str, Any]


def _internal_ip(node: Obj) -> str:
    for a in (node.get("status") or {}).get("addresses") or []:
        if a.get("type") == "InternalIP":
            return str(a.get("address", ""))
    return ""


def node_rows(nodes: list[Obj], pending: list[Obj], seen: list[Obj],
              when: datetime) -> list[list[str]]:
    """NAME STATUS FINGERPRINT ADDRESS AGE VERSION rows (pure): Nodes first, then pending
    requests, then agents seen on the LAN that are neither."""
    rows: list[list[str]] = []
    names: set[str] = set()
    for n in sorted(nodes, key=lambda n: n["metadata"]["name"]):
        name = n["metadata"]["name"]
        names.add(name)
        info = (n.get("status") or {}).get("nodeInfo") or {}
        rows.append([name, node_status(n), "", _internal_ip(n) or "<none>",
                     since(n["metadata"].get("creationTimestamp"), when),
                     info.get("kubeletVersion") or "<none>"])
    for p in sorted(pending, key=lambda p: (p.get("name", ""), p.get("requested", ""))):
        names.add(p.get("name", ""))
        rows.append([p.get("name", ""), "Approved" if p.get("approved") else "Pending",
                     p.get("fingerprint", ""), p.get("peer") or "<none>",
                     since(p.get("requested"), when), "<none>"])
    for s in sorted(seen, key=lambda s: s.get("name", "")):
        if s.get("name") in names:
            continue
        names.add(s.get("name", ""))
        addresses = s.get("addresses") or []
        rows.append([s.get("name", ""), "Discovered", "", addresses[0] if addresses else
                     "<none>", since(s.get("firstSeen"), when), s.get("version") or "<none>"])
    return rows


async def _optional(env: Env, path: str) -> list[Obj]:
    try:
        body = await env.api.request("GET", path)
    except NotFound:  # an older master, or joining disabled
        return []
    return list((body or {}).get("items") or [])


async def nodes(env: Env, args: argparse.Namespace) -> int:
    action = getattr(args, "nodes_action", None)
    if action == "approve":
        fingerprint = getattr(args, "fingerprint", "") or ""
        approved = await env.api.request(
            "POST", f"/bramble/v1/pending-nodes/{args.name}/approve",
            json={"fingerprint": fingerprint} if fingerprint else {})
        print(f"node/{args.name} approved (fingerprint {approved.get('fingerprint', '')}): "
              f"it joins at its next poll", file=env.out, flush=True)
        return 0
    if action == "remove":
        removed = await env.api.request("DELETE", f"/bramble/v1/nodes/{args.name}")
        what = []
        if removed.get("credentialsRevoked"):
            what.append("credential revoked")
        if removed.get("nodeDeleted"):
            what.append("Node deleted")
        if removed.get("requestsDropped"):
            what.append("join requests dropped")
        print(f"node/{args.name} removed ({', '.join(what) or 'nothing left'})",
              file=env.out, flush=True)
        return 0
    body = await env.api.request("GET", "/api/v1/nodes")
    rows = node_rows(list(body.get("items") or []),
                     await _optional(env, "/bramble/v1/pending-nodes"),
                     await _optional(env, "/bramble/v1/discovered-nodes"), now())
    if not rows:
        env.error("No nodes found.")
        return 0
    tw = TabWriter()
    tw.row(["NAME", "STATUS", "FINGERPRINT", "ADDRESS", "AGE", "VERSION"])
    for row in rows:
        tw.row(row)
    print(tw.flush(), end="", file=env.out, flush=True)
    return 0


async def token(env: Env, args: argparse.Namespace) -> int:
    if getattr(args, "token_action", None) != "rotate":
        env.error("error: say what to do with the join token: bramble token rotate")
        return 1
    rotated = await env.api.request("POST", "/bramble/v1/join-token/rotate")
    print(f"join token rotated; the new token (also in {rotated.get('file', 'join-token')} on "
          f"the master):\n{rotated['token']}", file=env.out, flush=True)
    return 0
