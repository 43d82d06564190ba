"""The node agent's cluster DNS responder: the pods' nameserver.

message.py (pure): the DNS wire format - read queries, build answers, truncation.
records.py (pure): Services + Endpoints -> the cluster domain's records and answers.
resolvconf.py (pure): the host's resolv.conf -> upstreams and search list.
cache.py (pure): the upstreams' answers kept for their TTL (capped), LRU-bounded.
server.py: ClusterDNS, UDP and TCP on the pod gateway addresses, forwarding the rest.
"""

from .records import DEFAULT_DOMAIN, TTL, ClusterRecords
from .resolvconf import ResolvConf
from .resolvconf import parse as parse_resolv_conf
from .resolvconf import upstreams as usable_upstreams
from .server import ClusterDNS, DNSOptions

__all__ = ["DEFAULT_DOMAIN", "TTL", "ClusterDNS", "ClusterRecords", "DNSOptions", "ResolvConf",
           "parse_resolv_conf", "usable_upstreams"]
