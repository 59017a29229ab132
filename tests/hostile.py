"""Hostile inputs shared by the guard, download and end-to-end tests.

- :data:`GUARD_CASES`: addresses with the range the guard must name (None: a public address it must allow).
- :data:`HOSTILE_URLS`: URLs and paths a scraped table might hold, with the status the download stage must give each
  under default options; none of them needs the network (literal addresses are refused before any connection).
- :class:`StaticResolver`: maps made-up host names to chosen addresses, so a test can make a name resolve to the
  cloud metadata service without DNS.
- :func:`hermetic_session`: a download session that cannot reach past 127.0.0.0/8 even if the guard failed, and that
  records which requests were really sent.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from clustering.config import DownloadOptions
from clustering.ingest.guard import AddressGuard, GuardedResolver

# (address, kind the guard names or None when allowed, text the error must hold)
GUARD_CASES = [
    # IPv4 special-purpose registry
    ("0.0.0.0", "unspecified", "reaches this machine"),
    ("0.1.2.3", "this-network", "RFC 791"),
    ("10.1.2.3", "private-use", "RFC 1918"),
    ("100.64.0.1", "shared (carrier-grade NAT)", "RFC 6598"),
    ("100.100.100.200", "shared (carrier-grade NAT)", "Alibaba Cloud metadata"),
    ("127.0.0.1", "loopback", "RFC 1122"),
    ("127.255.255.254", "loopback", "RFC 1122"),
    ("169.254.169.254", "link-local", "cloud metadata at 169.254.169.254"),
    ("172.16.0.1", "private-use", "RFC 1918"),
    ("172.31.255.255", "private-use", "RFC 1918"),
    ("192.0.0.192", "IETF protocol assignment", "Oracle Cloud metadata at 192.0.0.192"),
    ("192.0.0.9", "IETF protocol assignment", "RFC 6890"),
    ("192.0.2.1", "documentation", "TEST-NET-1"),
    ("192.88.99.1", "6to4 relay anycast", "RFC 7526"),
    ("192.168.0.1", "private-use", "RFC 1918"),
    ("198.18.0.1", "benchmarking", "RFC 2544"),
    ("198.19.255.255", "benchmarking", "RFC 2544"),
    ("198.51.100.7", "documentation", "TEST-NET-2"),
    ("203.0.113.9", "documentation", "TEST-NET-3"),
    ("224.0.0.1", "multicast", "RFC 5771"),
    ("239.255.255.250", "multicast", "RFC 5771"),
    ("240.0.0.1", "reserved", "RFC 1112"),
    ("255.255.255.255", "limited broadcast", "RFC 919"),
    # IPv6 special-purpose registry and non-global address space
    ("::", "unspecified", "reaches this machine"),
    ("::1", "loopback", "RFC 4291"),
    ("::7f00:1", "IPv4-compatible", "deprecated"),
    ("64:ff9b:1::808:808", "local-use NAT64", "RFC 8215"),
    ("100::1", "discard-only", "RFC 6666"),
    ("2001:10::1", "IETF protocol assignment", "RFC 2928"),
    ("2001:2::1", "benchmarking", "RFC 5180"),
    ("2001:db8::1", "documentation", "RFC 3849"),
    ("3fff::1", "documentation", "RFC 9637"),
    ("5f00::1", "SRv6 SID", "RFC 9602"),
    ("fc00::1", "unique-local", "RFC 4193"),
    ("fd00:ec2::254", "unique-local", "AWS metadata at fd00:ec2::254"),
    ("fe80::1", "link-local", "RFC 4291"),
    ("fec0::1", "site-local", "deprecated by RFC 3879"),
    ("feff:ffff::1", "site-local", "deprecated by RFC 3879"),
    ("ff02::1", "multicast", "RFC 4291"),
    ("4000::1", "reserved", "outside the global unicast range 2000::/3"),
    ("::ffff:0:102:304", "reserved", "outside the global unicast range 2000::/3"),  # SIIT IPv4-translated
    # IPv6 addresses wrapping an IPv4 address: judged by the address inside
    ("::ffff:127.0.0.1", "loopback", "IPv4-mapped address wrapping 127.0.0.1 (loopback"),
    ("::ffff:169.254.169.254", "link-local", "IPv4-mapped address wrapping 169.254.169.254 (link-local: cloud"),
    ("::ffff:10.0.0.1", "private-use", "IPv4-mapped address wrapping 10.0.0.1"),
    ("2002:a9fe:a9fe::", "link-local", "6to4 address wrapping 169.254.169.254 (link-local: cloud metadata"),
    ("2002:a9fe:a9fe:1::1", "link-local", "6to4 address wrapping 169.254.169.254"),
    ("2002:7f00:1::1", "loopback", "6to4 address wrapping 127.0.0.1 (loopback"),
    ("2002:c0a8:101::1", "private-use", "6to4 address wrapping 192.168.1.1"),
    ("2002:c000:c0::", "IETF protocol assignment", "6to4 address wrapping 192.0.0.192"),
    ("64:ff9b::a9fe:a9fe", "link-local", "NAT64 address wrapping 169.254.169.254"),
    ("64:ff9b::7f00:1", "loopback", "NAT64 address wrapping 127.0.0.1"),
    ("64:ff9b:1::a9fe:a9fe", "link-local", "NAT64 address wrapping 169.254.169.254"),
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback", "Teredo address wrapping 127.0.0.1"),  # client
    ("2001:0:a00:1:8000:63bf:f7f7:f7f7", "private-use", "Teredo address wrapping 10.0.0.1"),  # server
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "documentation", "Teredo address wrapping 192.0.2.45"),  # RFC 4380's
    # Public addresses, including the wrapped forms of public IPv4 addresses and IANA's globally reachable rows
    ("8.8.8.8", None, ""),
    ("1.1.1.1", None, ""),
    ("172.32.0.1", None, ""),  # just past 172.16.0.0/12
    ("192.31.196.1", None, ""),  # AS112: globally reachable
    ("2606:4700:4700::1111", None, ""),
    ("2a00:1450:4001:80e::200e", None, ""),
    ("::ffff:8.8.8.8", None, ""),
    ("64:ff9b::808:808", None, ""),
    ("2002:808:808::1", None, ""),
    ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", None, ""),  # Teredo: public server, client 8.8.8.8
]

# URL or path -> status under default DownloadOptions, reached without any network traffic.
HOSTILE_URLS = {
    "file:///etc/passwd": "blocked_address",
    "file://localhost/etc/passwd": "blocked_address",
    "/etc/passwd": "blocked_address",
    "/proc/self/environ": "blocked_address",
    "file:///proc/self/environ": "blocked_address",
    "/dev/zero": "blocked_address",
    "/sys/kernel/notes": "blocked_address",
    "http://169.254.169.254/latest/meta-data/": "blocked_address",
    "http://192.0.0.192/opc/v2/instance/": "blocked_address",
    "http://[2002:a9fe:a9fe::]/latest/meta-data/": "blocked_address",
    "http://[2002:7f00:1::]/": "blocked_address",
    "http://[64:ff9b::a9fe:a9fe]/": "blocked_address",
    "http://[fec0::1]/": "blocked_address",
    "http://[::ffff:127.0.0.1]/": "blocked_address",
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/": "blocked_address",
    "http://127.1/": "invalid_url",
    "http://2130706433/": "invalid_url",
    "http://0177.0.0.1/": "invalid_url",
    "http://0x7f.0.0.1/": "invalid_url",
}

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


class StaticResolver(AbstractResolver):
    """Resolves the names of ``hosts`` (name -> address or list of addresses) and nothing else, without DNS."""

    def __init__(self, hosts: Mapping[str, str | list[str]]):
        self.hosts = {name: [a] if isinstance(a, str) else list(a) for name, a in hosts.items()}

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host not in self.hosts:
            raise OSError(socket.EAI_NONAME, f"{host} is not in the test resolver")
        return [_result(host, address, port) for address in self.hosts[host]]

    async def close(self) -> None:
        return None


def _result(host: str, address: str, port: int) -> ResolveResult:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return {"hostname": host, "host": address, "port": port, "family": family, "proto": 0, "flags": 0}


class LoopbackOnlyResolver(AbstractResolver):
    """Passes on answers inside 127.0.0.0/8 or ::1 only: the last line of defence should the guard let one through."""

    def __init__(self, inner: AbstractResolver):
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        infos = await self._inner.resolve(host, port, family)
        escaping = [i["host"] for i in infos if not any(ipaddress.ip_address(i["host"]) in n for n in LOOPBACK)]
        if escaping:
            raise OSError(socket.EAI_FAIL, f"test safety net: {host} -> {escaping} is outside loopback")
        return infos

    async def close(self) -> None:
        await self._inner.close()


class SentLog:
    """What really left the process: connections made and requests written. Stays empty when the guard refuses."""

    def __init__(self):
        self.connections = 0
        self.sent: list[str] = []

    def trace_config(self) -> aiohttp.TraceConfig:
        trace = aiohttp.TraceConfig()
        trace.on_request_start.append(self._refuse_escaping_literals)
        trace.on_connection_create_end.append(self._on_connected)
        trace.on_request_headers_sent.append(self._on_sent)
        return trace

    async def _refuse_escaping_literals(self, session, context, params) -> None:
        # Literal addresses skip resolvers; the stage checks them itself first, and this stops one the check missed.
        try:
            address = ipaddress.ip_address(params.url.host)
        except ValueError:
            return
        if not any(address in n for n in LOOPBACK):
            raise RuntimeError(f"test safety net: a request to {address} got past the guard")

    async def _on_connected(self, session, context, params) -> None:
        self.connections += 1

    async def _on_sent(self, session, context, params) -> None:
        self.sent.append(params.url.host)


def hermetic_session(
    options: DownloadOptions, guard: AddressGuard, hosts: Mapping[str, str | list[str]], log: SentLog
) -> aiohttp.ClientSession:
    """A session whose names resolve through ``hosts`` and then the guard, and never reach past loopback.

    Call it inside the event loop that uses it, and pass the same ``guard`` to ``fetch_all`` (literal addresses).
    """
    resolver = LoopbackOnlyResolver(GuardedResolver(guard, StaticResolver(hosts)))
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(resolver=resolver),
        timeout=aiohttp.ClientTimeout(total=options.read_timeout, sock_connect=options.connect_timeout),
        trust_env=False,
        trace_configs=[log.trace_config()],
    )
