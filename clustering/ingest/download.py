"""Download stage: fetch every URL of a batch with bounded concurrency, retries, a byte cap and an address guard.

Every URL yields exactly one :class:`FetchResult`; nothing a URL does (bad syntax, a dead host, an endless body, a
redirect into the cloud metadata service) raises out of a batch. Statuses come from :class:`clustering.schema.Status`:

- ``ok``: 2xx with a body of at most ``max_bytes`` (or a readable local file); ``content`` holds the bytes.
- ``invalid_url``: missing ("no URL": null, blank, or a missing-value spelling such as ``NaN`` or ``None`` that
  pandas and other tools write for an empty cell), malformed, no host, a numeric host that is not a canonical dotted
  quad (``127.1``), or a scheme other than http, https and file (redirects: http(s) only).
- ``blocked_address``: the host is, or resolves to, an address in the guard's table of special-purpose ranges
  (:mod:`clustering.ingest.guard`) and ``allow_private_networks`` is off; the error names the address, the range and
  why. Also a local path or ``file://`` URL while local files are off (``allow_local_files``; the image folder given
  as input stays readable), and anything under ``/proc``, ``/sys`` or ``/dev`` whatever the options.
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
import os
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
from aiohttp.abc import AbstractResolver

from clustering import schema
from clustering.config import DownloadOptions
from clustering.ingest.guard import (
    AddressGuard,
    BlockedAddressError,
    BlockedPathError,
    GuardedResolver,
    LocalFileGuard,
    noncanonical_ipv4,
)
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
# Never follow a symlink swapped in after the guard resolved the path; never block opening a FIFO swapped in likewise.
LOCAL_OPEN_FLAGS = (
    os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
)


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


# --- URL classification ------------------------------------------------------------------------------------------

# How a missing value reads once a table has been through pandas, R, Spark or a spreadsheet (compared lower-case,
# trimmed). Taken as a path, "NaN" would be blamed on the local-file policy; it is a cell with no URL.
MISSING_URL_SPELLINGS = frozenset({"", "nan", "none", "null", "na", "n/a", "<na>", "nat"})


def parse_target(url: object) -> yarl.URL | Path | FetchResult:
    """Classify one input URL: an http(s) URL to fetch, a local path to read, or an ``invalid_url`` result."""
    if url is not None and not isinstance(url, str):
        return FetchResult.fail(Status.INVALID_URL, f"URL must be a string, got {type(url).__name__}")
    if url is None or url.strip().lower() in MISSING_URL_SPELLINGS:
        return FetchResult.fail(Status.INVALID_URL, "no URL")
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
    noncanonical = noncanonical_ipv4(url.host)
    if noncanonical is not None:
        return FetchResult.fail(Status.INVALID_URL, noncanonical)
    return url


def literal_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
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


def read_local_file(path: Path, *, max_bytes: int, files: LocalFileGuard) -> FetchResult:
    """Read a local file the guard allows, capped at ``max_bytes``; missing or unreadable files are
    ``connection_error``, refused ones ``blocked_address``."""
    try:
        real = files.resolve(path)
        fd = os.open(real, LOCAL_OPEN_FLAGS)
    except BlockedPathError as exc:
        return FetchResult.fail(Status.BLOCKED_ADDRESS, str(exc))
    except FileNotFoundError:
        return FetchResult.fail(Status.CONNECTION_ERROR, f"file not found: {path}")
    except OSError as exc:
        return FetchResult.fail(Status.CONNECTION_ERROR, f"cannot read {path}: {exc.strerror or exc}")
    try:
        info = os.fstat(fd)  # of what was opened, not of what the path named a moment earlier
        if not stat.S_ISREG(info.st_mode):  # a directory, FIFO or device would fail, block or never end
            return FetchResult.fail(Status.CONNECTION_ERROR, f"not a regular file: {path}")
        if info.st_size > max_bytes:
            return FetchResult.fail(Status.TOO_LARGE, f"file is {info.st_size} bytes, over max_bytes {max_bytes}")
        data = _read_up_to(fd, max_bytes + 1)  # the file may have grown since fstat()
    except OSError as exc:
        return FetchResult.fail(Status.CONNECTION_ERROR, f"cannot read {path}: {exc.strerror or exc}")
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        return FetchResult.fail(Status.TOO_LARGE, f"file exceeds max_bytes {max_bytes}")
    return FetchResult.ok(data)


def _read_up_to(fd: int, limit: int) -> bytes:
    chunks, total = [], 0
    while total < limit:
        chunk = os.read(fd, min(CHUNK_SIZE, limit - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


# --- HTTP --------------------------------------------------------------------------------------------------------


def create_session(
    options: DownloadOptions,
    *,
    guard: AddressGuard | None = None,
    resolver: AbstractResolver | None = None,
    trace_configs: Sequence = (),
) -> aiohttp.ClientSession:
    """An aiohttp session configured from ``options``; call it inside the event loop that will use it.

    Parameters
    ----------
    options : DownloadOptions
        Limits, timeouts and User-Agent.
    guard : AddressGuard, optional
        Address policy; defaults to ``AddressGuard.from_options(options)``.
    resolver : aiohttp AbstractResolver, optional
        Name resolver whose answers the guard checks; aiohttp's default (the system's) when omitted. Tests pass one
        that maps made-up names to special addresses.
    trace_configs : sequence of aiohttp.TraceConfig, default ()
        Request tracing hooks (tests use them to prove a blocked request never left the process).
    """
    guard = guard if guard is not None else AddressGuard.from_options(options)
    connector = aiohttp.TCPConnector(
        # A backstop equal to our own semaphores, which are the binding limits (see _Fetcher).
        limit=options.max_in_flight,
        limit_per_host=options.per_host_limit,
        resolver=GuardedResolver(guard, resolver),
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
        files: LocalFileGuard,
        rng: random.Random,
        sleep: Callable[[float], Awaitable[object]],
    ):
        self.session, self.options, self.guard, self.files = session, options, guard, files
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
                return await asyncio.to_thread(
                    read_local_file, target, max_bytes=self.options.max_bytes, files=self.files
                )
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
    files: LocalFileGuard | None = None,
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
    files : LocalFileGuard, optional
        Local-file policy; defaults to ``LocalFileGuard.from_options(options)`` (no input folder).
    rng : random.Random, optional
        Source of backoff jitter; a fresh unseeded one by default.
    sleep : coroutine function, default asyncio.sleep
        Waits between retries; tests pass a recorder to check the delays without waiting for them.

    Returns
    -------
    list of FetchResult
    """
    guard = guard if guard is not None else AddressGuard.from_options(options)
    files = files if files is not None else LocalFileGuard.from_options(options)
    rng = rng if rng is not None else random.Random()
    async with contextlib.AsyncExitStack() as stack:
        if session is None:
            session = await stack.enter_async_context(create_session(options, guard=guard))
        return await _Fetcher(session, options, guard, files=files, rng=rng, sleep=sleep).fetch_many(urls)


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
    local_root : str, optional
        The image folder given as input (``InputTable.local_root``): its files are read even with local files off.
    resolver : aiohttp AbstractResolver, optional
        Name resolver behind the address guard (see :func:`create_session`); it must pickle, as Ray ships it.
    """

    def __init__(
        self,
        options: DownloadOptions,
        *,
        trusted_networks: Iterable[str] = (),
        local_root: str | None = None,
        resolver: AbstractResolver | None = None,
    ):
        self.options = options
        self.guard = AddressGuard.from_options(options, trusted_networks)
        self.files = LocalFileGuard.from_options(options, local_root)
        self._resolver = resolver
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
            session = create_session(self.options, guard=self.guard, resolver=self._resolver)
            self._fetcher = _Fetcher(
                session, self.options, self.guard, files=self.files, rng=self._rng, sleep=asyncio.sleep
            )
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
