"""Multiprocess mode: every process's calls in one scrape, exact, also after processes exit."""

from __future__ import annotations

from pathlib import Path

from .test_processes import _run


def test_pool_workers_and_forked_children_are_counted_exactly(tmp_path: Path) -> None:
    import subprocess

    # What a process killed between writing its temporary file and renaming it leaves behind.
    dead_pid = subprocess.Popen(["true"])
    dead_pid.wait()
    stale = tmp_path / f".1-1.proc.{dead_pid.pid}.tmp"
    stale.write_bytes(b"half")
    out = _run(
        f"""
        import json, multiprocessing as mp, os, sys, time, urllib.request
        from prometheus_client.openmetrics.parser import text_string_to_metric_families
        import tta_observability as tto
        from tests import procs_app

        def scrape(url):
            req = urllib.request.Request(url, headers={{"Accept": "application/openmetrics-text"}})
            with urllib.request.urlopen(req, timeout=5) as resp:
                text = resp.read().decode()
            calls, exemplars = 0, 0
            for fam in text_string_to_metric_families(text):
                for s in fam.samples:
                    if s.name == "tta_primitive_executions_total" and \\
                            s.labels["primitive_name"] == "procs_double":
                        calls += s.value
                        exemplars += s.exemplar is not None
            return calls, exemplars

        if __name__ == "__main__":
            h = tto.setup("mp-pool", metrics_port=0, multiprocess_dir={str(tmp_path)!r})
            ctx = mp.get_context("fork")
            for _ in range(3):
                with ctx.Pool(2) as pool:  # terminated right after the last task
                    pool.map(procs_app.double, range(100))
            with ctx.Pool(2) as pool:
                pool.map(procs_app.double, range(100))
                pool.close()
                pool.join()  # workers end normally (os._exit after the finalizers)
            pid = os.fork()
            if pid == 0:
                for i in range(50):
                    procs_app.double(i)
                sys.exit(0)
            os.waitpid(pid, 0)
            procs_app.double(1)
            want = 4 * 100 + 50 + 1
            deadline = time.monotonic() + 20
            seen = scrape(h.metrics_url)
            while seen[0] != want and time.monotonic() < deadline:
                time.sleep(0.1)
                seen = scrape(h.metrics_url)
            again = scrape(h.metrics_url)
            files = sorted(os.listdir({str(tmp_path)!r}))
            h.shutdown()
            print(json.dumps({{"calls": seen[0], "again": again[0], "exemplars": seen[1],
                              "files": files, "me": os.getpid()}}))
        """,
        timeout=90,
    )
    assert out["calls"] == 451
    assert out["again"] == 451  # folding the exited processes' files changed nothing
    assert int(out["exemplars"]) >= 1  # type: ignore[call-overload]
    # Bounded on disk: at most this process's own file, and one archive of every exited process.
    proc_files = [f for f in out["files"] if f.endswith(".proc")]  # type: ignore[attr-defined]
    assert {f.split("-")[0] for f in proc_files} <= {str(out["me"])}
    assert "archive.dead" in out["files"]  # type: ignore[operator]
    assert not stale.exists()
