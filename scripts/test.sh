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

# The library tests on the other Pythons the package supports (TTA.dev itself needs 3.12+): each
# in a venv of its own (.venv312, .venv313), made on first use. The whole suite ran above, on one.
for version in 3.12 3.13; do
    python=$(command -v "python$version" || true)
    if [ -z "$python" ]; then
        python=$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}/versions/$version".*/bin/python 2>/dev/null \
            | sort -V | tail -n 1 || true)
    fi
    if [ -z "$python" ]; then
        echo "test.sh: no Python $version found (python$version, pyenv); skipping its run" >&2
        continue
    fi
    venv=".venv${version/./}"
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]'
    echo "test.sh: library tests on $("$venv/bin/python" --version)"
    "$venv/bin/python" -m pytest -q -m "not slow" -p no:cacheprovider
done

# The library tests once more on the lowest dependency versions pyproject.toml allows
# (constraints-lowest.txt), in a venv of their own, so that its lower bounds stay true.
[ -x .venv-lowest/bin/python ] || python3 -m venv .venv-lowest
.venv-lowest/bin/python -m pip install -q --disable-pip-version-check \
    -c constraints-lowest.txt -e '.[test]'
echo "test.sh: library tests on the lowest allowed dependency versions"
.venv-lowest/bin/python -m pytest -q -m "not slow" -p no:cacheprovider
