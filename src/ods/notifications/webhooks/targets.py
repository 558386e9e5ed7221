"""Where a webhook may post: never loopback, link-local or this server's own addresses.

The host is resolved and every address it resolves to is checked; the
delivery then connects to the checked address itself, so a second, different
answer (DNS rebinding) cannot send it elsewhere. `ODS_WEBHOOK_ALLOW` names
hosts and networks allowed all the same. Private-use networks (10/8,
192.168/16, fc00::/7, ...) are allowed: ticketing systems and chat servers
inside a site's network are what webhooks are for.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlsplit

import psutil

from ods.core.config import webhook_allow_entries

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TargetRefused(Exception):
    """The url may not be posted to; the message says why."""


@dataclass(frozen=True)
class Target:
    """A checked url: the address to connect to, and the host to name in Host and TLS."""

    url: str
    scheme: str
    host: str
    port: int
    address: str


@dataclass(frozen=True)
class Allowed:
    hosts: frozenset[str]
    networks: tuple[Network, ...]

    @classmethod
    def parse(cls, value: str) -> Allowed:
        hosts: set[str] = set()
        networks: list[Network] = []
        for entry in webhook_allow_entries(value):
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry)
        return cls(frozenset(hosts), tuple(networks))

    def covers(self, address: Address) -> bool:
        return any(address in network for network in self.networks)


def _plain(address: Address) -> Address:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def why_refused(address: Address, own: frozenset[Address]) -> str | None:
    """Why an address may not be a webhook's target; None when it may."""
    address = _plain(address)
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        return "not an address a webhook can be sent to"
    if address in own:
        return "this server's own address"
    return None


@cache
def own_addresses() -> frozenset[Address]:
    """The addresses of this machine: those of every network interface, and those its
    name resolves to (a name may point at an address another machine forwards here)."""
    found: set[Address] = set()
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family in (socket.AF_INET, socket.AF_INET6):
                found.add(_parsed(address.address))
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(socket.gethostname(), None, type=socket.SOCK_STREAM):
            found.add(_parsed(str(info[4][0])))
    return frozenset(found)


def _parsed(text: str) -> Address:
    # An IPv6 link-local address carries its interface: fe80::1%eth0.
    return _plain(ipaddress.ip_address(text.split("%", 1)[0]))


def split_url(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused("the url must be http:// or https:// with a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise TargetRefused("the url's port is not a number from 1 to 65535") from None
    return parts.scheme, parts.hostname.lower(), port


async def resolve(url: str, allow: str) -> Target:
    """The address to post `url` to, after checking every address its host resolves to."""
    scheme, host, port = split_url(url)
    allowed = Allowed.parse(allow)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise TargetRefused(f"{host} does not resolve: {exc}") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses:
        raise TargetRefused(f"{host} does not resolve")
    if host not in allowed.hosts:
        for address in addresses:
            if allowed.covers(_plain(address)):
                continue
            reason = why_refused(address, own_addresses())
            if reason is not None:
                raise TargetRefused(
                    f"{host} resolves to {address}, {reason}; "
                    "ODS_WEBHOOK_ALLOW can allow it explicitly"
                )
    return Target(url=url, scheme=scheme, host=host, port=port, address=str(addresses[0]))
