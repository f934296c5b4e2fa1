"""Which addresses a request may connect to: the address guard's policy.

By default every request — feed, listing page, robots.txt, article page, and every redirect
of each — may only reach globally routable unicast addresses. The operator lifts that per
source, explicitly (`sources[].allow_private`, `sources[].allow_networks`), or for the whole
process (`http.allow_private_addresses`, for tests, demos and intranet-only monitors). A
redirect never widens what a request may reach: the policy belongs to the source, and every
hop is checked against it at connect time (see `monitor.ingest.fetch`).

Pure: no network, no clock. `monitor.ingest.fetch` applies a policy inside its resolver and its
socket factory, so the address checked is the address connected to.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
# What `allow_private` opens: loopback, private-use (RFC 1918, RFC 4193) and shared (RFC 6598)
# addresses — where an operator's own servers live. Not link-local: 169.254.169.254 and
# fe80::/10 are where cloud metadata services answer; name them in allow_networks if meant.
_PRIVATE = tuple(
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
        "::1/128", "fc00::/7",
    )
)  # fmt: skip


def is_public_address(ip: IPAddress) -> bool:
    """True for globally routable unicast addresses."""
    if isinstance(ip, ipaddress.IPv6Address) and (ip.ipv4_mapped or ip.sixtofour or ip.teredo):
        return False  # an IPv4 address in IPv6 clothing: refuse rather than reason about it
    if ip.is_multicast or ip.is_unspecified or ip.is_loopback or ip.is_link_local:
        return False
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return False
    return ip.is_global and not ip.is_private and not ip.is_reserved


def address_kind(ip: IPAddress) -> str:
    """A few words for an operator: why this address is not a public one."""
    ip = _unmapped(ip)
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (where cloud metadata services answer)"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "a shared (carrier-grade NAT) address"
    if ip.is_private:
        return "a private address"
    return "not a public address"


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses one source's requests may connect to."""

    private: bool = False  # loopback, private-use and shared addresses too
    networks: tuple[IPNetwork, ...] = ()  # these networks too, whatever they are
    unrestricted: bool = False  # no guard at all (http.allow_private_addresses)

    @classmethod
    def for_source(cls, allow_private: bool, allow_networks: Iterable[str]) -> AddressPolicy:
        networks = tuple(ipaddress.ip_network(n, strict=False) for n in allow_networks)
        return cls(private=allow_private, networks=networks)

    def allows(self, ip: IPAddress, public: Callable[[IPAddress], bool] = is_public_address) -> bool:
        """`public` says which addresses count as public (a test seam; the default is real)."""
        if self.unrestricted or public(ip):
            return True
        plain = _unmapped(ip)
        if any(plain.version == net.version and plain in net for net in self.networks):
            return True
        return self.private and any(plain.version == net.version and plain in net for net in _PRIVATE)

    def allows_text(self, host: str, public: Callable[[IPAddress], bool] = is_public_address) -> bool:
        return self.allows(ipaddress.ip_address(host.split("%", 1)[0]), public)


def _unmapped(ip: IPAddress) -> IPAddress:
    """::ffff:10.0.0.1 is 10.0.0.1 for the allowances (the public check refuses it anyway)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


PUBLIC_ONLY = AddressPolicy()
UNRESTRICTED = AddressPolicy(unrestricted=True)
