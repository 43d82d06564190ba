"""Finding and reading kubeconfigs."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from bramble import kubeconfig
from bramble.kubeconfig import KubeconfigError

CA = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_default_data_dir_for_root_and_users() -> None:
    assert kubeconfig.default_master_data_dir(euid=0, environ={}) == Path("/var/lib/bramble/master")
    assert kubeconfig.default_master_data_dir(
        euid=1000, environ={"HOME": "/home/pi"}) == Path("/home/pi/.local/share/bramble/master")
    assert kubeconfig.default_master_data_dir(
        euid=1000, environ={"HOME": "/home/pi", "XDG_DATA_HOME": "/data"}) == Path(
        "/data/bramble/master")
    # The XDG spec says to ignore relative paths.
    assert kubeconfig.default_master_data_dir(
        euid=1000, environ={"HOME": "/home/pi", "XDG_DATA_HOME": "rel"}) == Path(
        "/home/pi/.local/share/bramble/master")


def test_resolve_order(tmp_path: Path) -> None:
    home = tmp_path / "home"
    local = write(home / ".local/share/bramble/master/admin.kubeconfig", "x")
    a, b = write(tmp_path / "a", "x"), write(tmp_path / "b", "x")
    env = {"HOME": str(home)}

    # 1. --kubeconfig wins, even over an existing $KUBECONFIG (and need not exist yet:
    #    loading it then says it is missing).
    assert kubeconfig.resolve("/explicit", euid=1000,
                              environ={**env, "KUBECONFIG": str(a)}) == Path("/explicit")
    # 2. the first existing entry of $KUBECONFIG.
    listed = f"{tmp_path / 'missing'}:{b}:{a}"
    assert kubeconfig.resolve(None, euid=1000, environ={**env, "KUBECONFIG": listed}) == b
    # 3. the local master's admin kubeconfig.
    assert kubeconfig.resolve(None, euid=1000, environ=env) == local
    assert kubeconfig.resolve(None, euid=1000,
                              environ={**env, "KUBECONFIG": str(tmp_path / "missing")}) == local


def test_resolve_without_any_kubeconfig_says_what_to_do(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "KUBECONFIG": str(tmp_path / "nope")}
    with pytest.raises(KubeconfigError) as err:
        kubeconfig.resolve(None, euid=1000, environ=env)
    text = str(err.value)
    assert "nope" in text and "admin.kubeconfig" in text and "--kubeconfig" in text


def config_text(server: str = "https://pi1.local:6443", **extra: str) -> str:
    cluster = extra.get("cluster", f"certificate-authority-data: {base64.b64encode(CA).decode()}")
    user = extra.get("user", "token: s3cret")
    return f"""
apiVersion: v1
kind: Config
current-context: {extra.get('current', 'home')}
clusters:
- name: pis
  cluster:
    server: {server}
    {cluster}
users:
- name: me
  user:
    {user}
contexts:
- name: home
  context: {{cluster: pis, user: me, namespace: apps}}
- name: other
  context: {{cluster: pis, user: me}}
"""


def test_load_current_context(tmp_path: Path) -> None:
    cfg = kubeconfig.load(write(tmp_path / "config", config_text()))
    assert (cfg.server, cfg.token, cfg.ca_data, cfg.namespace, cfg.context, cfg.insecure) == (
        "https://pi1.local:6443", "s3cret", CA, "apps", "home", False)
    other = kubeconfig.load(tmp_path / "config", context="other")
    assert other.namespace is None and other.context == "other"


def test_load_files_relative_to_the_kubeconfig(tmp_path: Path) -> None:
    write(tmp_path / "certs/ca.crt", CA.decode())
    write(tmp_path / "token", "from-file\n")
    path = write(tmp_path / "config", config_text(
        cluster="certificate-authority: certs/ca.crt", user="tokenFile: token"))
    cfg = kubeconfig.load(path)
    assert cfg.ca_data == CA and cfg.token == "from-file"


def test_load_insecure(tmp_path: Path) -> None:
    cfg = kubeconfig.load(write(tmp_path / "c", config_text(cluster="insecure-skip-tls-verify: true")))
    assert cfg.insecure and cfg.ca_data is None


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"),
    ("a: [", "not valid YAML at line 1"),
    (config_text(current='""'), "no current-context"),
    (config_text(current="gone"), 'no context named "gone"'),
    (config_text(server='""'), "has no server"),
    (config_text(server="pi1:6443"), "must start with https://"),
    (config_text(cluster="certificate-authority-data: '%%%'"), "not valid base64"),
    (config_text(cluster="certificate-authority: /nonexistent/ca.crt"), "does not exist"),
])
def test_load_errors_are_readable(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(KubeconfigError, match=message):
        kubeconfig.load(write(tmp_path / "config", text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KubeconfigError, match="does not exist"):
        kubeconfig.load(tmp_path / "nothing")


def test_build_and_write_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "out.kubeconfig"
    kubeconfig.write(path, kubeconfig.build("https://127.0.0.1:6443", CA, "tok",
                                            namespace="apps"))
    assert path.stat().st_mode & 0o777 == 0o600
    cfg = kubeconfig.load(path)
    assert (cfg.server, cfg.ca_data, cfg.token, cfg.namespace) == (
        "https://127.0.0.1:6443", CA, "tok", "apps")
    # Overwriting keeps it private and leaves no temporary file behind.
    kubeconfig.write(path, kubeconfig.build("https://127.0.0.1:7443", CA, "tok2"))
    assert kubeconfig.load(path).token == "tok2"
    assert [p.name for p in tmp_path.iterdir()] == ["out.kubeconfig"]
