"""The node agent's userspace service proxy (ClusterIP and NodePort, TCP and UDP).

rules.py (pure): Services + Endpoints -> listeners, policies, backends.
balancer.py (pure): round robin, ClientIP affinity, next backend after a failed connect.
tcp.py, udp.py: the listeners and relays (zero-copy splice on Linux).
proxier.py: applies a new desired state to the running listeners.
address.py: ClusterIPs as local addresses on the bramble0 dummy link (injected hooks).
errors.py: ProxyError and its subclasses.
"""

from .errors import AddressError, ProxyError
from .proxier import ApplyResult, Proxier, ProxyOptions

__all__ = ["AddressError", "ApplyResult", "Proxier", "ProxyError", "ProxyOptions"]
