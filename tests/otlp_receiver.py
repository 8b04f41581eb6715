"""A real OTLP trace receiver (gRPC and HTTP/protobuf) that decodes the wire format.

The OpenTelemetry Collector cannot run on this machine; this receiver speaks the same protocol
with the official protobuf definitions, so the exporter is tested end to end.
"""

from __future__ import annotations

import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from tta_observability._servers import LOCALHOST


class ReceivedSpans:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans: list[dict[str, Any]] = []
        self.requests = 0

    def add(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        with self.lock:
            self.requests += 1
            for rs in request.resource_spans:
                resource = {a.key: a.value.string_value for a in rs.resource.attributes}
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        self.spans.append(
                            {
                                "name": span.name,
                                "trace_id": span.trace_id.hex(),
                                "span_id": span.span_id.hex(),
                                "parent_span_id": span.parent_span_id.hex(),
                                "scope": ss.scope.name,
                                "resource": resource,
                                "attributes": {
                                    a.key: a.value.string_value or a.value.int_value
                                    for a in span.attributes
                                },
                            }
                        )


class _Servicer(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, sink: ReceivedSpans) -> None:
        self.sink = sink

    def Export(self, request: Any, context: Any) -> Any:
        self.sink.add(request)
        return trace_service_pb2.ExportTraceServiceResponse()


class GrpcReceiver:
    def __init__(self) -> None:
        self.sink = ReceivedSpans()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Servicer(self.sink), self.server)
        self.port = self.server.add_insecure_port(f"{LOCALHOST}:0")
        self.endpoint = f"http://{LOCALHOST}:{self.port}"

    def __enter__(self) -> GrpcReceiver:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop(grace=None)


class HttpReceiver:
    def __init__(self) -> None:
        self.sink = sink = ReceivedSpans()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                request = trace_service_pb2.ExportTraceServiceRequest()
                request.ParseFromString(body)
                sink.add(request)
                payload = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((LOCALHOST, 0), Handler)
        self.port = self.server.server_address[1]
        self.endpoint = f"http://{LOCALHOST}:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HttpReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
