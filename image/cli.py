"""`bramble image build`: the command line around image/build.py.

Registered by bramble/cli/main.py with `add_parser(subparsers)`; `run(args)` returns the
exit code. Errors a person can fix raise ImageError/SettingsError (one line, no traceback).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bramble.image.settings import ROLES


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    p = subparsers.add_parser("image", help="build SD-card images that boot into the cluster")
    actions = p.add_subparsers(dest="image_action", metavar="ACTION")
    actions.required = True
    b = actions.add_parser(
        "build", help="make a flashable .img from a Raspberry Pi OS Lite (arm64) image",
        description="Copy BASE with bramble, its units and bramble.toml added. Build the "
                    "master's image first; it prints the join token; build the nodes' "
                    "images with the same --token. One node image fits any number of cards.")
    b.add_argument("--base", required=True, type=Path, metavar="IMAGE",
                   help="Raspberry Pi OS Lite arm64 (or Debian arm64) image, .img or .img.xz")
    b.add_argument("--role", required=True, choices=ROLES,
                   help="master, node, or up (both on a one-Pi cluster)")
    b.add_argument("--hostname", default="",
                   help="the Pi's hostname (default: CLUSTER-SERIAL, from its serial number)")
    b.add_argument("--cluster", default="bramble", help="the cluster's name (default bramble)")
    b.add_argument("--token", default="", metavar="JOIN_TOKEN",
                   help="the cluster's join token (64 hex digits); without it a new one is "
                        "made and printed once")
    b.add_argument("--wifi-ssid", default="", metavar="SSID")
    b.add_argument("--wifi-psk", default="", metavar="PASSWORD")
    b.add_argument("--wifi-country", default="", metavar="CC",
                   help="two-letter country code, needed with --wifi-ssid")
    b.add_argument("--ssh-key", default="", metavar="FILE_OR_KEY",
                   help="an OpenSSH public key (or a .pub file) allowed to log in as root")
    b.add_argument("--wheels", type=Path, default=None, metavar="DIR",
                   help="carry these wheels (bramble-*.whl and its dependencies for "
                        "aarch64) instead of building and downloading them")
    b.add_argument("-o", "--output", type=Path, default=None, metavar="FILE",
                   help="the image to write (default: bramble-ROLE.img)")
    b.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show tracebacks for errors")
    return p


def run(args: argparse.Namespace) -> int:
    from bramble.image.build import Request, build
    from bramble.image.settings import Settings, new_token

    ssh_key = args.ssh_key
    if ssh_key and Path(ssh_key).expanduser().is_file():
        ssh_key = Path(ssh_key).expanduser().read_text().strip()
    token = args.token or new_token()
    settings = Settings(role=args.role, token=token, cluster=args.cluster,
                        hostname=args.hostname, wifi_ssid=args.wifi_ssid,
                        wifi_psk=args.wifi_psk, wifi_country=args.wifi_country.upper(),
                        ssh_key=ssh_key.strip())
    output = args.output or Path(f"bramble-{args.role}.img")
    build(Request(base=args.base, output=output, settings=settings, wheels=args.wheels))
    print(f"wrote {output}")
    if not args.token:
        # Printed once: it is also in the image's bramble.toml, but the nodes' images
        # need it and nobody should have to dig it out of a FAT partition.
        print(f"join token: {token}\nbuild the other cards of this cluster with "
              f"--token {token}")
    return 0
