"""The service proxy's exceptions: one base, specific subclasses."""

from __future__ import annotations


class ProxyError(Exception):
    """Anything the service proxy reports."""


class AddressError(ProxyError):
    """A ClusterIP could not be put on (or taken off) the local dummy link."""
