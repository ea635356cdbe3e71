"""Which address a request came from, believing ``X-Forwarded-For`` only from our proxies.

Behind a reverse proxy every request arrives from the proxy; the proxy appends the
address it saw to ``X-Forwarded-For``. A client can send that header too, with any
address in it, so the header is read only when the direct peer is a configured trusted
proxy (``LOCKER_TRUSTED_PROXIES``), and then from the right: each hop that is itself a
trusted proxy is skipped, and the first address that is not is the client. Anything
unreadable there stops the walk at the last trusted hop, never at a made-up address.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address

Network = IPv4Network | IPv6Network


def is_trusted(address: str, proxies: Sequence[Network]) -> bool:
    try:
        parsed = ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in proxies)


def client_address(
    peer: str | None, forwarded_for: str | None, proxies: Sequence[Network]
) -> str | None:
    """The client's address: ``peer``, or the forwarded one when ``peer`` is a trusted proxy."""
    if peer is None or not forwarded_for or not is_trusted(peer, proxies):
        return peer
    source = peer
    for hop in reversed([part.strip() for part in forwarded_for.split(",")]):
        try:
            ip_address(hop)
        except ValueError:
            return source
        source = hop
        if not is_trusted(hop, proxies):
            return hop
    return source
