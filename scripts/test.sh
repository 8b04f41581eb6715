#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine (as root), then runs them.
# Python: a virtual environment of its own (.venv in the checkout, or $TTA_VENV), because Debian's
# python3 refuses `pip install` outside one (externally-managed-environment, PEP 668).
# Go programs (Collector, Jaeger, Prometheus 3, Alertmanager): scripts/build-components.sh, cached
# outside the checkout (see docs/stack.md).
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
apt_packages=()
if ! command -v promtool >/dev/null || ! command -v amtool >/dev/null \
   || ! command -v prometheus-pushgateway >/dev/null || ! command -v victoria-metrics >/dev/null \
   || ! command -v docker-compose >/dev/null; then
    apt_packages+=(prometheus prometheus-alertmanager prometheus-pushgateway victoria-metrics
                   docker-compose)
fi
# Debian splits `venv` and `ensurepip` out of python3 into python3-venv.
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    apt_packages+=(python3-venv)
fi
if [ ${#apt_packages[@]} -gt 0 ]; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${apt_packages[@]}"
fi

venv=${TTA_VENV:-.venv}
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
python=$venv/bin/python
"$python" -m pip install -q --disable-pip-version-check -e '.[test]'

# Go is often installed outside the default PATH (the official tarball's /usr/local/go).
if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
    export PATH=$PATH:/usr/local/go/bin
fi
if command -v go >/dev/null; then
    bash scripts/build-components.sh
else
    echo "test.sh: Go not found: the end-to-end tests on the built components will be skipped" >&2
fi

# Lint and type checks first: they take seconds and keep the tree clean.
"$python" -m ruff check src tests benchmarks examples hatch_build.py
"$python" -m ruff format --check src tests benchmarks examples hatch_build.py
"$python" -m mypy

# Any arguments go to pytest.
"$python" -m pytest -q "$@"

# The library's own tests (not the shipped assets, the stack or the CLI, which do not depend on the
# interpreter or the OpenTelemetry version) once more on each other supported Python and on the lowest
# dependency versions pyproject.toml allows: each in a venv of its own, made on first use.
library_tests=(
    tests/test_observed.py tests/test_primitives.py tests/test_ttadev.py tests/test_ttadev_coexist.py
    tests/test_concurrency.py tests/test_context.py tests/test_logs.py tests/test_setup.py
    tests/test_lifecycle.py tests/test_exposition.py tests/test_multiprocess.py tests/test_processes.py
    tests/test_budget.py tests/test_workflow_map.py tests/test_failure_origin.py
    tests/test_time_to_first_item.py tests/test_llm.py tests/test_llm_budget.py tests/test_llm_prices.py
    tests/test_llm_ratelimit.py tests/test_llm_waste.py tests/test_contract.py
)
run_library_tests() {  # VENV PYTHON LABEL [pip arguments...]
    local venv=$1 interpreter=$2 label=$3
    shift 3
    [ -x "$venv/bin/python" ] || "$interpreter" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "$@" -e '.[test]'
    echo "test.sh: library tests on $label"
    "$venv/bin/python" -m pytest -q -m "not slow" -p no:cacheprovider "${library_tests[@]}"
}

# TTA.dev itself needs 3.12+. A candidate must run: pyenv puts shims on PATH for versions it has
# but has not selected, and those fail.
for version in 3.12 3.13; do
    interpreter=
    for candidate in "$(command -v "python$version" || true)" \
        $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}/versions/$version".*/bin/python 2>/dev/null | sort -rV); do
        if [ -n "$candidate" ] && "$candidate" -c 'import venv' 2>/dev/null; then
            interpreter=$candidate
            break
        fi
    done
    if [ -z "$interpreter" ]; then
        echo "test.sh: no working Python $version found (python$version, pyenv); skipping its run" >&2
        continue
    fi
    run_library_tests ".venv${version/./}" "$interpreter" "$("$interpreter" --version)"
done

# The lower bounds in pyproject.toml stay true (constraints-lowest.txt pins them).
run_library_tests .venv-lowest python3 "the lowest allowed dependency versions" \
    -c constraints-lowest.txt
