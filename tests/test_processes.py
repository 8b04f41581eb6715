"""Forks, pools and pickling after setup(): children exit, pools close, results are right.

Each scenario runs in a fresh interpreter with a timeout, so a hang fails the test instead of
the suite.
"""

from __future__ import annotations

import functools
import json
import pickle
from pathlib import Path

import pytest

from . import procs_app
from .test_setup import _run_app

ROOT = Path(__file__).resolve().parent.parent


def _run(code: str, timeout: float = 60) -> dict[str, object]:
    import os
    import subprocess
    import sys
    import textwrap

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TTA_"))}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_observed_functions_and_methods_pickle_by_reference() -> None:
    assert pickle.loads(pickle.dumps(procs_app.double)) is procs_app.double
    scaler = procs_app.Scaler(3)
    assert pickle.loads(pickle.dumps(scaler.scale))(2) == 6
    assert pickle.loads(pickle.dumps(procs_app.Scaler.plus_one))(1) == 2
    assert pickle.loads(pickle.dumps(functools.partial(procs_app.double, 4)))() == 8


def test_a_local_observed_function_fails_to_pickle_as_a_plain_one_does() -> None:
    import tta_observability as tto

    @tto.observed
    def local() -> None:
        pass

    with pytest.raises(pickle.PicklingError, match="local"):
        pickle.dumps(local)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_process_pool_executor_runs_observed_functions(method: str) -> None:
    out = _run(
        f"""
        import json, multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        import tta_observability as tto
        from tests import procs_app

        if __name__ == "__main__":
            h = tto.setup("pool-app", metrics_port=0)
            with ProcessPoolExecutor(2, mp_context=mp.get_context("{method}")) as ex:
                doubled = list(ex.map(procs_app.double, range(50)))
                scaled = list(ex.map(procs_app.Scaler(3).scale, range(5)))
            h.shutdown()
            print(json.dumps({{"doubled": doubled, "scaled": scaled}}))
        """
    )
    assert out["doubled"] == [2 * i for i in range(50)]
    assert out["scaled"] == [3 * i for i in range(5)]


def test_forked_child_exits_and_leaves_the_parent_serving(tmp_path: Path) -> None:
    out = _run(
        f"""
        import json, os, sys, urllib.request
        import tta_observability as tto
        from tests import procs_app

        h = tto.setup("fork-app", metrics_port=0, sd_dir={str(tmp_path)!r})
        procs_app.double(1)
        codes = []
        for exit_how in ("sys.exit", "return"):
            pid = os.fork()
            if pid == 0:
                procs_app.double(2)
                if exit_how == "sys.exit":
                    sys.exit(3)  # runs atexit: the handle's shutdown in the child
                os._exit(4)
            _, status = os.waitpid(pid, 0)
            codes.append(os.waitstatus_to_exitcode(status))
        with urllib.request.urlopen(h.metrics_url, timeout=5) as resp:
            served = b"tta_build_info" in resp.read()
        files = len(os.listdir({str(tmp_path)!r}))
        h.shutdown()
        print(json.dumps({{"codes": codes, "served": served, "sd_files": files}}))
        """,
        timeout=60,
    )
    # The child exited with its own status at once; the parent still serves and is still
    # announced (the child's exit did not take the parent's discovery file with it).
    assert out == {"codes": [3, 4], "served": True, "sd_files": 1}


def test_pools_close_and_terminate_stops_children() -> None:
    out = _run(
        """
        import json, multiprocessing as mp, time
        import tta_observability as tto
        from tests import procs_app

        if __name__ == "__main__":
            h = tto.setup("pool-app", metrics_port=0)
            ctx = mp.get_context("fork")
            totals = []
            for _ in range(5):
                with ctx.Pool(2) as pool:  # __exit__ terminates the workers
                    totals.append(sum(pool.map(procs_app.double, range(200))))
            pool = ctx.Pool(2)
            pool.map_async(procs_app.sleep, [30, 30])
            time.sleep(0.2)
            t0 = time.monotonic()
            pool.terminate()
            pool.join()
            stopped_in = time.monotonic() - t0
            h.shutdown()
            print(json.dumps({"totals": totals, "terminate_s": stopped_in}))
        """,
        timeout=90,
    )
    assert out["totals"] == [2 * sum(range(200))] * 5
    # A liveness bound, not a speed measurement: a child that ignored SIGTERM would sleep 30 s.
    assert float(out["terminate_s"]) < 10  # type: ignore[arg-type]


def test_sigterm_runs_the_apps_handler_first_and_exports_its_drain() -> None:
    """An app handler installed before setup() drains; spans made during the drain are exported."""
    from .otlp_receiver import HttpReceiver

    with HttpReceiver() as receiver:
        proc = _run_app(
            """
            import os, signal, sys, time
            import tta_observability as tto

            stopping = []
            signal.signal(signal.SIGTERM, lambda *a: stopping.append(1))
            h = tto.setup("drain-app", metrics_port=None)

            @tto.observed(name="drain_step")
            def drain_step():
                pass

            os.kill(os.getpid(), signal.SIGTERM)
            deadline = time.monotonic() + 10
            while not stopping and time.monotonic() < deadline:
                time.sleep(0.01)
            assert not h.is_shutdown, "telemetry stopped before the app drained"
            for _ in range(100):
                drain_step()
            sys.exit(0)
            """,
            env={
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            },
        )
        assert proc.returncode == 0, proc.stderr
        names = [s["name"] for s in receiver.sink.spans]
    assert names.count("drain_step") == 100


def test_sigterm_without_an_app_handler_flushes_then_dies_of_the_signal() -> None:
    import signal

    from .otlp_receiver import HttpReceiver

    with HttpReceiver() as receiver:
        proc = _run_app(
            """
            import os, signal, time
            import tta_observability as tto
            h = tto.setup("die-app", metrics_port=None)
            @tto.observed(name="before_term")
            def f():
                pass
            for _ in range(10):
                f()
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)
            """,
            env={
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            },
        )
        names = [s["name"] for s in receiver.sink.spans]
    assert proc.returncode == -signal.SIGTERM
    assert names.count("before_term") == 10
