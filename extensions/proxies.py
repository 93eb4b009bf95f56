"""Who the client is behind a reverse proxy: X-Forwarded-For, believed only from proxies
the project trusts. Pure functions of addresses and header values.

A proxy (nginx) connects to the server, so the peer address is the proxy's. It passes the
client's address in X-Forwarded-For, appending each hop: ``client, proxy1, proxy2``.
Anyone can send that header, so it is read only when the peer is a trusted proxy, and
from the right: the rightmost address that is not a trusted proxy is the client.
"""
import ipaddress

__all__ = ['trusted_networks', 'forwarded_client', 'forwarded_scheme']


def trusted_networks(proxies):
    """``ip_network`` objects for addresses or networks given as strings."""
    return tuple(ipaddress.ip_network(proxy, strict=False) for proxy in proxies)


def _is_trusted(address, networks):
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    # An IPv4 proxy reaching a dual-stack listener appears as ::ffff:a.b.c.d.
    ip = getattr(ip, 'ipv4_mapped', None) or ip
    return any(ip in network for network in networks)


def forwarded_client(peer, forwarded_for, networks):
    """The client's address: ``peer``, or from ``forwarded_for`` if ``peer`` is trusted."""
    if not forwarded_for or not _is_trusted(peer, networks):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(',') if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, networks):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer   # garbage where an address should be: believe nothing
    return hops[0] if hops else peer   # every hop is a trusted proxy


def forwarded_scheme(peer, forwarded_proto, networks):
    """'http' or 'https' from X-Forwarded-Proto when ``peer`` is trusted, else None."""
    if forwarded_proto and _is_trusted(peer, networks):
        scheme = forwarded_proto.split(',')[0].strip().lower()
        if scheme in ('http', 'https'):
            return scheme
    return None
