"""The master's status page: a live, phone-first view of the cluster and its everyday
actions, served by the API server's own HTTPS listener (issue 6).

- session.py: sessions, one-time login links, CSRF, the login rate limit (memory only);
- view.py: the cluster view, a pure function of objects, usage and history;
- history.py: per-node usage over the last hour (memory only);
- live.py: one shared view computation fed by store watches, pushed to every page;
- actions.py: approve, cordon/uncordon, drain, scale, restart, delete-pod via ObjectAPI;
- routes.py: the HTTP routes (helpers/web-contract.md) and static files (static/);
- gauges.py: the cluster gauges on /metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class WebSettings:
    # Serve the view (never actions nor logs) without a login. Off by default: anyone on
    # the LAN would see pod names, addresses and events.
    read_only_public: bool = False
    # LAN addresses of the master: a one-time link asked for over loopback points at the
    # first of them, since the phone cannot reach 127.0.0.1. Empty: keep the Host asked.
    addresses: tuple[str, ...] = field(default=())
    cluster_name: str = "bramble"


# Paths whose requests the API's bearer-token middleware hands to the status page's own
# session auth (routes.py); everything else keeps the bearer token.
def is_web_path(path: str) -> bool:
    return (path in ("/", "/manifest.webmanifest") or path.startswith("/static/")
            or path.startswith("/web/v1/"))
