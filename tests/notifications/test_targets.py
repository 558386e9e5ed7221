"""Where webhooks may post: the address checks after resolution, and ODS_WEBHOOK_ALLOW."""

from __future__ import annotations

import ipaddress
import socket

import psutil
import pytest

from ods.notifications.webhooks.targets import TargetRefused, own_addresses, resolve, why_refused


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "127.8.9.10", "::1", "169.254.169.254", "fe80::1", "0.0.0.0", "224.0.0.1"],
)
def test_loopback_link_local_and_unusable_addresses_are_refused(address: str) -> None:
    assert why_refused(ipaddress.ip_address(address), frozenset()) is not None


def test_an_ipv4_mapped_loopback_is_loopback() -> None:
    assert why_refused(ipaddress.ip_address("::ffff:127.0.0.1"), frozenset()) is not None
    assert why_refused(ipaddress.ip_address("::ffff:169.254.169.254"), frozenset()) is not None


@pytest.mark.parametrize("address", ["10.1.2.3", "192.168.1.10", "172.16.0.5", "93.184.216.34"])
def test_private_use_and_public_addresses_are_allowed(address: str) -> None:
    assert why_refused(ipaddress.ip_address(address), frozenset()) is None


def test_the_servers_own_addresses_are_refused() -> None:
    own = ipaddress.ip_address("10.20.30.40")
    assert why_refused(own, frozenset({own})) == "this server's own address"
    for address in own_addresses():
        assert why_refused(address, own_addresses()) is not None


async def test_every_address_of_this_machine_is_refused_not_only_its_names() -> None:
    """A private-use address of one of this machine's interfaces would reach the
    server itself (its admin API, its peers' API) from the inside."""
    interfaces = {
        address.address.split("%", 1)[0]
        for addresses in psutil.net_if_addrs().values()
        for address in addresses
        if address.family in (socket.AF_INET, socket.AF_INET6)
    }
    assert interfaces, "no interface addresses found"
    for text in interfaces:
        host = f"[{text}]" if ":" in text else text
        with pytest.raises(TargetRefused):
            await resolve(f"http://{host}:8000/api/admin/about", "")


async def test_resolve_refuses_loopback_names_and_allows_what_is_listed() -> None:
    with pytest.raises(TargetRefused, match="loopback"):
        await resolve("http://localhost:8080/hook", "")
    target = await resolve("http://localhost:8080/hook", "localhost")
    assert target.host == "localhost"
    assert ipaddress.ip_address(target.address).is_loopback
    assert target.port == 8080
    by_network = await resolve("https://127.0.0.1/hook", "127.0.0.0/8")
    assert by_network.address == "127.0.0.1"
    assert by_network.port == 443


@pytest.mark.parametrize(
    "url", ["ftp://example.org/", "http:///nohost", "https://example.org:99999/", "not a url"]
)
async def test_urls_that_are_not_http_with_a_host_are_refused(url: str) -> None:
    with pytest.raises(TargetRefused):
        await resolve(url, "")
