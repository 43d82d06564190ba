"""The `bramble` command: run the master, and talk to it like a small kubectl.

Startup stays light: this module imports only the standard library; each command
imports what it needs (`bramble version --client` touches neither aiohttp, the master,
nor cryptography). Mistakes a person can fix are printed as one "error: ..." line with
exit code 1, never a traceback; --debug adds the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

PROG = "bramble"


class _Parser(argparse.ArgumentParser):
    """argparse that exits 1 (kubectl's code for usage errors), not 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(1, f"error: {message}\nSee '{self.prog} --help' for usage.\n")


def _common(*, namespaced: bool = True) -> argparse.ArgumentParser:
    # SUPPRESS keeps a subcommand from overwriting a value given before it
    # (`bramble --kubeconfig x get pods`), a known argparse pitfall.
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--kubeconfig", default=argparse.SUPPRESS, metavar="FILE",
                   help="kubeconfig to use (default: $KUBECONFIG, else the local master's "
                        "admin.kubeconfig)")
    p.add_argument("--context", default=argparse.SUPPRESS,
                   help="kubeconfig context to use (default: its current-context)")
    p.add_argument("--request-timeout", type=float, default=argparse.SUPPRESS, metavar="SECONDS",
                   help="give up on a request after this long (default 30)")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show tracebacks for errors")
    if namespaced:
        p.add_argument("-n", "--namespace", default=argparse.SUPPRESS,
                       help="namespace (default: the context's, else default)")
    return p


def _master_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", metavar="DIR",
                   help="where the master keeps its state and security material (default: "
                        "/var/lib/bramble/master as root, else ~/.local/share/bramble/master)")
    p.add_argument("--bind", default="0.0.0.0", metavar="ADDR",
                   help="address the API server listens on (default 0.0.0.0)")
    p.add_argument("--port", type=int, default=6443, help="API server port (default 6443)")
    p.add_argument("--no-mdns", action="store_true",
                   help="do not advertise the master on the LAN (mDNS: _bramble._tcp, "
                        "bramble.local) nor look for node agents there")
    p.add_argument("--service-cidr", default=None, metavar="CIDR",
                   help="where Services' cluster IPs come from (default 10.43.0.0/16)")
    p.add_argument("--cluster-cidr", default=None, metavar="CIDR",
                   help="the pod network; each node gets a /24 of it (default 10.42.0.0/16)")
    p.add_argument("--node-grace", type=float, default=None, metavar="SECONDS",
                   help="a node whose heartbeats stop this long is NotReady (default 6)")
    p.add_argument("--eviction-delay", type=int, default=None, metavar="SECONDS",
                   help="then its pods are replaced elsewhere this much later, unless they "
                        "tolerate it themselves (default 3)")
    # HorizontalPodAutoscaler
    p.add_argument("--hpa-sync-period", type=float, default=None, metavar="SECONDS",
                   help="how often each HorizontalPodAutoscaler looks at its metrics "
                        "(default 15, as Kubernetes)")
    p.add_argument("--hpa-downscale-stabilization", type=float, default=None,
                   metavar="SECONDS",
                   help="an autoscaler scales down only to the highest replica count it "
                        "recommended this long (default 300, as Kubernetes)")
    p.add_argument("--dashboard-read-only-public", action="store_true",
                   help="show the status page's view (not its actions nor logs) without a "
                        "login to anyone who can reach the master")
    p.add_argument("--https-port", type=int, default=443, metavar="PORT",
                   help="also serve HTTPS here when the port is free, so https://bramble.local "
                        "opens the status page (default 443; 0: off)")
    p.add_argument("--http-port", type=int, default=80, metavar="PORT",
                   help="redirect plain HTTP here to the HTTPS page when the port is free "
                        "(default 80; 0: off)")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show tracebacks for errors")


def _node_flags(p: argparse.ArgumentParser, *, for_up: bool) -> None:
    p.add_argument("--podman-socket", metavar="PATH",
                   help="use this Podman API socket (e.g. systemd's podman.socket) instead "
                        "of starting a bramble-owned `podman system service`")
    p.add_argument("--max-pods", type=int, default=110, help="pods this node runs at most")
    p.add_argument("--pod-subnet", default="", metavar="CIDR",
                   help="a fixed pod subnet for this node, outside the cluster's flat pod "
                        "network (default: the podCIDR the master assigns this node)")
    p.add_argument("--no-pod-routes", action="store_true",
                   help="do not route the other nodes' pod subnets (host-gw) on this host")
    p.add_argument("--no-service-proxy", action="store_true",
                   help="do not run the service proxy (ClusterIPs, NodePorts) on this host")
    p.add_argument("--no-cluster-dns", action="store_true",
                   help="do not serve cluster DNS to this node's pods")
    p.add_argument("--cluster-domain", default="cluster.local", metavar="DOMAIN",
                   help="the DNS domain of Services (default cluster.local)")
    p.add_argument("--network", default="bramble", metavar="NAME",
                   help="the Podman network bramble creates for pods (default bramble)")
    p.add_argument("--allow-privileged", action="store_true",
                   help="let pods run privileged containers on this node")
    p.add_argument("--node-port", type=int, default=10250, metavar="PORT",
                   help="the agent's HTTPS port that the master streams logs, exec and "
                        "port-forward through (default 10250)")
    p.add_argument("--node-bind", default="0.0.0.0", metavar="ADDR",
                   help="the address that port listens on (default 0.0.0.0)")
    if not for_up:
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show tracebacks for errors")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="bramble: a small Kubernetes-shaped cluster for "
                     "Raspberry Pis.", parents=[_common()])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    client = _common()
    client_global = _common(namespaced=False)

    p = sub.add_parser("master", help="run the control plane (API server) on this machine")
    _master_flags(p)
    p = sub.add_parser("up", help="run the master and a node on this machine, in one process")
    _master_flags(p)
    _node_flags(p, for_up=True)

    p = sub.add_parser("node", help="run the node agent: join a master and run its pods here")
    p.add_argument("--master", default="", metavar="URL",
                   help="the master's API, e.g. https://bramble.local:6443 (default: find "
                        "it on the LAN with mDNS)")
    # The environment, unlike the command line, is readable by root only: systemd units
    # pass the token that way (EnvironmentFile, mode 0600).
    p.add_argument("--token", default=os.environ.get("BRAMBLE_JOIN_TOKEN", ""),
                   metavar="JOIN_TOKEN",
                   help="the cluster's join token (the master's data dir has it in "
                        "join-token; default: $BRAMBLE_JOIN_TOKEN); needed only the first "
                        "time. Without it the node waits until `bramble nodes approve NAME` "
                        "at the master")
    p.add_argument("--cluster", default="", metavar="ID",
                   help="without --master: join only the cluster with this id (when a LAN "
                        "has several)")
    p.add_argument("--no-mdns", action="store_true",
                   help="neither advertise the node on the LAN nor look for the master "
                        "there (needs --master)")
    p.add_argument("--name", default="", help="the node's name (default: the hostname)")
    p.add_argument("--data-dir", metavar="DIR",
                   help="where the node keeps its credential, Podman storage and pod volumes "
                        "(default: /var/lib/bramble/node as root, else "
                        "~/.local/share/bramble/node)")
    _node_flags(p, for_up=False)

    p = sub.add_parser("get", parents=[client], help="list objects as a table, YAML or JSON")
    p.add_argument("targets", nargs="+", metavar="TYPE[/NAME]",
                   help="TYPE [NAME...] or TYPE/NAME...; TYPE is a plural, singular or short "
                        "name (pods, pod, po), TYPE.GROUP, a comma list, or a category (all)")
    p.add_argument("-A", "--all-namespaces", action="store_true",
                   help="list across all namespaces")
    p.add_argument("-l", "--selector", help="label selector, e.g. app=web,tier!=db")
    p.add_argument("--field-selector", help="field selector, e.g. spec.nodeName=pi1")
    p.add_argument("-o", "--output", metavar="FORMAT", help="wide, yaml, json or name")
    p.add_argument("-w", "--watch", action="store_true",
                   help="after listing, print changes as they happen")
    p.add_argument("--no-headers", action="store_true", help="omit the header line")
    p.add_argument("--show-managed-fields", action="store_true",
                   help="keep metadata.managedFields in yaml/json output")

    p = sub.add_parser("describe", parents=[client], help="show details of objects, with events")
    p.add_argument("targets", nargs="+", metavar="TYPE[/NAME]",
                   help="TYPE [NAME...] or TYPE/NAME...; without names, all of TYPE")
    p.add_argument("-A", "--all-namespaces", action="store_true",
                   help="describe across all namespaces")
    p.add_argument("-l", "--selector", help="label selector")

    p = sub.add_parser("apply", parents=[client],
                       help="create or update objects from manifests (server-side apply)")
    p.add_argument("-f", "--filename", action="append", required=True, metavar="FILE",
                   help="manifest file, directory of manifests, or - for stdin (repeatable)")
    p.add_argument("-R", "--recursive", action="store_true",
                   help="also read manifests in subdirectories")
    p.add_argument("--field-manager", default="bramble",
                   help="name of the manager owning the applied fields (default bramble)")
    p.add_argument("--force-conflicts", action="store_true",
                   help="take over fields another manager owns instead of failing")
    p.add_argument("--server-side", action="store_true", help=argparse.SUPPRESS)  # always

    p = sub.add_parser("delete", parents=[client], help="delete objects")
    p.add_argument("targets", nargs="*", metavar="TYPE[/NAME]",
                   help="TYPE NAME... or TYPE/NAME...")
    p.add_argument("-f", "--filename", action="append", metavar="FILE",
                   help="delete the objects in these manifests")
    p.add_argument("-R", "--recursive", action="store_true",
                   help="also read manifests in subdirectories")
    p.add_argument("-l", "--selector", help="delete objects of TYPE matching this selector")
    p.add_argument("--all", action="store_true", help="delete all objects of TYPE")
    p.add_argument("-A", "--all-namespaces", action="store_true",
                   help="with -l/--all: across all namespaces")
    p.add_argument("--cascade", default="background",
                   help="background (default), foreground or orphan: what happens to "
                        "dependents such as a Deployment's pods")
    p.add_argument("--grace-period", type=int, default=None, metavar="SECONDS",
                   help="seconds a pod gets to stop (default: its own setting)")
    p.add_argument("--ignore-not-found", action="store_true",
                   help="do not fail for objects that do not exist")

    p = sub.add_parser("scale", parents=[client], help="set the replicas of a Deployment, "
                       "ReplicaSet or ReplicationController")
    p.add_argument("targets", nargs="+", metavar="TYPE/NAME", help="TYPE/NAME or TYPE NAME")
    p.add_argument("--replicas", type=int, required=True, metavar="COUNT")

    p = sub.add_parser("logs", parents=[client],
                       help="print (or follow) a container's log, or those of every pod of "
                            "a selector across the cluster (-l)")
    p.add_argument("pod", metavar="POD", nargs="?", default="",
                   help="the pod (or give -l SELECTOR)")
    p.add_argument("-l", "--selector", default="", metavar="SELECTOR",
                   help="every pod matching this label selector, on every node, merged "
                        "(with -f: also pods that appear later)")
    p.add_argument("-c", "--container", default="", help="the container (default: the "
                                                         "pod's only or first one)")
    p.add_argument("--all-containers", action="store_true",
                   help="every container of the pods, init containers included")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    p.add_argument("-p", "--previous", action="store_true",
                   help="the log of the container's previous run (after a restart)")
    p.add_argument("--timestamps", action="store_true", help="prefix each line with its time")
    p.add_argument("--prefix", action=argparse.BooleanOptionalAction, default=None,
                   help="start each line with [pod/NAME/CONTAINER] (default: on with -l)")
    p.add_argument("--tail", type=int, default=-1, metavar="LINES",
                   help="only the last LINES lines (default: all, 10 per container with -l)")
    p.add_argument("--since", default="", metavar="DURATION",
                   help="only lines newer than DURATION, e.g. 10m or 1h")
    p.add_argument("--since-time", default="", metavar="TIME",
                   help="only lines at or after an RFC 3339 time, e.g. 2024-05-01T10:00:00Z")
    p.add_argument("--limit-bytes", type=int, default=None, metavar="BYTES",
                   help="at most BYTES of each log")
    p.add_argument("--max-log-requests", type=int, default=5, metavar="N",
                   help="with -l: at most N streams at once (default 5); with -f, more "
                        "matching containers than N is an error, as in kubectl")

    p = sub.add_parser("exec", parents=[client], help="run a command in a container")
    p.add_argument("pod", metavar="POD")
    p.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARGS...]")
    p.add_argument("-c", "--container", default="", help="the container (default: the "
                                                         "pod's only one)")
    p.add_argument("-i", "--stdin", action="store_true", help="pass this terminal's input")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a terminal")

    p = sub.add_parser("push", parents=[client_global],
                       help="load an image archive (podman/docker save) onto the nodes, "
                            "without a registry")
    p.add_argument("image", metavar="IMAGE.tar", help="the archive, e.g. from `podman save`")
    p.add_argument("--node", default="", metavar="NAME",
                   help="only this node (default: every node with a running agent)")

    p = sub.add_parser("nodes", parents=[client_global],
                       help="list nodes, nodes waiting to join and agents seen on the LAN; "
                            "approve or remove them")
    actions = p.add_subparsers(dest="nodes_action", metavar="ACTION", parser_class=_Parser)
    a = actions.add_parser("approve", parents=[client_global],
                           help="admit a node that asked to join without the join token")
    a.add_argument("name", metavar="NAME")
    a.add_argument("--fingerprint", default="", metavar="CODE",
                   help="the fingerprint the node printed (needed when several requests "
                        "carry the name)")
    a = actions.add_parser("remove", parents=[client_global],
                           help="revoke a node's credential and delete its Node")
    a.add_argument("name", metavar="NAME")

    p = sub.add_parser("token", parents=[client_global], help="manage the join token")
    actions = p.add_subparsers(dest="token_action", metavar="ACTION", parser_class=_Parser)
    actions.required = True
    actions.add_parser("rotate", parents=[client_global],
                       help="replace the join token (joined nodes keep their credentials)")

    p = sub.add_parser("dashboard", parents=[client_global],
                       help="print a one-time login link to the status page, with a QR "
                            "code for a phone")
    p.add_argument("--no-qr", action="store_true", help="print only the link")

    p = sub.add_parser("doctor", help="check this machine for what breaks Pi clusters")
    p.add_argument("--data-dir", metavar="DIR",
                   help="the node agent's data dir (default: /var/lib/bramble/node as root, "
                        "else ~/.local/share/bramble/node)")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show tracebacks for errors")

    from bramble.image.cli import add_parser as add_image_parser  # stdlib-light

    add_image_parser(sub)

    p = sub.add_parser("version", parents=[client_global],
                       help="print the client's and the server's versions")
    p.add_argument("--client", action="store_true", help="only the client's version")
    return parser


def _flag(args: argparse.Namespace, name: str, default: Any = None) -> Any:
    return getattr(args, name, default)


def run(argv: Sequence[str] | None = None) -> int:
    """Parse, run one command, and turn errors into messages; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(_flag(args, "debug", False))
    try:
        if args.command == "master":
            return _run_master(args)
        if args.command in ("node", "up"):
            return _run_node(args)
        if args.command == "doctor":
            return _run_doctor(args)
        if args.command == "image":
            from bramble.image.cli import run as run_image

            return run_image(args)
        return _run_client(args)
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # translated below; anything unexpected says so
        message = user_message(err)
        if debug or message is None:
            traceback.print_exc()
        if message is None:
            message = (f"error: unexpected {type(err).__name__}: {err} (this is a bug in "
                       f"bramble; run again with --debug and report the traceback)")
        print(message, file=sys.stderr, flush=True)
        return 1


def user_message(err: BaseException) -> str | None:
    """The one line to print for an error a person can act on; None for bugs."""
    from bramble.kube.errors import StatusError

    if isinstance(err, StatusError):
        return f"Error from server ({err.reason}): {err.message}"
    names = {cls.__name__ for cls in type(err).__mro__}
    if names & {"ClientError", "KubeconfigError", "ManifestError", "UnknownResource",
                "UsageError", "PKIError", "ContainerRuntimeError", "JoinError", "VolumeError",
                "ImageError", "SettingsError"}:
        return f"error: {err}"
    if isinstance(err, OSError):
        where = f" ({err.filename})" if getattr(err, "filename", None) else ""
        return f"error: {err.strerror or err}{where}"
    return None


def _run_master(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bramble.kubeconfig import default_master_data_dir

    try:
        from bramble.master.daemon import run as run_master
    except ImportError as err:
        raise _usage(f"the master is not available in this installation ({err})") from err
    data_dir = Path(args.data_dir).expanduser() if args.data_dir else default_master_data_dir()
    return int(run_master(_master_config(args, data_dir)))


def _master_config(args: argparse.Namespace, data_dir: Path) -> Any:
    import ipaddress

    from bramble.master.daemon import MasterConfig

    extra: dict[str, Any] = {}
    for flag in ("service_cidr", "cluster_cidr"):
        value = getattr(args, flag)
        if value is not None:
            try:
                ipaddress.ip_network(value)
            except ValueError:
                raise _usage(f"--{flag.replace('_', '-')}: {value!r} is not a network "
                             f"such as 10.43.0.0/16") from None
    if args.service_cidr is not None:
        extra["service_cidr"] = args.service_cidr
    return MasterConfig(data_dir=data_dir, bind=args.bind, port=args.port,
                        mdns=not args.no_mdns, controllers=_controller_settings(args),
                        dashboard_read_only_public=args.dashboard_read_only_public,
                        https_port=_port_or_off(args, "https_port"),
                        http_redirect_port=_port_or_off(args, "http_port"), **extra)


def _port_or_off(args: argparse.Namespace, flag: str) -> int | None:
    value = getattr(args, flag)
    if not 0 <= value <= 65535:
        raise _usage(f"--{flag.replace('_', '-')} must be a port number (0 turns it off)")
    return value or None


def _controller_settings(args: argparse.Namespace) -> Any:
    from dataclasses import replace

    from bramble.master.controllers import ControllerSettings

    settings = ControllerSettings()
    if args.cluster_cidr is not None:
        settings = replace(settings, cluster_cidr=args.cluster_cidr)
    # Durations in seconds: (flag, setting, whether 0 is allowed).
    for flag, setting, zero_allowed in (
            ("node_grace", "node_monitor_grace", False),
            ("eviction_delay", "default_eviction_seconds", True),
            ("hpa_sync_period", "hpa_sync_period", False),
            ("hpa_downscale_stabilization", "hpa_downscale_stabilization", True)):
        value = getattr(args, flag)
        if value is None:
            continue
        option = "--" + flag.replace("_", "-")
        if zero_allowed and value < 0:
            raise _usage(f"{option} must be 0 or more seconds")
        if not zero_allowed and value <= 0:
            raise _usage(f"{option} must be more than 0 seconds")
        settings = replace(settings, **{setting: value})
    return settings


def _node_data_dir(args: argparse.Namespace) -> Path:
    from bramble.kubeconfig import default_master_data_dir

    if getattr(args, "data_dir", None) and args.command in ("node", "doctor"):
        return Path(args.data_dir).expanduser()
    # Beside the master's: /var/lib/bramble/node as root, ~/.local/share/bramble/node else.
    return default_master_data_dir().parent / "node"


def _run_node(args: argparse.Namespace) -> int:
    import ipaddress

    from bramble.node.agent import NodeConfig

    if args.pod_subnet:
        try:
            ipaddress.ip_network(args.pod_subnet)
        except ValueError:
            raise _usage(f"--pod-subnet: {args.pod_subnet!r} is not a network such as "
                         f"10.42.7.0/24") from None

    node = NodeConfig(
        data_dir=_node_data_dir(args), master=getattr(args, "master", ""),
        token=getattr(args, "token", ""), name=getattr(args, "name", ""),
        podman_socket=Path(args.podman_socket) if args.podman_socket else None,
        max_pods=args.max_pods, allow_privileged=args.allow_privileged,
        subnet=args.pod_subnet, network=args.network, server_port=args.node_port,
        server_bind=args.node_bind, cluster=getattr(args, "cluster", ""),
        lan=not args.no_mdns, pod_routes=not args.no_pod_routes,
        service_proxy=not args.no_service_proxy, cluster_dns=not args.no_cluster_dns,
        cluster_domain=args.cluster_domain)
    if args.command == "node":
        from bramble.node.agent import run as run_node

        return int(run_node(node))
    from bramble.kubeconfig import default_master_data_dir
    from bramble.up import run as run_up

    master_dir = (Path(args.data_dir).expanduser() if args.data_dir
                  else default_master_data_dir())
    if args.data_dir:
        node.data_dir = master_dir.parent / "node"
    return int(run_up(_master_config(args, master_dir), node))


def _run_doctor(args: argparse.Namespace) -> int:
    from bramble import doctor

    return doctor.main(_node_data_dir(args))


def _usage(message: str) -> Exception:
    from bramble.cli.commands import UsageError

    return UsageError(message)


def _run_client(args: argparse.Namespace) -> int:
    if args.command == "version":
        sys.stdout.write(_client_version())
        sys.stdout.flush()
        if args.client:
            return 0

    import asyncio

    from bramble import kubeconfig
    from bramble.cli import commands
    from bramble.client import Client

    config = kubeconfig.load(kubeconfig.resolve(_flag(args, "kubeconfig")), _flag(args, "context"))
    explicit_ns = _flag(args, "namespace")
    if args.command in ("logs", "exec"):
        from bramble.cli import streams

        handler: Callable[..., Any] = streams.logs if args.command == "logs" else streams.exec_
    elif args.command in ("nodes", "token"):
        from bramble.cli import membership

        handler = getattr(membership, args.command)
    elif args.command == "dashboard":
        from bramble.cli import dashboard

        handler = dashboard.dashboard
    else:
        handler = getattr(commands, args.command)
    timeout = float(_flag(args, "request_timeout", 30.0) or 30.0)

    # Every followed log stream holds a connection, besides the pod watch and lookups.
    connections = max(16, int(_flag(args, "max_log_requests", 0) or 0) + 4)

    async def main() -> int:
        async with Client(config, timeout=timeout, connections=connections) as api:
            env = commands.Env(
                api=api, namespace=explicit_ns or config.namespace or "default",
                explicit_namespace=explicit_ns is not None,
                all_namespaces=bool(_flag(args, "all_namespaces", False)))
            return int(await handler(env, args))

    return asyncio.run(main())


def _client_version() -> str:
    from bramble import __version__

    return f"Client Version: v{__version__}\n"


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: `bramble ...`."""
    sys.exit(run(argv))


if __name__ == "__main__":
    main()
