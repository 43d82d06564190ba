"""Kubeconfig files: find one, read the current context, write one safely.

Only the parts of the format bramble uses are read: the current context's server,
certificate authority (inline data or a file), bearer token (inline or a file),
insecure-skip-tls-verify and namespace. Files are what kubectl reads too, so a
kubeconfig written here works for both tools as is.

`default_master_data_dir()` lives here because both the master daemon (where to keep
its state) and the clients (where to find the local admin kubeconfig) need the same
answer, and the clients must not import the master.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ADMIN_KUBECONFIG = "admin.kubeconfig"
_ROOT_DATA_DIR = Path("/var/lib/bramble/master")


class KubeconfigError(Exception):
    """A kubeconfig that cannot be found or used; the message says what to do."""


@dataclass(frozen=True)
class KubeConfig:
    """The current context of a kubeconfig, resolved to what a client needs."""

    path: Path
    context: str
    server: str
    ca_data: bytes | None = None  # PEM
    token: str | None = None
    insecure: bool = False
    namespace: str | None = None
    tls_server_name: str | None = None


def default_master_data_dir(*, euid: int | None = None,
                            environ: Mapping[str, str] | None = None) -> Path:
    """Where the master keeps its state: /var/lib/bramble/master as root, else per user."""
    env = os.environ if environ is None else environ
    uid = os.geteuid() if euid is None else euid
    if uid == 0:
        return _ROOT_DATA_DIR
    xdg = env.get("XDG_DATA_HOME", "")
    # The XDG spec says relative values are invalid and must be ignored.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path(env.get("HOME") or Path.home()) / ".local" / "share"
    return base / "bramble" / "master"


def resolve(explicit: str | None = None, *, euid: int | None = None,
            environ: Mapping[str, str] | None = None) -> Path:
    """Pick the kubeconfig: --kubeconfig, else the first existing $KUBECONFIG entry, else
    the local master's admin kubeconfig."""
    env = os.environ if environ is None else environ
    if explicit:
        return Path(explicit).expanduser()
    listed = [p for p in env.get("KUBECONFIG", "").split(os.pathsep) if p]
    for entry in listed:
        candidate = Path(entry).expanduser()
        if candidate.exists():
            return candidate
    local = default_master_data_dir(euid=euid, environ=env) / ADMIN_KUBECONFIG
    if local.exists():
        return local
    tried = []
    if listed:
        tried.append(f"$KUBECONFIG ({', '.join(listed)}) names no existing file")
    tried.append(f"{local} does not exist")
    hint = "start `bramble master` on this machine, or copy admin.kubeconfig from the master " \
           "and pass --kubeconfig FILE (or set KUBECONFIG)"
    root_copy = _ROOT_DATA_DIR / ADMIN_KUBECONFIG
    uid = os.geteuid() if euid is None else euid
    if uid != 0 and _exists_unreadable(root_copy):
        hint = (f"the master here runs as root: use sudo, or copy {root_copy} to a file you own "
                f"(mode 0600) and pass --kubeconfig FILE")
    raise KubeconfigError(f"no kubeconfig found: {'; '.join(tried)}. To fix: {hint}.")


def _exists_unreadable(path: Path) -> bool:
    try:
        return path.exists() and not os.access(path, os.R_OK)
    except OSError:
        return False


def load(path: str | os.PathLike[str], context: str | None = None) -> KubeConfig:
    """Read a kubeconfig and resolve its current (or the named) context."""
    path = Path(path)
    raw = _read_text(path, "kubeconfig")
    import yaml  # lazily: the CLI's `version` and the node agent's start stay light

    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise KubeconfigError(f"the kubeconfig {path} is not valid YAML{where}: "
                              f"{getattr(err, 'problem', None) or err}") from err
    if not isinstance(doc, dict):
        raise KubeconfigError(f"the kubeconfig {path} is empty or not a mapping")

    name = context or doc.get("current-context") or ""
    if not name:
        raise KubeconfigError(f"the kubeconfig {path} has no current-context; "
                              f"set one with `kubectl config use-context NAME --kubeconfig {path}`")
    ctx = _named(doc, "contexts", "context", name, path)
    cluster_name, user_name = ctx.get("cluster") or "", ctx.get("user") or ""
    if not cluster_name:
        raise KubeconfigError(f'context "{name}" in {path} names no cluster')
    cluster = _named(doc, "clusters", "cluster", cluster_name, path)
    user = _named(doc, "users", "user", user_name, path) if user_name else {}

    server = str(cluster.get("server") or "").rstrip("/")
    if not server:
        raise KubeconfigError(f'cluster "{cluster_name}" in {path} has no server address')
    if not server.startswith(("https://", "http://")):
        raise KubeconfigError(f'cluster "{cluster_name}" in {path}: server "{server}" '
                              f"must start with https://")

    ca_data: bytes | None = None
    if cluster.get("certificate-authority-data"):
        try:
            ca_data = base64.b64decode(cluster["certificate-authority-data"], validate=True)
        except (binascii.Error, ValueError, TypeError) as err:
            raise KubeconfigError(f'cluster "{cluster_name}" in {path}: certificate-authority-data '
                                  f"is not valid base64") from err
    elif cluster.get("certificate-authority"):
        ca_path = _relative_to(path, cluster["certificate-authority"])
        ca_data = _read_text(ca_path, "certificate authority file").encode()

    token = user.get("token") or None
    if not token and user.get("tokenFile"):
        token = _read_text(_relative_to(path, user["tokenFile"]), "token file").strip() or None

    return KubeConfig(
        path=path,
        context=name,
        server=server,
        ca_data=ca_data,
        token=token,
        insecure=bool(cluster.get("insecure-skip-tls-verify", False)),
        namespace=ctx.get("namespace") or None,
        tls_server_name=cluster.get("tls-server-name") or None,
    )


def _named(doc: dict[str, Any], section: str, key: str, name: str, path: Path) -> dict[str, Any]:
    for entry in doc.get(section) or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            value = entry.get(key)
            return value if isinstance(value, dict) else {}
    raise KubeconfigError(f'the kubeconfig {path} has no {key} named "{name}"')


def _relative_to(kubeconfig: Path, value: str) -> Path:
    # kubectl resolves relative file references against the kubeconfig's own directory.
    p = Path(value).expanduser()
    return p if p.is_absolute() else kubeconfig.parent / p


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except FileNotFoundError as err:
        raise KubeconfigError(f"the {what} {path} does not exist") from err
    except PermissionError as err:
        raise KubeconfigError(f"cannot read the {what} {path}: permission denied "
                              f"(it is readable by its owner only; try sudo)") from err
    except IsADirectoryError as err:
        raise KubeconfigError(f"the {what} {path} is a directory, not a file") from err
    except (OSError, UnicodeDecodeError) as err:
        raise KubeconfigError(f"cannot read the {what} {path}: {err}") from err


def build(server: str, ca_pem: str | bytes, token: str, *, name: str = "bramble",
          user: str = "admin", namespace: str | None = None) -> dict[str, Any]:
    """A one-cluster, one-user kubeconfig with `name` as its current context."""
    ca = ca_pem.encode() if isinstance(ca_pem, str) else ca_pem
    context: dict[str, Any] = {"cluster": name, "user": user}
    if namespace:
        context["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {
            "certificate-authority-data": base64.b64encode(ca).decode(),
            "server": server,
        }}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": name, "context": context}],
        "current-context": name,
        "preferences": {},
    }


def write(path: str | os.PathLike[str], config: dict[str, Any]) -> None:
    """Write a kubeconfig atomically, readable by its owner only (it holds a credential)."""
    import yaml

    atomic_write(Path(path), yaml.safe_dump(config, sort_keys=False).encode())


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace `path` with `data` so that a crash leaves the old or the new file, never a
    torn one, and the file never exists with looser permissions than `mode`."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.unlink()  # a leftover from a crash
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # the umask may have narrowed or (oddly) widened it
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
