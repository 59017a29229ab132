"""Download stage against a real aiohttp server on 127.0.0.1: statuses, retries, redirects, caps, address guard."""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import uuid

import aiohttp
import pyarrow as pa
import pytest

from clustering.config import DownloadOptions
from clustering.devtools.devserver import ImageServer
from clustering.ingest.download import (
    MAX_ERROR_CHARS,
    Downloader,
    FetchResult,
    create_session,
    fetch_all,
    parse_retry_after,
)
from clustering.ingest.guard import AddressGuard, BlockedAddressError, GuardedResolver
from clustering.schema import Status
from tests.fixtures_images import EXPECTED_STATUS, FAST_DOWNLOAD, ROUTE_STATUS
from tests.hostile import HOSTILE_URLS, StaticResolver


def fast(**overrides) -> DownloadOptions:
    return DownloadOptions(**{**FAST_DOWNLOAD, **overrides})


def fetch(urls, options=None, **kwargs) -> list[FetchResult]:
    return asyncio.run(fetch_all(urls, options or fast(), **kwargs))


def fetch_one(url, options=None, **kwargs) -> FetchResult:
    return fetch([url], options, **kwargs)[0]


def fresh(route: str) -> str:
    """A stateful route with a key of its own, so its server-side counter starts at zero."""
    return f"{route}/{uuid.uuid4().hex[:8]}"


class SleepRecorder:
    """Stands in for asyncio.sleep: records the requested delays, waits for none of them."""

    def __init__(self):
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


# --- files and routes ----------------------------------------------------------------------------------------------


def test_served_file_is_fetched_whole(image_server, image_dir):
    result = fetch_one(image_server.url("photo.jpg"))
    expected = (image_dir / "photo.jpg").read_bytes()
    assert (result.status, result.error, result.http_status) == ("ok", None, 200)
    assert result.content == expected
    assert result.n_bytes == len(expected)


def test_every_fixture_file_downloads(image_server, image_dir):
    # Every fixture is small and served with 200: judging the bytes is the decode stage's job.
    results = fetch([image_server.url(name) for name in EXPECTED_STATUS])
    assert [r.status for r in results] == ["ok"] * len(EXPECTED_STATUS)
    assert results[list(EXPECTED_STATUS).index("empty.jpg")].n_bytes == 0


def test_each_bad_route_gets_its_status(image_server):
    routes = {fresh(r) if r.startswith(("bad/flaky", "bad/429")) else r: s for r, s in ROUTE_STATUS.items()}
    results = fetch([image_server.url(r) for r in routes])
    assert {r: res.status for r, res in zip(routes, results, strict=True)} == routes
    for result in results:
        assert (result.error is None) == (result.status == "ok")


@pytest.mark.parametrize(
    ("route", "status", "error", "http_status"),
    [
        ("bad/404", "http_error", "HTTP 404 Not Found", 404),
        ("bad/500", "http_error", "HTTP 500 Internal Server Error", 500),
        ("bad/redirect-loop", "http_error", "too many redirects (>5)", 302),
        ("bad/big", "too_large", "Content-Length 1073741824 exceeds max_bytes 1000000", 200),
        ("bad/endless", "too_large", "body exceeds max_bytes 1000000", 200),
    ],
)
def test_error_messages_are_specific(image_server, route, status, error, http_status):
    result = fetch_one(image_server.url(route), fast(retries=0))
    assert (result.status, result.error, result.http_status) == (status, error, http_status)
    assert result.content is None and result.n_bytes is None


@pytest.mark.parametrize("route", ["bad/slow", "bad/slow-body"])
def test_slow_server_and_trickling_body_time_out(image_server, route):
    # slow-body keeps sending bytes, so only the total per-request cap can end it.
    result = fetch_one(image_server.url(route), fast(retries=0))
    assert result.status == "timeout"
    assert "0.5 s" in result.error


def test_file_over_the_cap_is_too_large(image_server, image_dir):
    size = (image_dir / "photo.jpg").stat().st_size
    result = fetch_one(image_server.url("photo.jpg"), fast(max_bytes=size - 1))
    assert result.status == "too_large"
    assert f"Content-Length {size}" in result.error


def test_html_served_as_jpeg_downloads_as_is(image_server):
    result = fetch_one(image_server.url("bad/html"))
    assert result.status == "ok"
    assert result.content.startswith(b"<!DOCTYPE html>")


def test_user_agent_from_options_is_sent(image_server):
    result = fetch_one(image_server.url("bad/headers"), fast(user_agent="clipcluster-test/9"))
    assert json.loads(result.content)["User-Agent"] == "clipcluster-test/9"


# --- retries -------------------------------------------------------------------------------------------------------


def test_flaky_route_is_retried_until_ok(image_server):
    route = fresh("bad/flaky")
    result = fetch_one(image_server.url(route), fast(retries=2))
    assert result.status == "ok"
    assert image_server.hits["/" + route] == 3  # 500, 500, 200


def test_retries_stop_at_the_limit(image_server):
    route = fresh("bad/flaky")
    result = fetch_one(image_server.url(route), fast(retries=1))
    assert (result.status, result.error) == ("http_error", "HTTP 500 Internal Server Error")
    assert image_server.hits["/" + route] == 2


def test_client_errors_are_not_retried(image_server):
    before = image_server.hits["/bad/404"]
    fetch_one(image_server.url("bad/404"), fast(retries=3))
    assert image_server.hits["/bad/404"] - before == 1


def test_timeouts_are_retried(image_server):
    before = image_server.hits["/bad/slow"]
    result = fetch_one(image_server.url("bad/slow"), fast(retries=1, read_timeout=0.2))
    assert result.status == "timeout"
    assert image_server.hits["/bad/slow"] - before == 2


def test_backoff_is_exponential_and_jittered(image_server):
    sleep = SleepRecorder()
    options = fast(retries=2, backoff_base=1.0)
    fetch_one(image_server.url(fresh("bad/flaky")), options, sleep=sleep, rng=random.Random(0))
    assert len(sleep.delays) == 2
    assert 0.5 <= sleep.delays[0] <= 1.5  # base * 2**0 * [0.5, 1.5]
    assert 1.0 <= sleep.delays[1] <= 3.0  # base * 2**1 * [0.5, 1.5]


def test_retry_after_is_honoured(image_server):
    sleep = SleepRecorder()
    options = fast(retries=1, backoff_base=0.0, retry_after_cap=30.0)
    result = fetch_one(image_server.url(fresh("bad/429") + "?after=7"), options, sleep=sleep)
    assert result.status == "ok"
    assert sleep.delays == [7.0]


def test_retry_after_is_capped(image_server):
    sleep = SleepRecorder()
    options = fast(retries=1, backoff_base=0.0, retry_after_cap=0.25)
    fetch_one(image_server.url(fresh("bad/429") + "?after=120"), options, sleep=sleep)
    assert sleep.delays == [0.25]


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("5", 5.0),
        (" 2.5 ", 2.5),
        ("-3", 0.0),
        ("soon", None),
        ("nan", None),
        (None, None),
        ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),  # HTTP-date form, 10 s after `now`
        ("Wed, 21 Oct 2015 07:28:10", None),  # no zone: not an HTTP-date
    ],
)
def test_parse_retry_after(header, seconds):
    now = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert parse_retry_after(header, now=now) == seconds


# --- redirects -----------------------------------------------------------------------------------------------------


def test_redirects_are_followed_up_to_the_limit(image_server):
    assert fetch_one(image_server.url("bad/redirect/3"), fast(max_redirects=3)).status == "ok"
    result = fetch_one(image_server.url("bad/redirect/3"), fast(max_redirects=2))
    assert (result.status, result.error) == ("http_error", "too many redirects (>2)")


def test_redirect_to_a_local_file_is_refused(image_server):
    url = image_server.url("bad/redirect-to-private") + "?to=file:///etc/hostname"
    result = fetch_one(url)
    assert result.status == "invalid_url"
    assert "unsupported scheme 'file'" in result.error


# --- address guard -------------------------------------------------------------------------------------------------


def test_loopback_server_is_blocked_by_default(image_server):
    before = image_server.hits["/photo.jpg"]
    result = fetch_one(image_server.url("photo.jpg"), fast(allow_private_networks=False))
    assert result.status == "blocked_address"
    assert result.error == "127.0.0.1, a loopback address (RFC 1122)"
    assert image_server.hits["/photo.jpg"] == before  # never sent


def test_host_names_are_checked_after_resolution(image_server):
    port = image_server.base_url.rsplit(":", 1)[1]
    result = fetch_one(f"http://localhost:{port}/photo.jpg", fast(allow_private_networks=False))
    assert result.status == "blocked_address"
    assert result.error.startswith("localhost resolves to ")


def test_guarded_resolver_refuses_private_answers():
    async def resolve():
        resolver = GuardedResolver(AddressGuard())
        try:
            return await resolver.resolve("localhost", 80)
        finally:
            await resolver.close()

    with pytest.raises(BlockedAddressError, match="loopback"):
        asyncio.run(resolve())


def test_private_networks_allowed_with_the_flag(image_server):
    assert fetch_one(image_server.url("photo.jpg"), fast(allow_private_networks=True)).status == "ok"


@pytest.mark.parametrize(
    ("target", "address"),
    [(None, "169.254.169.254"), ("http://10.0.0.1/x", "10.0.0.1"), ("http://[::ffff:192.168.0.1]/", "::ffff:c0a8:1")],
)
def test_redirect_to_private_is_blocked_before_any_request(image_server, target, address):
    """The test server is trusted, everything else private is not: the redirect hop must never be sent."""
    requested: list[str] = []

    async def on_request_start(session, context, params):
        requested.append(params.url.host)

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    options = fast(allow_private_networks=False)
    guard = AddressGuard.from_options(options, trusted=("127.0.0.1/32",))
    url = image_server.url("bad/redirect-to-private") + (f"?to={target}" if target else "")

    async def run():
        async with create_session(options, guard=guard, trace_configs=[trace]) as session:
            return await fetch_all([url], options, session, guard=guard)

    (result,) = asyncio.run(run())
    assert result.status == "blocked_address"
    assert address in result.error
    assert requested == ["127.0.0.1"]


# --- invalid input, connection failures, local files ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("", "no URL"),
        (None, "no URL"),
        ("   ", "no URL"),
        # Missing values as pandas, R and Spark write them to CSV: not a path for the local-file policy to refuse.
        ("NaN", "no URL"),
        ("nan", "no URL"),
        ("None", "no URL"),
        (" null ", "no URL"),
        ("<NA>", "no URL"),
        (42, "URL must be a string, got int"),
        ("ftp://example.com/a.jpg", "unsupported scheme 'ftp'"),
        ("javascript:alert(1)", "unsupported scheme 'javascript'"),
        ("data:image/png;base64,iVBORw0KGgo=", "unsupported scheme 'data'"),
        ("http://", "URL has no host"),
        ("http://[::1", "malformed URL"),
        ("//cdn.example.com/a.jpg", "protocol-relative"),
        ("file://remote-host/a.jpg", "file URL with a remote host"),
        ("http://2130706433/", "host '2130706433' is not a canonical IPv4 address"),
    ],
)
def test_invalid_urls(url, error):
    result = fetch_one(url)
    assert result.status == "invalid_url"
    assert error in result.error


def test_refused_connection_is_a_connection_error():
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = fetch_one(f"http://127.0.0.1:{port}/x.jpg", fast(retries=0))
    assert result.status == "connection_error"
    assert f"cannot connect to 127.0.0.1:{port}" in result.error


def test_unknown_host_is_a_connection_error():
    # .invalid never resolves (RFC 6761), with or without network access.
    result = fetch_one("http://no-such-host.invalid/a.jpg", fast(retries=0))
    assert result.status == "connection_error"
    assert "DNS lookup failed for no-such-host.invalid" in result.error


def test_local_files_by_path_and_file_url(image_dir, monkeypatch):
    expected = (image_dir / "photo.jpg").read_bytes()
    monkeypatch.chdir(image_dir)
    urls = [str(image_dir / "photo.jpg"), (image_dir / "photo.jpg").as_uri(), "photo.jpg"]
    for result in fetch(urls, fast(allow_private_networks=False, allow_local_files=True)):  # no address involved
        assert (result.status, result.http_status, result.content) == ("ok", None, expected)


def test_local_file_errors(image_dir):
    size = (image_dir / "photo.jpg").stat().st_size
    missing, directory = fetch([str(image_dir / "missing.jpg"), str(image_dir)])
    assert (missing.status, missing.error) == ("connection_error", f"file not found: {image_dir / 'missing.jpg'}")
    assert (directory.status, directory.error) == ("connection_error", f"not a regular file: {image_dir}")
    too_big = fetch_one(str(image_dir / "photo.jpg"), fast(max_bytes=size - 1))
    assert (too_big.status, too_big.error) == ("too_large", f"file is {size} bytes, over max_bytes {size - 1}")


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    result = fetch_one(str(fifo))
    assert (result.status, result.error) == ("connection_error", f"not a regular file: {fifo}")


@pytest.fixture
def secret_file(tmp_path):
    path = tmp_path / "passwd"
    path.write_text("root:x:0:0:root:/root:/bin/bash\n")
    return path


def test_local_files_in_a_url_table_are_off_by_default(secret_file):
    urls = [str(secret_file), secret_file.as_uri(), f"file://localhost{secret_file}"]
    for result in fetch(urls, DownloadOptions()):
        assert result.status == "blocked_address"
        assert result.error == f"local files are off (allow them with --allow-local-files): {secret_file}"
        assert result.content is None


@pytest.mark.parametrize("url", [u for u in HOSTILE_URLS if not u.startswith("http")])
def test_hostile_local_urls_get_their_status_with_defaults(url):
    result = fetch_one(url, DownloadOptions(retries=0))
    assert result.status == HOSTILE_URLS[url]
    assert "root:" not in result.error


@pytest.mark.parametrize(
    "path", ["/proc/self/environ", "/proc/self/cmdline", "/sys/kernel/notes", "/dev/zero", "/dev/stdin"]
)
def test_system_files_are_never_read_whatever_the_flags(path):
    result = fetch_one(path, fast(allow_local_files=True, allow_private_networks=True))
    assert result.status == "blocked_address"
    assert result.error.startswith(path)
    assert "system files are never read" in result.error


def test_symlinks_are_resolved_before_deciding(tmp_path):
    link = tmp_path / "innocent.jpg"
    link.symlink_to("/proc/self/environ")
    result = fetch_one(str(link), fast(allow_local_files=True))
    assert result.status == "blocked_address"
    assert result.error.startswith(f"{link} (really /proc/{os.getpid()}/environ) is under /proc")


def fetch_with_downloader(urls, options, **kwargs) -> pa.Table:
    downloader = Downloader(options, **kwargs)

    async def run():
        try:
            return await downloader(pa.table({"url": urls}))
        finally:
            await downloader.close()

    return asyncio.run(run())


def test_the_input_folder_is_readable_and_nothing_outside_it(tmp_path, image_dir, secret_file):
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "photo.jpg").write_bytes((image_dir / "photo.jpg").read_bytes())
    (folder / "escape.jpg").symlink_to(secret_file)
    urls = [str(folder / "photo.jpg"), str(folder / "escape.jpg"), str(folder / ".." / "passwd"), str(secret_file)]
    out = fetch_with_downloader(urls, DownloadOptions(), local_root=str(folder))
    assert out["status"].to_pylist() == ["ok", "blocked_address", "blocked_address", "blocked_address"]
    assert out["error"][1].as_py() == (
        f"local files outside the input folder are off (allow them with --allow-local-files): {folder / 'escape.jpg'}"
    )


def test_downloader_resolves_names_through_the_given_resolver(image_server):
    port = image_server.base_url.rsplit(":", 1)[1]
    resolver = StaticResolver({"images.test": "127.0.0.1"})
    out = fetch_with_downloader([f"http://images.test:{port}/photo.jpg"], DownloadOptions(), resolver=resolver)
    assert out["status"].to_pylist() == ["blocked_address"]
    assert out["error"][0].as_py() == "images.test resolves to 127.0.0.1, a loopback address (RFC 1122)"


# --- batches -------------------------------------------------------------------------------------------------------


def test_duplicates_are_fetched_once(image_server):
    route = fresh("bad/flaky")  # a counter of its own, and 3 hits if fetched once (500, 500, 200)
    url = image_server.url(route)
    results = fetch([url, "", url, url], fast(retries=2))
    assert [r.status for r in results] == ["ok", "invalid_url", "ok", "ok"]
    assert image_server.hits["/" + route] == 3


def test_one_bad_url_does_not_spoil_the_batch(image_server):
    urls = [image_server.url("photo.jpg"), "http://[::1", image_server.url("bad/404"), None, image_server.url("a b")]
    assert [r.status for r in fetch(urls)] == ["ok", "invalid_url", "http_error", "invalid_url", "http_error"]


def _batch(image_server) -> pa.Table:
    return pa.table(
        {
            "post_id": ["a", "b", "c", "d", "e"],
            "url": [
                image_server.url("photo.jpg"),
                image_server.url("bad/404"),
                None,
                image_server.url("photo.jpg"),
                image_server.url("alpha.png"),
            ],
            "likes": pa.array([1, 2, 3, 4, 5], pa.int64()),
        }
    )


def test_downloader_adds_typed_columns_and_keeps_rows(image_server):
    batch = _batch(image_server)
    downloader = Downloader(fast())

    async def run():
        try:
            return await downloader(batch)
        finally:
            await downloader.close()

    out = asyncio.run(run())
    assert out.num_rows == batch.num_rows
    assert out.select(["post_id", "url", "likes"]).equals(batch)
    assert out.column("status").to_pylist() == ["ok", "http_error", "invalid_url", "ok", "ok"]
    assert out.column("status").null_count == 0
    assert out.column("error").to_pylist()[:3] == [None, "HTTP 404 Not Found", "no URL"]
    assert out.column("http_status").to_pylist() == [200, 404, None, 200, 200]
    types = {name: out.schema.field(name).type for name in ("status", "error", "http_status", "bytes", "content")}
    assert types == {
        "status": pa.string(),
        "error": pa.string(),
        "http_status": pa.int32(),
        "bytes": pa.int64(),
        "content": pa.binary(),
    }
    assert out.column("content").to_pylist()[1:3] == [None, None]


def test_downloader_reuses_its_session_across_calls_in_one_loop(image_server):
    downloader = Downloader(fast())
    batch = _batch(image_server)
    loop = asyncio.new_event_loop()
    try:
        first = loop.run_until_complete(downloader(batch))
        session = downloader.session
        second = loop.run_until_complete(downloader(batch))
        assert downloader.session is session and not session.closed
        loop.run_until_complete(downloader.close())
    finally:
        loop.close()
    assert first.column("status").equals(second.column("status"))


def test_downloader_works_again_in_a_new_event_loop(image_server):
    downloader = Downloader(fast())
    batch = _batch(image_server)
    first = asyncio.run(downloader(batch))
    old_session = downloader.session
    second = asyncio.run(downloader(batch))  # the first loop is closed: a new session must be made
    assert downloader.session is not old_session and old_session.closed
    assert first.column("status").equals(second.column("status"))
    asyncio.run(downloader.close())


def test_downloader_trusted_networks(image_server):
    downloader = Downloader(fast(allow_private_networks=False), trusted_networks=("127.0.0.0/8",))
    batch = pa.table({"url": [image_server.url("photo.jpg"), image_server.url("bad/redirect-to-private")]})

    async def run():
        try:
            return await downloader(batch)
        finally:
            await downloader.close()

    assert asyncio.run(run()).column("status").to_pylist() == ["ok", "blocked_address"]


def test_fetch_result_errors_are_short():
    result = FetchResult.fail(Status.CONNECTION_ERROR, "x" * 1000)
    assert len(result.error) == MAX_ERROR_CHARS
    assert result.error.endswith("...")


# --- the dev server itself -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/../../etc/hostname", "/%2e%2e/%2e%2e/etc/hostname", "/..%2f..%2fetc%2fhostname"])
def test_dev_server_never_serves_outside_its_root(image_server, path):
    port = int(image_server.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:  # raw, so no client normalises the path
        conn.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
        status_line = conn.recv(64).split(b"\r\n")[0]
    assert status_line == b"HTTP/1.0 404 Not Found"


def test_dev_server_content_types(image_server):
    async def content_types():
        async with aiohttp.ClientSession() as session:
            types = []
            for name in ("photo.jpg", "alpha.png", "photo.webp", "bad/html"):
                async with session.get(image_server.url(name)) as response:
                    types.append(response.content_type)
            return types

    assert asyncio.run(content_types()) == ["image/jpeg", "image/png", "image/webp", "image/jpeg"]


def test_dev_server_validates_and_stops(tmp_path):
    with pytest.raises(ValueError, match="root_dir must be an existing folder"):
        ImageServer(tmp_path / "missing")
    (tmp_path / "a.png").write_bytes(b"x")
    server = ImageServer(tmp_path).start()
    assert fetch_one(server.url("a.png")).content == b"x"
    server.stop()
    server.stop()  # idempotent
    assert fetch_one(server.url("a.png"), fast(retries=0)).status == "connection_error"


def test_empty_batch_gives_an_empty_typed_batch():
    batch = pa.table({"url": pa.array([], pa.string()), "post_id": pa.array([], pa.string())})
    downloader = Downloader(fast())
    out = asyncio.run(downloader(batch))
    asyncio.run(downloader.close())
    assert out.num_rows == 0
    assert out.column_names == ["url", "post_id", "status", "error", "http_status", "bytes", "content"]
