"""The address guard: its table of special-purpose ranges, unwrapped IPv6 forms, resolved names and numeric hosts.

Nothing here sends traffic outside 127.0.0.0/8: made-up names resolve through a test resolver, and the session
refuses any answer or literal outside loopback should the guard ever let one through (tests/hostile.py).
"""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from clustering.config import DownloadOptions
from clustering.ingest.download import fetch_all
from clustering.ingest.guard import (
    IPV4_RANGES,
    IPV6_RANGES,
    AddressGuard,
    BlockedAddressError,
    classify,
    lookup,
    noncanonical_ipv4,
)
from tests.fixtures_images import FAST_DOWNLOAD
from tests.hostile import GUARD_CASES, HOSTILE_URLS, SentLog, hermetic_session

GUARDED = DownloadOptions(**{**FAST_DOWNLOAD, "allow_private_networks": False, "allow_local_files": False})


@pytest.mark.parametrize(("address", "kind", "needle"), GUARD_CASES)
def test_guard_table(address, kind, needle):
    blocked = classify(ipaddress.ip_address(address))
    assert (blocked.kind if blocked else None) == kind
    if blocked is None:
        AddressGuard().check(address, address)  # allowed: no exception
        return
    assert needle in str(blocked)
    with pytest.raises(BlockedAddressError) as info:
        AddressGuard().check("img.example", address)
    assert str(info.value) == f"img.example resolves to {address}, {blocked}"


def test_every_row_of_the_table_has_a_case():
    assert len(GUARD_CASES) >= 40
    rows_hit = {lookup(ipaddress.ip_address(address)) for address, _, _ in GUARD_CASES}
    missing = [str(row.network) for row in IPV4_RANGES + IPV6_RANGES if row not in rows_hit]
    assert missing == []


def test_wrapped_forms_name_the_mechanism_and_the_address_inside():
    assert str(classify(ipaddress.ip_address("2002:a9fe:a9fe::"))) == (
        "a 6to4 address wrapping 169.254.169.254 (link-local: cloud metadata at 169.254.169.254; RFC 3927)"
    )
    assert str(classify(ipaddress.ip_address("::ffff:127.0.0.1"))) == (
        "an IPv4-mapped address wrapping 127.0.0.1 (loopback: RFC 1122)"
    )


def test_switches_and_trusted_networks():
    AddressGuard(allow_private=True).check("metadata", "169.254.169.254")
    trusted = AddressGuard(trusted=(ipaddress.ip_network("127.0.0.1/32"),))
    trusted.check("localhost", "127.0.0.1")
    for address in ("127.0.0.2", "::ffff:127.0.0.1", "2002:7f00:1::"):  # trust is for the network as written
        with pytest.raises(BlockedAddressError, match="loopback"):
            trusted.check(address, address)
    with pytest.raises(BlockedAddressError, match="cannot be parsed"):
        AddressGuard().check("odd", "not-an-address")


# --- through the download stage ----------------------------------------------------------------------------------

RESOLVED = {
    "metadata.test": ("169.254.169.254", "link-local"),
    "oracle.test": ("192.0.0.192", "Oracle Cloud metadata"),
    "sixtofour.test": ("2002:a9fe:a9fe::1", "6to4 address wrapping 169.254.169.254"),
    "sixtofour-loopback.test": ("2002:7f00:1::1", "6to4 address wrapping 127.0.0.1"),
    "nat64.test": ("64:ff9b::7f00:1", "NAT64 address wrapping 127.0.0.1"),
    "teredo.test": ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo address wrapping 127.0.0.1"),
    "sitelocal.test": ("fec0::1", "site-local"),
    "intranet.test": ("10.0.0.7", "private-use"),
}


def run_hermetic(urls, hosts, *, guard: AddressGuard | None = None):
    guard = guard or AddressGuard.from_options(GUARDED)
    log = SentLog()

    async def run():
        async with hermetic_session(GUARDED, guard, hosts, log) as session:
            return await fetch_all(urls, GUARDED, session, guard=guard)

    return asyncio.run(run()), log


def test_names_resolving_to_special_addresses_are_blocked_before_any_request():
    hosts = {name: address for name, (address, _) in RESOLVED.items()}
    hosts["mixed.test"] = ["93.184.215.14", "10.0.0.1"]  # one bad answer taints the name: the connector may pick it
    urls = [f"http://{name}/a.jpg" for name in hosts]
    results, log = run_hermetic(urls, hosts)
    for url, result in zip(urls, results, strict=True):
        name = url.split("/")[2]
        assert result.status == "blocked_address", (url, result.error)
        address = hosts[name] if name != "mixed.test" else "10.0.0.1"
        assert result.error.startswith(f"{name} resolves to {address}, ")
        if name in RESOLVED:
            assert RESOLVED[name][1] in result.error
    assert (log.sent, log.connections) == ([], 0)


@pytest.mark.parametrize(
    "url", [u for u, status in HOSTILE_URLS.items() if u.startswith("http") and status == "blocked_address"]
)
def test_literal_special_addresses_are_blocked_before_any_request(url):
    (result,), log = run_hermetic([url], {})
    assert result.status == "blocked_address"
    assert (log.sent, log.connections) == ([], 0)


def test_public_answers_pass_the_guard(image_server):
    # The guard lets a public answer through; the test session's own safety net then stops it before any traffic.
    (result,), log = run_hermetic(["http://public.test/a.jpg"], {"public.test": "93.184.215.14"})
    assert result.status == "connection_error"
    assert "test safety net" in result.error
    assert (log.sent, log.connections) == ([], 0)


def test_redirect_to_a_name_resolving_to_metadata_is_blocked(image_server):
    guard = AddressGuard.from_options(GUARDED, trusted=("127.0.0.1/32",))
    url = image_server.url("bad/redirect-to-private") + "?to=http://metadata.test/latest/"
    (result,), log = run_hermetic([url], {"metadata.test": "169.254.169.254"}, guard=guard)
    assert result.status == "blocked_address"
    assert result.error.startswith("metadata.test resolves to 169.254.169.254, a link-local address")
    assert log.sent == ["127.0.0.1"]  # only the first hop, to the trusted test server


# --- numeric hosts -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "meaning"),
    [
        ("127.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("169.254.43518", "169.254.169.254"),
        ("017700000001", "127.0.0.1"),
    ],
)
def test_noncanonical_ipv4_hosts_are_invalid_urls_that_say_so(host, meaning):
    (result,), log = run_hermetic([f"http://{host}/a.jpg"], {})
    assert result.status == "invalid_url"
    assert result.error == (
        f"host {host!r} is not a canonical IPv4 address (write four decimal numbers; it reads as {meaning})"
    )
    assert (log.sent, log.connections) == ([], 0)


@pytest.mark.parametrize("host", ["127.0.0.1", "8.8.8.8", "img.example", "123.example.com", "cdn-1.example", "a.b.c.d"])
def test_ordinary_hosts_are_not_numeric_spellings(host):
    assert noncanonical_ipv4(host) is None


def test_redirect_to_a_noncanonical_host_is_refused(image_server):
    guard = AddressGuard.from_options(GUARDED, trusted=("127.0.0.1/32",))
    url = image_server.url("bad/redirect-to-private") + "?to=http://2130706433/"
    (result,), log = run_hermetic([url], {}, guard=guard)
    assert result.status == "invalid_url"
    assert "host '2130706433' is not a canonical IPv4 address" in result.error
    assert log.sent == ["127.0.0.1"]
