#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine (as root), then runs them.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
if ! command -v promtool >/dev/null || ! command -v amtool >/dev/null \
   || ! command -v prometheus-pushgateway >/dev/null || ! command -v victoria-metrics >/dev/null \
   || ! command -v docker-compose >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends \
        prometheus prometheus-alertmanager prometheus-pushgateway victoria-metrics docker-compose
fi

python3 -m pip install -q --disable-pip-version-check -e '.[test]'

# Lint and type checks first: they take seconds and keep the tree clean.
python3 -m ruff check src tests benchmarks examples hatch_build.py
python3 -m ruff format --check src tests benchmarks examples hatch_build.py
python3 -m mypy

# Any arguments go to pytest.
python3 -m pytest -q "$@"
