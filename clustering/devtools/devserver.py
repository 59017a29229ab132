"""A local image server for tests, the demo and benchmarks: real HTTP on 127.0.0.1, with good and bad routes.

Files under ``root_dir`` are served at ``/<relative path>`` with the Content-Type their suffix implies. Routes under
``/bad/`` misbehave the way real image hosts do, so the download stage can be tested without the internet:

=============================  ===============================================================================
``/bad/404``, ``/bad/500``     always that status
``/bad/flaky/<key>``           500 twice, then 200 with a PNG (counter per path, so tests pick fresh keys)
``/bad/429/<key>``             429 with ``Retry-After: <after>`` (query, default 1) once, then 200 with a PNG
``/bad/slow``                  sleeps ``?seconds=`` (default ``slow_seconds``) before answering with a PNG
``/bad/slow-body``             sends headers, then one byte every 50 ms forever
``/bad/endless``               a body without Content-Length that never ends
``/bad/big``                   announces ``Content-Length: ?bytes=`` (default 1 GiB) and sends only a little
``/bad/redirect-loop``         redirects to itself
``/bad/redirect/<n>``          n relative redirects, then a PNG
``/bad/redirect-to-private``   redirects to ``?to=`` (default the cloud metadata address 169.254.169.254)
``/bad/html``                  an HTML page labelled ``Content-Type: image/jpeg``
``/bad/headers``               the request headers as JSON (to check what a client sends)
=============================  ===============================================================================

The server counts hits per path (:attr:`ImageServer.hits`) so tests can prove a URL was fetched once, or retried.
``python -m clustering.devtools.devserver ROOT --port 8000 --latency 0.05`` serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import io
import mimetypes
import threading
import time
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

# Two failures then success: with the download stage's default 3 retries the flaky route must end ``ok``.
FLAKY_FAILURES = 2
# Trickle interval of /bad/slow-body: bytes keep arriving, so only a total (not a per-read) timeout can end it.
TRICKLE_INTERVAL = 0.05
ENDLESS_CHUNK = 64 * 1024
DEFAULT_PRIVATE_TARGET = "http://169.254.169.254/latest/meta-data/"
HTML_BODY = b"<!DOCTYPE html>\n<html><head><title>Not an image</title></head><body>login required</body></html>\n"


def _png_bytes(size: int = 64) -> bytes:
    """A small valid PNG (a two-tone square) for routes that end in an image."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size), (30, 90, 200))
    ImageDraw.Draw(img).rectangle((size // 4, size // 4, 3 * size // 4, 3 * size // 4), fill=(240, 200, 40))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


class ImageServer:
    """Serve ``root_dir`` and the ``/bad/`` routes on 127.0.0.1 from a background thread with its own event loop.

    Parameters
    ----------
    root_dir : str or Path
        Folder whose files are served at ``/<relative path>``.
    latency : float, default 0.0
        Seconds added before every response (the benchmark uses ~0.05 to mimic a remote host).
    port : int, default 0
        TCP port; 0 lets the OS choose a free one (read it back from :attr:`base_url`).
    slow_seconds : float, default 5.0
        How long ``/bad/slow`` sleeps when the request gives no ``?seconds=``; longer than any test timeout.

    Examples
    --------
    >>> with ImageServer("images") as server:  # doctest: +SKIP
    ...     server.url("cat.png")
    'http://127.0.0.1:40123/cat.png'
    """

    def __init__(self, root_dir: str | Path, *, latency: float = 0.0, port: int = 0, slow_seconds: float = 5.0):
        if latency < 0:
            raise ValueError(f"latency must be zero or more, got {latency!r}")
        self.root = Path(root_dir).resolve()
        if not self.root.is_dir():
            raise ValueError(f"root_dir must be an existing folder, got {root_dir!r}")
        self.latency = latency
        self.slow_seconds = slow_seconds
        self._port = port
        self._hits: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._png = _png_bytes()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self.base_url = ""

    # --- lifecycle --------------------------------------------------------------------------------------------------

    def start(self) -> ImageServer:
        """Start serving; returns once the socket is bound and :attr:`base_url` is set."""
        if self._thread is not None:
            raise RuntimeError("server already started")
        self._thread = threading.Thread(target=self._serve, name="ImageServer", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._start_error is not None:
            raise RuntimeError(f"image server failed to start: {self._start_error}") from self._start_error
        return self

    def stop(self) -> None:
        """Stop serving, cancel handlers still running (slow and endless routes) and join the thread."""
        if self._thread is None or self._loop is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
        future.result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> ImageServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._start_site())
        except OSError as exc:  # port taken, no loopback interface...
            self._start_error = exc
            self._started.set()
            loop.close()
            return
        self._started.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _start_site(self) -> None:
        app = web.Application(middlewares=[self._delay])
        app.router.add_get("/bad/{route:.*}", self._bad)
        app.router.add_get("/{path:.*}", self._file)
        # handler_cancellation: stop the endless and slow handlers as soon as the client hangs up, and a short
        # shutdown_timeout so stop() never waits on them (aiohttp's default is 60 s).
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"

    # --- public helpers ---------------------------------------------------------------------------------------------

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` (a file relative to ``root_dir`` or a ``bad/...`` route, optionally with a
        ``?query``); the path part is percent-encoded, the query is kept as given."""
        path, sep, query = path.lstrip("/").partition("?")
        return f"{self.base_url}/{quote(path)}{sep}{query}"

    @property
    def hits(self) -> collections.Counter[str]:
        """Requests received so far, per URL path (a snapshot copy)."""
        with self._lock:
            return collections.Counter(self._hits)

    def reset_hits(self) -> None:
        with self._lock:
            self._hits.clear()

    def _hit(self, path: str) -> int:
        with self._lock:
            self._hits[path] += 1
            return self._hits[path]

    # --- handlers ---------------------------------------------------------------------------------------------------

    @web.middleware
    async def _delay(self, request: web.Request, handler):
        if self.latency:
            await asyncio.sleep(self.latency)
        return await handler(request)

    async def _file(self, request: web.Request) -> web.StreamResponse:
        self._hit(request.path)
        path = (self.root / request.match_info["path"]).resolve()
        # Never serve outside root_dir, whatever '..' the path holds.
        if not path.is_relative_to(self.root) or not path.is_file():
            raise web.HTTPNotFound()
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return web.Response(body=path.read_bytes(), content_type=content_type)

    def _image(self) -> web.Response:
        return web.Response(body=self._png, content_type="image/png")

    async def _bad(self, request: web.Request) -> web.StreamResponse:
        hit = self._hit(request.path)
        route = request.match_info["route"]
        name, _, rest = route.partition("/")
        handler = {
            "404": self._not_found,
            "500": self._server_error,
            "flaky": self._flaky,
            "429": self._too_many,
            "slow": self._slow,
            "slow-body": self._slow_body,
            "endless": self._endless,
            "big": self._big,
            "redirect-loop": self._redirect_loop,
            "redirect": self._redirect_n,
            "redirect-to-private": self._redirect_private,
            "html": self._html,
            "headers": self._headers,
        }.get(name)
        if handler is None:
            raise web.HTTPNotFound(text=f"no such bad route: {name}")
        return await handler(request, rest, hit)

    async def _not_found(self, request: web.Request, rest: str, hit: int) -> web.StreamResponse:
        raise web.HTTPNotFound()

    async def _server_error(self, request: web.Request, rest: str, hit: int) -> web.StreamResponse:
        raise web.HTTPInternalServerError()

    async def _flaky(self, request: web.Request, rest: str, hit: int) -> web.StreamResponse:
        if hit <= FLAKY_FAILURES:
            raise web.HTTPInternalServerError()
        return self._image()

    async def _too_many(self, request: web.Request, rest: str, hit: int) -> web.StreamResponse:
        if hit == 1:
            after = request.query.get("after", "1")
            raise web.HTTPTooManyRequests(headers={"Retry-After": after})
        return self._image()

    async def _slow(self, request: web.Request, rest: str, hit: int) -> web.StreamResponse:
        await asyncio.sleep(float(request.query.get("seconds", self.slow_seconds)))
        return self._image()

    async def _slow_body(self, request: web.Request, rest: str, hit: int) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
        await response.prepare(request)
        with contextlib.suppress(ConnectionResetError):  # the client hanging up is how this route ends
            while True:
                await response.write(b"\xff")
                await asyncio.sleep(TRICKLE_INTERVAL)
        return response

    async def _endless(self, request: web.Request, rest: str, hit: int) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        chunk = b"\x00" * ENDLESS_CHUNK
        # write() waits for the client to drain, so a client that stops reading pauses us; hanging up ends us.
        with contextlib.suppress(ConnectionResetError):
            while True:
                await response.write(chunk)
        return response

    async def _big(self, request: web.Request, rest: str, hit: int) -> web.StreamResponse:
        claimed = int(request.query.get("bytes", 2**30))
        response = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
        response.content_length = claimed
        await response.prepare(request)
        with contextlib.suppress(ConnectionResetError):
            await response.write(b"\x00" * min(claimed, 1024))
        # Hold the connection instead of finishing a short body: a client that trusts Content-Length has to stop.
        await asyncio.sleep(self.slow_seconds)
        return response

    async def _redirect_loop(self, request: web.Request, rest: str, hit: int) -> web.StreamResponse:
        raise web.HTTPFound(request.path)

    async def _redirect_n(self, request: web.Request, rest: str, hit: int) -> web.StreamResponse:
        try:
            remaining = int(rest)
        except ValueError:
            raise web.HTTPNotFound(text="use /bad/redirect/<n>") from None
        if remaining <= 0:
            return self._image()
        raise web.HTTPFound(str(remaining - 1))  # relative, so clients must resolve it against the current URL

    async def _redirect_private(self, request: web.Request, rest: str, hit: int) -> web.StreamResponse:
        raise web.HTTPFound(request.query.get("to", DEFAULT_PRIVATE_TARGET))

    async def _html(self, request: web.Request, rest: str, hit: int) -> web.StreamResponse:
        return web.Response(body=HTML_BODY, headers={"Content-Type": "image/jpeg"})

    async def _headers(self, request: web.Request, rest: str, hit: int) -> web.StreamResponse:
        return web.json_response(dict(request.headers))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m clustering.devtools.devserver", description=__doc__.splitlines()[0]
    )
    parser.add_argument("root", help="folder of images to serve")
    parser.add_argument("--port", type=int, default=8000, help="TCP port on 127.0.0.1 (default 8000; 0 = any free)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added before every response (default 0)")
    args = parser.parse_args(argv)
    with ImageServer(args.root, latency=args.latency, port=args.port) as server:
        print(f"serving {server.root} at {server.base_url}/ (bad routes under /bad/); Ctrl-C to stop", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
