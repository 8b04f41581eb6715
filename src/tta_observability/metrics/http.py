"""The /metrics endpoint: prometheus-client's HTTP semantics, our families pre-rendered.

A scrape asks the registry for every collector's families through prometheus-client's own
generator, except that each :class:`~.store.MetricStore` in it defers itself (see
:func:`.exposition.deferred`) and is rendered from its cached series prefixes instead: the
library's families, by far the largest part of the body, never become prometheus-client
``Metric``/``Sample`` objects. Filtered scrapes (``?name[]=...``) take prometheus-client's path.
"""

from __future__ import annotations

import gzip
import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.registry import CollectorRegistry

from . import exposition

Response = tuple[str, list[tuple[str, str]], bytes]


def scrape(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """The body and content type for a scrape of ``registry`` with this Accept header."""
    encoder, content_type = choose_encoder(accept or "")
    stores = exposition.defer_stores()
    try:
        others = encoder(registry)
    finally:
        exposition.stop_deferring()
    if not stores:
        return others, content_type
    openmetrics = content_type.startswith("application/openmetrics-text")
    ours = "".join([store.render(openmetrics) for store in stores]).encode()
    # Ours first: in OpenMetrics, prometheus-client's part ends with the one "# EOF".
    return b"".join((ours, others)), content_type


def bake(
    registry: CollectorRegistry,
    accept: str | None,
    accept_encoding: str | None,
    params: dict[str, list[str]],
) -> Response:
    if "name[]" in params:
        encoder, content_type = choose_encoder(accept or "")
        body = encoder(registry.restricted_registry(params["name[]"]))
    else:
        body, content_type = scrape(registry, accept)
    headers = [("Content-Type", content_type)]
    if gzip_accepted(accept_encoding or ""):
        body = gzip.compress(body)
        headers.append(("Content-Encoding", "gzip"))
    return "200 OK", headers, body


def _respond(
    registry: CollectorRegistry,
    method: str,
    path: str,
    query: str,
    accept: str | None,
    accept_encoding: str | None,
) -> Response:
    if method == "OPTIONS":
        return "200 OK", [("Allow", "OPTIONS,GET")], b""
    if method != "GET":
        status = "405 Method Not Allowed"
        body = f"# HTTP {status}: {method}; use OPTIONS or GET\n".encode()
        return status, [("Allow", "OPTIONS,GET")], body
    if path == "/favicon.ico":
        return "200 OK", [], b""
    # Any other path serves the metrics, as prometheus-client's app does.
    return bake(registry, accept, accept_encoding, parse_qs(query))


def wsgi_app(registry: CollectorRegistry) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        status, headers, body = _respond(
            registry,
            environ["REQUEST_METHOD"],
            environ.get("PATH_INFO", ""),
            environ.get("QUERY_STRING", ""),
            environ.get("HTTP_ACCEPT"),
            environ.get("HTTP_ACCEPT_ENCODING"),
        )
        start_response(status, headers)
        return [body]

    return app


def asgi_app(registry: CollectorRegistry) -> Callable[..., Any]:
    async def app(
        scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        assert scope.get("type") == "http"
        headers = scope.get("headers") or []

        def header(wanted: str) -> str:
            return ",".join(
                v.decode("latin-1") for k, v in headers if k.decode("latin-1").lower() == wanted
            )

        status, out_headers, body = _respond(
            registry,
            scope.get("method", "GET"),
            scope.get("path", ""),
            scope.get("query_string", b"").decode(),
            header("accept"),
            header("accept-encoding"),
        )
        message = await receive()
        if message.get("type") == "http.request":
            await send(
                {
                    "type": "http.response.start",
                    "status": int(status.split(" ")[0]),
                    "headers": [(k.encode(), v.encode()) for k, v in out_headers],
                }
            )
            await send({"type": "http.response.body", "body": body})

    return app


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _SilentHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged."""


def start_server(
    port: int, host: str, registry: CollectorRegistry
) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``registry`` on host:port from a daemon thread (raises OSError if it is taken)."""
    family, _, _, _, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]

    class Server(_Server):
        address_family = family

    httpd = make_server(str(sockaddr[0]), port, wsgi_app(registry), Server, _SilentHandler)
    thread = threading.Thread(target=httpd.serve_forever, name="tta-observability-metrics")
    thread.daemon = True
    thread.start()
    return httpd, thread
