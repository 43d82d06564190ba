"""Where the plain-HTTP front door sends a browser: the same host over HTTPS, never
anywhere a crafted Host header or path could point."""

from __future__ import annotations

import pytest

from bramble.master.web.redirect import location


@pytest.mark.parametrize(("host", "path", "port", "want"), [
    # The usual case: a phone typed bramble.local; the API listens on 6443.
    ("bramble.local", "/", 6443, "https://bramble.local:6443/"),
    # 443 bound too: no port in the URL.
    ("bramble.local", "/", 443, "https://bramble.local/"),
    ("bramble.local:80", "/", 443, "https://bramble.local/"),
    # Path and query are kept as sent (already encoded).
    ("pi1", "/web/v1/login/abc?x=1&y=%20", 6443, "https://pi1:6443/web/v1/login/abc?x=1&y=%20"),
    ("BRAMBLE.Local.", "/", 443, "https://bramble.local/"),
    ("192.168.1.5:80", "/", 6443, "https://192.168.1.5:6443/"),
    ("[fe80::1]:80", "/", 6443, "https://[fe80::1]:6443/"),
    ("[2001:db8::1]", "/x", 443, "https://[2001:db8::1]/x"),
    # Anything that is not a plain host name or address: the master's own name.
    ("", "/", 6443, "https://bramble.local:6443/"),
    ("evil.example/x", "/", 6443, "https://bramble.local:6443/"),
    ("a b", "/", 6443, "https://bramble.local:6443/"),
    ("host:port", "/", 6443, "https://bramble.local:6443/"),
    ("[fe80::1", "/", 6443, "https://bramble.local:6443/"),
    ("[fe80::1]x", "/", 6443, "https://bramble.local:6443/"),
    ("user@evil.example", "/", 6443, "https://bramble.local:6443/"),
    # A scheme-relative path would leave the host: it becomes "/".
    ("bramble.local", "//evil.example/", 6443, "https://bramble.local:6443/"),
    ("bramble.local", "http://evil.example/", 6443, "https://bramble.local:6443/"),
])
def test_location(host: str, path: str, port: int, want: str) -> None:
    assert location(host, path, port) == want
