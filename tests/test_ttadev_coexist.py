"""setup() with TTA.dev's own observability (``initialize_observability()``), in either order:
one TracerProvider, TTA.dev's OpenTelemetry metrics and the library's on one endpoint, port
9464 only announced by TTA.dev, never bound. Each order runs in a fresh interpreter: both
sides install process-global providers, once per process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tta_observability._servers import free_port

SHAPE = Path(__file__).parent / "ttadev_shape"

SCRIPT = r"""
import asyncio, json, logging, socket, sys, urllib.request
sys.path.insert(0, sys.argv[3])
from opentelemetry import metrics, trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from ttadev.observability import observability_integration as integration
from ttadev.primitives import LambdaPrimitive, ParallelPrimitive, SequentialPrimitive
from ttadev.primitives import WorkflowContext
import tta_observability as tto

warnings = []
class Keep(logging.Handler):
    def emit(self, record):
        warnings.append(record.getMessage())
logging.getLogger("opentelemetry").addHandler(Keep(logging.WARNING))

order, port = sys.argv[1], int(sys.argv[2])
if order == "before":
    integration.initialize_observability(prometheus_port=port)
    with socket.socket() as s:  # TTA.dev announced the port; it did not bind it
        s.bind(("127.0.0.1", port))
handle = tto.setup("coexist", metrics_port=port, metrics_host="127.0.0.1")
if order == "after":
    integration.initialize_observability(prometheus_port=port)

provider = trace.get_tracer_provider()
exporter = InMemorySpanExporter()
provider.add_span_processor(SimpleSpanProcessor(exporter))
metrics.get_meter("ttadev.app").create_counter("ttadev_requests").add(3)
L = lambda: LambdaPrimitive(lambda x, c: x)
wf = tto.instrument(SequentialPrimitive([L(), ParallelPrimitive([L(), L()])]), name="agent")
asyncio.run(wf.execute(1, WorkflowContext(workflow_id="w")))
page = urllib.request.urlopen(f"http://127.0.0.1:{handle.metrics_port}/metrics").read().decode()
spans = exporter.get_finished_spans()
print(json.dumps({
    "global_is_handle": provider is handle.tracer_provider,
    "global_is_ttadev": provider is integration.tracer_provider,
    "port": handle.metrics_port,
    "spans": len(spans),
    "traces": len({s.context.trace_id for s in spans}),
    "named": sorted(s.attributes.get("tta.primitive.name") for s in spans
                    if s.attributes.get("tta.primitive.name")),
    "ours": [l for l in page.splitlines()
             if l.startswith('tta_workflow_executions_total{') and 'status="success"' in l],
    "theirs": [l for l in page.splitlines() if l.startswith("ttadev_requests_total")],
    "override_warned": any("Overriding of current TracerProvider" in w for w in warnings),
}))
handle.shutdown()
"""


@pytest.mark.parametrize("order", ["before", "after"])
def test_initialize_observability_before_or_after_setup(order: str, tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, order, str(port), str(SHAPE)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    # One provider, extended: TTA.dev's when it came first, else ours (TTA.dev's is refused).
    assert got["global_is_handle"] is True
    assert got["global_is_ttadev"] is (order == "before")
    assert got["override_warned"] is (order == "after")
    assert got["port"] == port  # the library serves the port TTA.dev only announced
    # TTA.dev's spans only (primitive + 2 steps, parallel primitive + 2 branches), one trace.
    assert got["spans"] == 6 and got["traces"] == 1
    parallel = ["agent/1:parallel", "agent/1:parallel/0:lambda", "agent/1:parallel/1:lambda"]
    assert got["named"] == ["agent", "agent/0:lambda", *parallel]
    assert len(got["ours"]) == 1 and got["ours"][0].endswith(" 1.0")
    assert 'workflow="agent"' in got["ours"][0]
    assert len(got["theirs"]) == 1 and got["theirs"][0].endswith(" 3.0")
