"""Download stage: fetch every URL of a batch with bounded concurrency, retries, a byte cap and an address guard.

Every URL yields exactly one :class:`FetchResult`; nothing a URL does (bad syntax, a dead host, an endless body, a
redirect into the cloud metadata service) raises out of a batch. Statuses come from :class:`clustering.schema.Status`:

- ``ok``: 2xx with a body of at most ``max_bytes`` (or a readable local file); ``content`` holds the bytes.
- ``invalid_url``: empty, malformed, no host, or a scheme other than http, https and file (redirects: http(s) only).
- ``blocked_address``: the host is, or resolves to, a loopback/private/link-local/multicast/reserved/unspecified
  address and ``allow_private_networks`` is off; the error names the address.
- ``http_error``: a 4xx/5xx/unexpected 3xx after retries (``"HTTP 404 Not Found"``) or ``"too many redirects (>5)"``.
- ``timeout``: connect or read took too long on the last attempt.
- ``connection_error``: refused, reset, DNS failure, TLS failure; also a missing or unreadable local file
  (``"file not found: ..."``), the closest existing class, since nothing could be read from the source.
- ``too_large``: Content-Length, the streamed body or the local file exceeds ``max_bytes``.

:func:`fetch_all` is the pure-asyncio core (usable from a notebook); :class:`Downloader` is the Ray Data callable class
that keeps one session per actor and turns results into Arrow columns.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import email.utils
import ipaddress
import math
import random
import socket
import stat
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

import aiohttp
import pyarrow as pa
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from clustering import schema
from clustering.config import DownloadOptions
from clustering.schema import Status

HTTP_SCHEMES = frozenset({"http", "https"})
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
# 64 KiB reads: big enough that a 200 KB image is a handful of awaits, small enough that the byte cap overshoots by
# at most one chunk.
CHUNK_SIZE = 64 * 1024
# Resolved addresses are cached this long per host. The guard checks results before they enter the cache, so caching
# never lets an unchecked address through; 10 s is aiohttp's own default.
DNS_CACHE_SECONDS = 10
MAX_ERROR_CHARS = 200

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclasses.dataclass(frozen=True)
class FetchResult:
    """Outcome of fetching one URL.

    Attributes
    ----------
    status : str
        A :class:`clustering.schema.Status` value.
    error : str or None
        Short human-readable reason; None when ``status == "ok"``.
    http_status : int or None
        Status code of the last HTTP response; None for local files and failures before any response.
    n_bytes : int or None
        Length of ``content``; None unless content was fetched.
    content : bytes or None
        The body; None unless ``status == "ok"``.
    """

    status: str
    error: str | None = None
    http_status: int | None = None
    n_bytes: int | None = None
    content: bytes | None = None

    @classmethod
    def ok(cls, content: bytes, http_status: int | None = None) -> FetchResult:
        return cls(Status.OK.value, None, http_status, len(content), content)

    @classmethod
    def fail(cls, status: Status, error: str, http_status: int | None = None) -> FetchResult:
        if len(error) > MAX_ERROR_CHARS:
            error = error[: MAX_ERROR_CHARS - 3] + "..."
        return cls(status.value, error, http_status)


# --- address guard -----------------------------------------------------------------------------------------------


class BlockedAddressError(Exception):
    """A host is or resolves to an address the guard refuses.

    Deliberately not an ``OSError``: aiohttp would wrap that into a DNS error and the reason would be lost.
    """

    def __init__(self, host: str, address: str, reason: str):
        self.host, self.address, self.reason = host, address, reason
        where = address if host == address else f"{host} resolves to {address}"
        super().__init__(f"{where}, a {reason} address")


def block_reason(address: Address) -> str | None:
    """Why ``address`` must not be fetched from ("loopback", "private", ...), or None if it is public."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is loopback in disguise
    # Most specific first: 169.254.169.254 is also "private", but "link-local" says it is the metadata service range.
    for reason in ("unspecified", "loopback", "link_local", "multicast", "reserved", "private"):
        if getattr(address, f"is_{reason}"):
            return reason.replace("_", "-")
    if not address.is_global:  # e.g. 100.64.0.0/10, carrier-grade NAT: not "private", still not the internet
        return "non-global"
    return None


@dataclasses.dataclass(frozen=True)
class AddressGuard:
    """Which resolved addresses may be connected to.

    Parameters
    ----------
    allow_private : bool, default False
        Allow every address (``DownloadOptions.allow_private_networks``): for intranet image hosts and local tests.
    trusted : tuple of ip networks, default ()
        Networks allowed even when ``allow_private`` is off, e.g. a local test server on 127.0.0.1 while the cloud
        metadata service and the rest of the private ranges stay blocked.
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
            raise BlockedAddressError(host, address, "unparseable") from None
        if any(ip in net for net in self.trusted):
            return
        reason = block_reason(ip)
        if reason is not None:
            raise BlockedAddressError(host, address, reason)


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that checks every resolved address with an :class:`AddressGuard`.

    The connector connects to exactly the addresses this returns, so the check and the connection see the same
    address: no gap for DNS rebinding between a pre-flight lookup and the real one. aiohttp skips resolvers for
    literal IP hosts, so :class:`Downloader` checks those itself before connecting.
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


# --- URL classification ------------------------------------------------------------------------------------------


def parse_target(url: object) -> yarl.URL | Path | FetchResult:
    """Classify one input URL: an http(s) URL to fetch, a local path to read, or an ``invalid_url`` result."""
    if url is not None and not isinstance(url, str):
        return FetchResult.fail(Status.INVALID_URL, f"URL must be a string, got {type(url).__name__}")
    if url is None or not url.strip():
        return FetchResult.fail(Status.INVALID_URL, "empty URL")
    text = url.strip()
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        return FetchResult.fail(Status.INVALID_URL, f"malformed URL: {exc}")
    scheme = parts.scheme.lower()
    if scheme == "":
        if parts.netloc:
            return FetchResult.fail(Status.INVALID_URL, f"no scheme in {text!r} (protocol-relative URL)")
        return Path(text)
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            return FetchResult.fail(Status.INVALID_URL, f"file URL with a remote host: {parts.netloc!r}")
        if not parts.path:
            return FetchResult.fail(Status.INVALID_URL, "file URL without a path")
        return Path(unquote(parts.path))
    return parse_http_url(text)


def parse_http_url(text: str) -> yarl.URL | FetchResult:
    """An http(s) URL with a host, or an ``invalid_url`` result saying what is wrong."""
    scheme = text.partition(":")[0].lower()
    if scheme not in HTTP_SCHEMES:
        return FetchResult.fail(Status.INVALID_URL, f"unsupported scheme {scheme!r}")
    try:
        url = yarl.URL(text)
    except (ValueError, TypeError) as exc:
        return FetchResult.fail(Status.INVALID_URL, f"malformed URL: {exc}")
    if not url.host:
        return FetchResult.fail(Status.INVALID_URL, "URL has no host")
    return url


def literal_ip(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or HTTP-date form); None if absent or invalid."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive parse means the zone was missing
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


# --- local files -------------------------------------------------------------------------------------------------


def read_local_file(path: Path, max_bytes: int) -> FetchResult:
    """Read a local file, capped at ``max_bytes``; missing or unreadable files are ``connection_error``."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO or device would block or never end
            return FetchResult.fail(Status.CONNECTION_ERROR, f"not a regular file: {path}")
        if info.st_size > max_bytes:
            return FetchResult.fail(Status.TOO_LARGE, f"file is {info.st_size} bytes, over max_bytes {max_bytes}")
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)  # the file may have grown since stat()
    except FileNotFoundError:
        return FetchResult.fail(Status.CONNECTION_ERROR, f"file not found: {path}")
    except OSError as exc:
        return FetchResult.fail(Status.CONNECTION_ERROR, f"cannot read {path}: {exc.strerror or exc}")
    if len(data) > max_bytes:
        return FetchResult.fail(Status.TOO_LARGE, f"file exceeds max_bytes {max_bytes}")
    return FetchResult.ok(data)


# --- HTTP --------------------------------------------------------------------------------------------------------


def create_session(
    options: DownloadOptions, *, guard: AddressGuard | None = None, trace_configs: Sequence = ()
) -> aiohttp.ClientSession:
    """An aiohttp session configured from ``options``; call it inside the event loop that will use it.

    Parameters
    ----------
    options : DownloadOptions
        Limits, timeouts and User-Agent.
    guard : AddressGuard, optional
        Address policy; defaults to ``AddressGuard.from_options(options)``.
    trace_configs : sequence of aiohttp.TraceConfig, default ()
        Request tracing hooks (tests use them to prove a blocked request never left the process).
    """
    guard = guard if guard is not None else AddressGuard.from_options(options)
    connector = aiohttp.TCPConnector(
        # A backstop equal to our own semaphores, which are the binding limits (see _Fetcher).
        limit=options.max_in_flight,
        limit_per_host=options.per_host_limit,
        resolver=GuardedResolver(guard),
        ttl_dns_cache=DNS_CACHE_SECONDS,
    )
    timeout = aiohttp.ClientTimeout(
        # total caps one request including its body, so a server trickling bytes forever still ends.
        total=options.read_timeout,
        sock_connect=options.connect_timeout,
        sock_read=options.read_timeout,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        headers={"User-Agent": options.user_agent},
        # No proxies from the environment: a proxy would resolve hosts itself, out of the guard's sight.
        trust_env=False,
        # No cookies carried between unrelated URLs.
        cookie_jar=aiohttp.DummyCookieJar(),
        trace_configs=list(trace_configs),
    )


@dataclasses.dataclass(frozen=True)
class _Outcome:
    result: FetchResult
    retry: bool = False
    retry_after: float | None = None


class _HostLimiter:
    """One semaphore per host, dropped when no request for that host is waiting or running (bounded memory)."""

    def __init__(self, limit: int):
        self._limit = limit
        self._slots: dict[str, tuple[asyncio.Semaphore, int]] = {}

    @contextlib.asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        sem, users = self._slots.get(host, (None, 0))
        if sem is None:
            sem = asyncio.Semaphore(self._limit)
        self._slots[host] = (sem, users + 1)
        try:
            async with sem:
                yield
        finally:
            sem, users = self._slots[host]
            if users == 1:
                del self._slots[host]
            else:
                self._slots[host] = (sem, users - 1)


class _Fetcher:
    """Fetches URLs through one session with shared limits; one per event loop (per Ray actor)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        options: DownloadOptions,
        guard: AddressGuard,
        *,
        rng: random.Random,
        sleep: Callable[[float], Awaitable[object]],
    ):
        self.session, self.options, self.guard = session, options, guard
        self._rng, self._sleep = rng, sleep
        # Our own limits, taken before a request starts, rather than only the connector's: aiohttp's timeout clock
        # runs while a request waits for a pooled connection, so thousands of queued requests would time out in
        # the connector's queue. max_in_flight also bounds open sockets and bodies buffered at once
        # (max_in_flight * max_bytes of memory at worst); the per-host limit keeps a batch dominated by one CDN
        # from opening dozens of connections to it, which is what gets crawlers 429s and bans.
        self._in_flight = asyncio.Semaphore(options.max_in_flight)
        self._hosts = _HostLimiter(options.per_host_limit)

    async def fetch_many(self, urls: Sequence[object]) -> list[FetchResult]:
        """One result per URL, in order; each distinct URL is fetched once and shared by its duplicates."""
        unique = list(dict.fromkeys(u for u in urls if isinstance(u, str)))
        results = await asyncio.gather(*(self.fetch(u) for u in unique))
        by_url = dict(zip(unique, results, strict=True))
        return [by_url[u] if isinstance(u, str) else parse_target(u) for u in urls]

    async def fetch(self, url: object) -> FetchResult:
        target = parse_target(url)
        if isinstance(target, FetchResult):
            return target
        if isinstance(target, Path):
            async with self._in_flight:
                return await asyncio.to_thread(read_local_file, target, self.options.max_bytes)
        return await self._fetch_with_retries(target)

    async def _fetch_with_retries(self, url: yarl.URL) -> FetchResult:
        for attempt in range(self.options.retries + 1):
            outcome = await self._attempt(url)
            if not outcome.retry or attempt == self.options.retries:
                return outcome.result
            await self._sleep(self._delay(attempt, outcome.retry_after))
        raise AssertionError("unreachable: the loop returns on its last attempt")

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Jittered exponential backoff, at least the server's Retry-After (capped)."""
        # Jitter in 0.5-1.5x spreads retries from many actors so they do not hit a recovering host in lockstep.
        backoff = self.options.backoff_base * 2**attempt * self._rng.uniform(0.5, 1.5)
        if retry_after is None:
            return backoff
        return max(backoff, min(retry_after, self.options.retry_after_cap))

    async def _attempt(self, url: yarl.URL) -> _Outcome:
        """Follow one URL through its redirects once; every failure becomes an outcome, never an exception."""
        try:
            return await self._follow_redirects(url)
        except BlockedAddressError as exc:
            return _Outcome(FetchResult.fail(Status.BLOCKED_ADDRESS, str(exc)))
        except asyncio.TimeoutError as exc:  # before OSError: TimeoutError is an OSError subclass on 3.11+
            return _Outcome(FetchResult.fail(Status.TIMEOUT, self._timeout_message(exc)), retry=True)
        except aiohttp.InvalidURL as exc:
            return _Outcome(FetchResult.fail(Status.INVALID_URL, f"invalid URL: {exc}"))
        except aiohttp.ClientConnectorDNSError as exc:
            return self._dns_failure(exc)
        except aiohttp.ClientSSLError as exc:  # a bad certificate stays bad: no retry
            return _Outcome(FetchResult.fail(Status.CONNECTION_ERROR, f"TLS error: {exc}"))
        except aiohttp.ClientConnectorError as exc:
            message = f"cannot connect to {exc.host}:{exc.port}: {exc.strerror or exc.os_error}"
            return _Outcome(FetchResult.fail(Status.CONNECTION_ERROR, message), retry=True)
        except (aiohttp.ClientError, OSError) as exc:  # resets, disconnects, truncated bodies
            message = f"{type(exc).__name__}: {exc}".rstrip(": ")
            return _Outcome(FetchResult.fail(Status.CONNECTION_ERROR, message), retry=True)
        except Exception as exc:  # last resort: one odd URL must not abort a batch of thousands
            return _Outcome(FetchResult.fail(Status.CONNECTION_ERROR, f"{type(exc).__name__}: {exc}"))

    def _timeout_message(self, exc: BaseException) -> str:
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            return f"connect timed out after {self.options.connect_timeout:g} s"
        if isinstance(exc, aiohttp.SocketTimeoutError):
            return f"no data for {self.options.read_timeout:g} s"
        return f"request took longer than {self.options.read_timeout:g} s"

    def _dns_failure(self, exc: aiohttp.ClientConnectorDNSError) -> _Outcome:
        cause: BaseException | None = exc
        while cause is not None:  # the guard's error can arrive wrapped by the connector
            if isinstance(cause, BlockedAddressError):
                return _Outcome(FetchResult.fail(Status.BLOCKED_ADDRESS, str(cause)))
            cause = cause.__cause__ or cause.__context__
        # A name that does not exist will not exist in a second either; only "try again" answers are retried.
        transient = getattr(exc.os_error, "errno", None) == socket.EAI_AGAIN
        message = f"DNS lookup failed for {exc.host}: {exc.os_error.strerror or exc.os_error}"
        return _Outcome(FetchResult.fail(Status.CONNECTION_ERROR, message), retry=transient)

    async def _follow_redirects(self, url: yarl.URL) -> _Outcome:
        last_status = None
        for _hop in range(self.options.max_redirects + 1):
            step = await self._request(url)
            if isinstance(step, _Outcome):
                return step
            url, last_status = step
        message = f"too many redirects (>{self.options.max_redirects})"
        return _Outcome(FetchResult.fail(Status.HTTP_ERROR, message, last_status))

    async def _request(self, url: yarl.URL) -> _Outcome | tuple[yarl.URL, int]:
        """One request: a final outcome, or the (already validated) redirect target and the redirect status."""
        ip = literal_ip(url.host or "")
        if ip is not None:  # aiohttp does not pass literal IPs through the resolver, so check them here
            self.guard.check(str(ip), str(ip))
        async with (
            self._hosts.slot(url.host or ""),
            self._in_flight,
            self.session.get(url, allow_redirects=False) as response,
        ):
            if response.status in REDIRECT_CODES:
                return self._redirect_target(response)
            return await self._read_response(response)

    def _redirect_target(self, response: aiohttp.ClientResponse) -> _Outcome | tuple[yarl.URL, int]:
        location = response.headers.get("Location")
        if not location:
            message = f"HTTP {response.status} redirect without a Location header"
            return _Outcome(FetchResult.fail(Status.HTTP_ERROR, message, response.status))
        try:
            target = response.url.join(yarl.URL(location))
        except ValueError as exc:
            return _Outcome(FetchResult.fail(Status.INVALID_URL, f"bad redirect Location {location!r}: {exc}"))
        # Redirects may only lead to http(s): a redirect to file:// must never read a local file.
        parsed = parse_http_url(str(target))
        if isinstance(parsed, FetchResult):
            return _Outcome(FetchResult.fail(Status.INVALID_URL, f"redirect to {location!r}: {parsed.error}"))
        return parsed, response.status

    async def _read_response(self, response: aiohttp.ClientResponse) -> _Outcome:
        code = response.status
        if 200 <= code < 300:
            return _Outcome(await self._read_body(response))
        error = f"HTTP {code} {response.reason or ''}".strip()
        if code == 429 or 500 <= code < 600:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            return _Outcome(FetchResult.fail(Status.HTTP_ERROR, error, code), retry=True, retry_after=retry_after)
        return _Outcome(FetchResult.fail(Status.HTTP_ERROR, error, code))

    async def _read_body(self, response: aiohttp.ClientResponse) -> FetchResult:
        """The body, or ``too_large`` as soon as Content-Length or the bytes read so far exceed the cap."""
        cap = self.options.max_bytes
        declared = response.content_length
        if declared is not None and declared > cap:
            message = f"Content-Length {declared} exceeds max_bytes {cap}"
            return FetchResult.fail(Status.TOO_LARGE, message, response.status)
        chunks, total = [], 0
        async for chunk in response.content.iter_chunked(CHUNK_SIZE):
            total += len(chunk)
            if total > cap:
                return FetchResult.fail(Status.TOO_LARGE, f"body exceeds max_bytes {cap}", response.status)
            chunks.append(chunk)
        return FetchResult.ok(b"".join(chunks), response.status)


# --- public entry points -----------------------------------------------------------------------------------------


async def fetch_all(
    urls: Sequence[object],
    options: DownloadOptions,
    session: aiohttp.ClientSession | None = None,
    *,
    guard: AddressGuard | None = None,
    rng: random.Random | None = None,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> list[FetchResult]:
    """Fetch ``urls`` concurrently; one :class:`FetchResult` per URL, in input order.

    Parameters
    ----------
    urls : sequence of str or None
        http(s) URLs, ``file://`` URLs or local paths; anything else becomes ``invalid_url``. Duplicates are
        fetched once.
    options : DownloadOptions
        Concurrency, timeouts, byte cap, redirects, retries and the address policy.
    session : aiohttp.ClientSession, optional
        Session to reuse (see :func:`create_session`); by default one is created and closed around this call.
    guard : AddressGuard, optional
        Address policy; defaults to ``AddressGuard.from_options(options)``. When ``session`` is given, its resolver
        should apply the same guard (literal IPs are checked with this one).
    rng : random.Random, optional
        Source of backoff jitter; a fresh unseeded one by default.
    sleep : coroutine function, default asyncio.sleep
        Waits between retries; tests pass a recorder to check the delays without waiting for them.

    Returns
    -------
    list of FetchResult
    """
    guard = guard if guard is not None else AddressGuard.from_options(options)
    rng = rng if rng is not None else random.Random()
    if session is not None:
        return await _Fetcher(session, options, guard, rng=rng, sleep=sleep).fetch_many(urls)
    async with create_session(options, guard=guard) as own_session:
        return await _Fetcher(own_session, options, guard, rng=rng, sleep=sleep).fetch_many(urls)


def add_fetch_columns(batch: pa.Table, results: Sequence[FetchResult]) -> pa.Table:
    """``batch`` plus (or with replaced) ``status``, ``error``, ``http_status``, ``bytes`` and ``content`` columns."""
    if len(results) != batch.num_rows:
        raise ValueError(f"{len(results)} results for {batch.num_rows} rows")
    columns = {
        schema.STATUS: pa.array([r.status for r in results], pa.string()),
        schema.ERROR: pa.array([r.error for r in results], pa.string()),
        schema.HTTP_STATUS: pa.array([r.http_status for r in results], pa.int32()),
        schema.BYTES: pa.array([r.n_bytes for r in results], pa.int64()),
        schema.CONTENT: pa.array([r.content for r in results], pa.binary()),
    }
    for name, array in columns.items():
        batch = schema.set_column(batch, name, array)
    return batch


class Downloader:
    """Ray Data callable class: one long-lived aiohttp session per actor.

    Use with ``ds.map_batches(Downloader, fn_constructor_kwargs={"options": opts}, batch_format="pyarrow", ...)``.
    The session, its connection pool, DNS cache and the concurrency limits are created lazily inside the event loop
    that runs ``__call__`` (Ray runs async actors in a loop of its own) and reused by every later batch.

    Parameters
    ----------
    options : DownloadOptions
        See :func:`fetch_all`.
    trusted_networks : iterable of str, default ()
        CIDR networks allowed even when private networks are blocked (see :class:`AddressGuard`).
    """

    def __init__(self, options: DownloadOptions, *, trusted_networks: Iterable[str] = ()):
        self.options = options
        self.guard = AddressGuard.from_options(options, trusted_networks)
        self._rng = random.Random()
        self._fetcher: _Fetcher | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, batch: pa.Table) -> pa.Table:
        """Fetch ``batch["url"]``; return the batch, rows in order, with the fetch columns added."""
        urls = batch.column(schema.URL).to_pylist()
        fetcher = self._fetcher_for_running_loop()
        return add_fetch_columns(batch, await fetcher.fetch_many(urls))

    def _fetcher_for_running_loop(self) -> _Fetcher:
        loop = asyncio.get_running_loop()
        if self._fetcher is None or self._loop is not loop or self._fetcher.session.closed:
            if self._fetcher is not None and not self._fetcher.session.closed:
                # The old loop is gone (a new asyncio.run in tests or notebooks): its sockets died with it. Detach
                # so the session counts as closed instead of warning about an unclosed session at exit.
                self._fetcher.session.detach()
            session = create_session(self.options, guard=self.guard)
            self._fetcher = _Fetcher(session, self.options, self.guard, rng=self._rng, sleep=asyncio.sleep)
            self._loop = loop
        return self._fetcher

    @property
    def session(self) -> aiohttp.ClientSession | None:
        """The session of the current actor loop, or None before the first call."""
        return None if self._fetcher is None else self._fetcher.session

    def __del__(self) -> None:
        # Ray Data drops the UDF at actor shutdown without awaiting close(). BaseConnector.close closes the sockets
        # synchronously (TCPConnector's async override only adds resolver cleanup), which ends aiohttp's
        # "Unclosed client session" noise at the end of every job.
        fetcher = getattr(self, "_fetcher", None)
        if fetcher is not None and not fetcher.session.closed:
            connector = fetcher.session.connector
            fetcher.session.detach()
            if connector is not None:
                aiohttp.BaseConnector.close(connector)

    async def close(self) -> None:
        """Close the session (Ray tears actors down without this; tests and scripts call it)."""
        if self._fetcher is not None:
            await self._fetcher.session.close()
            self._fetcher = None
