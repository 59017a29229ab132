"""What the download stage may touch: network addresses (checked against the IANA special-purpose registries) and
local files (off for URL tables, never the kernel's pseudo-filesystems).

A URL table is untrusted input: researchers scrape it from posts, so a row may name the cloud metadata service, an
intranet host or ``/proc/self/environ``. The address guard decides from an explicit table rather than ``ipaddress``'s
``is_private``/``is_global`` flags, whose answers change between Python versions, and it unwraps IPv6 addresses that
carry an IPv4 address (IPv4-mapped, 6to4, NAT64, Teredo), since traffic to those ends at the IPv4 address inside.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import socket
from collections.abc import Iterable
from pathlib import Path

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from clustering.config import DownloadOptions

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclasses.dataclass(frozen=True)
class SpecialRange:
    """One row of the guard's table.

    Attributes
    ----------
    network : IPv4Network or IPv6Network
    name : str
        What the range is ("loopback", "link-local", "6to4"...).
    why : str
        Why it matters and where it is defined, shown in the error.
    reachable : bool
        IANA's "globally reachable": such a range is allowed (the IPv4 address a wrapper carries is still checked).
    """

    network: Network
    name: str
    why: str
    reachable: bool = False


def _range(cidr: str, name: str, why: str, *, reachable: bool = False) -> SpecialRange:
    return SpecialRange(ipaddress.ip_network(cidr), name, why, reachable)


# The IANA IPv4 Special-Purpose Address Registry (RFC 6890 and its updates) plus multicast from the IPv4 address space
# registry. Its globally reachable rows (AS112 192.31.196.0/24 and 192.175.48.0/24, AMT 192.52.193.0/24) are public
# hosts like any other and are left out; 192.0.0.0/24 is blocked whole, its two anycast service addresses included.
IPV4_RANGES = (
    _range("0.0.0.0/8", "this-network", "RFC 791; not a destination"),
    _range("0.0.0.0/32", "unspecified", "RFC 1122; connecting to it reaches this machine"),
    _range("10.0.0.0/8", "private-use", "RFC 1918"),
    _range("100.64.0.0/10", "shared (carrier-grade NAT)", "RFC 6598; Alibaba Cloud metadata at 100.100.100.200"),
    _range("127.0.0.0/8", "loopback", "RFC 1122"),
    _range("169.254.0.0/16", "link-local", "cloud metadata at 169.254.169.254; RFC 3927"),
    _range("172.16.0.0/12", "private-use", "RFC 1918"),
    _range("192.0.0.0/24", "IETF protocol assignment", "RFC 6890; Oracle Cloud metadata at 192.0.0.192"),
    _range("192.0.2.0/24", "documentation", "TEST-NET-1, RFC 5737"),
    _range("192.88.99.0/24", "6to4 relay anycast", "deprecated by RFC 7526"),
    _range("192.168.0.0/16", "private-use", "RFC 1918"),
    _range("198.18.0.0/15", "benchmarking", "RFC 2544"),
    _range("198.51.100.0/24", "documentation", "TEST-NET-2, RFC 5737"),
    _range("203.0.113.0/24", "documentation", "TEST-NET-3, RFC 5737"),
    _range("224.0.0.0/4", "multicast", "RFC 5771"),
    _range("240.0.0.0/4", "reserved", "RFC 1112"),
    _range("255.255.255.255/32", "limited broadcast", "RFC 919"),
)
# The IANA IPv6 Special-Purpose Address Registry plus the non-global blocks of the IPv6 address space registry
# (unique-local, link-local, site-local, multicast). Sub-blocks of 2001::/23 that IANA marks globally reachable (AMT,
# ORCHIDv2, anycast service addresses, AS112) are blocked with it: no image host lives there.
IPV6_RANGES = (
    _range("::/128", "unspecified", "RFC 4291; connecting to it reaches this machine"),
    _range("::1/128", "loopback", "RFC 4291"),
    _range("::/96", "IPv4-compatible", "deprecated by RFC 4291"),
    _range("::ffff:0:0/96", "IPv4-mapped", "RFC 4291", reachable=True),
    _range("64:ff9b::/96", "NAT64", "RFC 6052", reachable=True),
    _range("64:ff9b:1::/48", "local-use NAT64", "translated inside a private network; RFC 8215"),
    _range("100::/64", "discard-only", "RFC 6666"),
    _range("2001::/23", "IETF protocol assignment", "RFC 2928"),
    _range("2001::/32", "Teredo", "RFC 4380", reachable=True),
    _range("2001:2::/48", "benchmarking", "RFC 5180"),
    _range("2001:db8::/32", "documentation", "RFC 3849"),
    _range("2002::/16", "6to4", "RFC 3056", reachable=True),
    _range("3fff::/20", "documentation", "RFC 9637"),
    _range("5f00::/16", "SRv6 SID", "RFC 9602"),
    _range("fc00::/7", "unique-local", "AWS metadata at fd00:ec2::254; RFC 4193"),
    _range("fe80::/10", "link-local", "RFC 4291"),
    _range("fec0::/10", "site-local", "deprecated by RFC 3879"),
    _range("ff00::/8", "multicast", "RFC 4291"),
)
# IANA allocates IPv6 unicast only from 2000::/3; outside it and the rows above, nothing is on the internet.
GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
OUTSIDE_GLOBAL_UNICAST = _range("::/0", "reserved", "outside the global unicast range 2000::/3, RFC 4291")
# Most specific first, so 0.0.0.0/32 wins over 0.0.0.0/8 and Teredo's 2001::/32 over 2001::/23.
_TABLE = sorted(IPV4_RANGES + IPV6_RANGES, key=lambda r: -r.network.prefixlen)
_NAT64 = tuple(ipaddress.ip_network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48"))


@dataclasses.dataclass(frozen=True)
class Blocked:
    """Why an address is refused: the range it falls in, and the IPv6 mechanism that wrapped it, if any."""

    range: SpecialRange
    via: str | None = None
    inner: ipaddress.IPv4Address | None = None

    @property
    def kind(self) -> str:
        return self.range.name

    def __str__(self) -> str:
        if self.via is None:
            return f"{_article(self.range.name)} {self.range.name} address ({self.range.why})"
        return f"{_article(self.via)} {self.via} address wrapping {self.inner} ({self.range.name}: {self.range.why})"


def _article(word: str) -> str:
    return "an" if word[0].lower() in "aeiou" else "a"


def lookup(address: Address) -> SpecialRange | None:
    """The most specific row of the table holding ``address``, or None."""
    return next((r for r in _TABLE if r.network.version == address.version and address in r.network), None)


def embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[str, tuple[ipaddress.IPv4Address, ...]] | None:
    """The mechanism and IPv4 address(es) an IPv6 address carries (Teredo: server and client), or None."""
    if address.ipv4_mapped is not None:
        return "IPv4-mapped", (address.ipv4_mapped,)
    if address.sixtofour is not None:
        return "6to4", (address.sixtofour,)
    if address.teredo is not None:
        return "Teredo", address.teredo
    if any(address in prefix for prefix in _NAT64):  # RFC 6052 /96 layout: the last 32 bits
        return "NAT64", (ipaddress.IPv4Address(int(address) & 0xFFFFFFFF),)
    return None


def classify(address: Address) -> Blocked | None:
    """Why ``address`` must not be connected to, or None when it is a public internet address."""
    if isinstance(address, ipaddress.IPv6Address):
        wrapped = embedded_ipv4(address)
        if wrapped is not None:
            via, inner = wrapped
            for ipv4 in inner:
                blocked = classify(ipv4)
                if blocked is not None:
                    return Blocked(blocked.range, via, ipv4)
    row = lookup(address)
    if row is not None:
        return None if row.reachable else Blocked(row)
    if isinstance(address, ipaddress.IPv6Address) and address not in GLOBAL_UNICAST:
        return Blocked(OUTSIDE_GLOBAL_UNICAST)
    return None


# --- addresses ---------------------------------------------------------------------------------------------------


class BlockedAddressError(Exception):
    """A host is or resolves to an address the guard refuses.

    Deliberately not an ``OSError``: aiohttp would wrap that into a DNS error and the reason would be lost.
    """

    def __init__(self, host: str, address: str, reason: str):
        self.host, self.address, self.reason = host, address, reason
        where = address if host == address else f"{host} resolves to {address}"
        super().__init__(f"{where}, {reason}")


@dataclasses.dataclass(frozen=True)
class AddressGuard:
    """Which resolved addresses may be connected to.

    Parameters
    ----------
    allow_private : bool, default False
        Allow every address (``DownloadOptions.allow_private_networks``): for intranet image hosts and local tests.
    trusted : tuple of ip networks, default ()
        Networks allowed even when ``allow_private`` is off, e.g. a local test server on 127.0.0.1 while the cloud
        metadata service and the rest of the special ranges stay blocked.
    """

    allow_private: bool = False
    trusted: tuple[Network, ...] = ()

    @classmethod
    def from_options(cls, options: DownloadOptions, trusted: Iterable[str] = ()) -> AddressGuard:
        return cls(options.allow_private_networks, tuple(ipaddress.ip_network(n) for n in trusted))

    def check(self, host: str, address: str) -> None:
        """Raise :class:`BlockedAddressError` unless connecting to ``address`` (resolved from ``host``) is allowed."""
        if self.allow_private:
            return
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:  # a resolver result we cannot classify is refused, not trusted
            raise BlockedAddressError(host, address, "an address that cannot be parsed") from None
        if any(ip in net for net in self.trusted):
            return
        blocked = classify(ip)
        if blocked is not None:
            raise BlockedAddressError(host, address, str(blocked))


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that checks every resolved address with an :class:`AddressGuard`.

    The connector connects to exactly the addresses this returns, so the check and the connection see the same
    address: no gap for DNS rebinding between a pre-flight lookup and the real one. aiohttp skips resolvers for
    literal IP hosts, so the download stage checks those itself before connecting.
    """

    def __init__(self, guard: AddressGuard, inner: AbstractResolver | None = None):
        self._guard = guard
        self._inner = inner if inner is not None else DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        infos = await self._inner.resolve(host, port, family)
        for info in infos:
            self._guard.check(host, info["host"])
        return infos

    async def close(self) -> None:
        await self._inner.close()


def noncanonical_ipv4(host: str) -> str | None:
    """Why a numeric host such as ``127.1``, ``2130706433`` or ``0177.0.0.1`` is refused, or None for any other host.

    Such spellings are IPv4 addresses to ``inet_aton`` and browsers but not to every parser; refusing them keeps the
    host the guard checks and the host a library connects to the same.
    """
    labels = host.lower().removesuffix(".").split(".")
    numeric = 1 <= len(labels) <= 4 and all(_is_number(label) for label in labels)
    if not numeric or _is_dotted_quad(host):
        return None
    try:
        meaning = f"; it reads as {socket.inet_ntoa(socket.inet_aton(host.removesuffix('.')))}"
    except OSError:
        meaning = ""
    return f"host {host!r} is not a canonical IPv4 address (write four decimal numbers{meaning})"


def _is_number(label: str) -> bool:
    return re.fullmatch(r"0x[0-9a-f]*|[0-9]+", label) is not None


def _is_dotted_quad(host: str) -> bool:
    try:
        return str(ipaddress.IPv4Address(host)) == host
    except ValueError:
        return False


# --- local files -------------------------------------------------------------------------------------------------

# Kernel pseudo-filesystems hold live process and device state (/proc/self/environ holds secrets, /dev/zero never
# ends), never images: refused whatever the options.
SYSTEM_ROOTS = ("/proc", "/sys", "/dev")


class BlockedPathError(Exception):
    """A local path the :class:`LocalFileGuard` refuses; the message says why and names the flag where one helps."""


@dataclasses.dataclass(frozen=True)
class LocalFileGuard:
    """Which local files the download stage may read.

    Parameters
    ----------
    allow_any : bool, default False
        Read any local path or ``file://`` URL (``DownloadOptions.allow_local_files``).
    root : str, optional
        Real path of the image folder given as ``--input``: its files may be read even when ``allow_any`` is off.
    """

    allow_any: bool = False
    root: str | None = None

    @classmethod
    def from_options(cls, options: DownloadOptions, root: str | None = None) -> LocalFileGuard:
        return cls(options.allow_local_files, os.path.realpath(root) if root else None)

    def resolve(self, path: Path) -> str:
        """The real path of ``path`` (symlinks resolved) when it may be read; otherwise raise BlockedPathError."""
        real = os.path.realpath(path)
        system = next((root for root in SYSTEM_ROOTS if _inside(real, root)), None)
        if system is not None:
            shown = str(path) if real == str(path) else f"{path} (really {real})"
            raise BlockedPathError(f"{shown} is under {system}: system files are never read")
        if self.allow_any or (self.root is not None and _inside(real, self.root)):
            return real
        where = "outside the input folder " if self.root is not None else ""
        raise BlockedPathError(f"local files {where}are off (allow them with --allow-local-files): {path}")


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")
