#!/usr/bin/env bash
# Builds the monitoring stack's programs from pinned Go modules: an OpenTelemetry Collector with
# exactly the components compose/otel-collector/config.yaml uses, Jaeger v2, Prometheus 3 with
# promtool, Alertmanager with amtool. Versions: tools/components/versions.env (the compose image
# tags are the same; tests/test_compose.py compares them).
#
# Output: $TTA_COMPONENTS_DIR (default ~/.cache/tta-observability/components), outside the clone:
#   <name>-<version>/   the binaries of one build
#   bin/                symlinks to the pinned builds; `tta-observability stack up --native` and
#                       the tests look here first, then on PATH
#   go/                 the Go module and build caches, kept so that a rebuild is quick
# A build is skipped when its inputs (version, go.mod, go.sum, sources) are unchanged, so a
# second run takes seconds. Needs Go >= 1.26.7 (Prometheus 3.16 asks for it) and the Go module
# proxy.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
src=$repo/tools/components
# shellcheck source=../tools/components/versions.env
. "$src/versions.env"

dir=${TTA_COMPONENTS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tta-observability/components}
export GOMODCACHE=${TTA_GOMODCACHE:-$dir/go/mod} GOCACHE=${TTA_GOCACHE:-$dir/go/build}
# Read-only module cache files make `rm -rf` of the cache fail; the local toolchain only, since
# go.mod's go line must not trigger a toolchain download.
export GOFLAGS=-modcacherw GOTOOLCHAIN=${GOTOOLCHAIN:-local} CGO_ENABLED=0
command -v go >/dev/null || { echo "build-components: needs Go >= 1.26.7 (https://go.dev/dl/)" >&2; exit 1; }
mkdir -p "$dir/bin"

# build NAME VERSION LDFLAGS PACKAGE...: builds in $in (default tools/components/NAME) into
# $dir/NAME-VERSION, with $overlay (go build -overlay=FILE, or empty) as extra flags.
overlay='' in=''
build() {
    local name=$1 version=$2 ldflags=$3; shift 3
    local out=$dir/$name-$version key
    key=$( (echo "$version $ldflags $(go env GOVERSION)"; cat "$src/$name"/go.mod "$src/$name"/go.sum
            cat "$src/$name"/*.go "$src/$name"/*.overlay 2>/dev/null || true) | sha256sum | cut -c1-16)
    if [ "$(cat "$out/.built" 2>/dev/null)" != "$key" ]; then
        echo "build-components: building $name $version (minutes on a cold cache)"
        local start=$SECONDS tmp=$out.tmp.$$
        rm -rf "$tmp" && mkdir -p "$tmp"
        (cd "${in:-$src/$name}" && nice -n 10 go build -trimpath -ldflags "-s -w $ldflags" $overlay \
            -o "$tmp/" "$@")
        echo "$key" > "$tmp/.built"
        rm -rf "$out" && mv "$tmp" "$out"
        echo "build-components: $name $version built in $((SECONDS - start)) s"
    fi
    local f
    for f in "$out"/*; do ln -sfn "$f" "$dir/bin/$(basename "$f")"; done
}

pv=github.com/prometheus/common/version
build otelcol "$OTELCOL_VERSION" "-X main.version=$OTELCOL_VERSION" .
build prometheus "$PROMETHEUS_VERSION" "-X $pv.Version=$PROMETHEUS_VERSION" \
    github.com/prometheus/prometheus/cmd/prometheus github.com/prometheus/prometheus/cmd/promtool
# The alertmanager module lacks the generated web UI assets that its ui/web.go embeds, and Go
# refuses overlays inside the module cache: build in a copy of the module (its own go.mod and
# go.sum, verified when downloaded) with that one file overlaid by our small replacement (no UI;
# the API and health endpoints are unchanged).
am=github.com/prometheus/alertmanager
am_src=$dir/go/src/alertmanager-$ALERTMANAGER_VERSION
if [ ! -f "$am_src/go.mod" ]; then
    am_mod=$(cd "$src/alertmanager" && go mod download "$am" && go list -m -f '{{.Dir}}' "$am")
    rm -rf "$am_src.tmp" && mkdir -p "$(dirname "$am_src")"
    cp -r "$am_mod" "$am_src.tmp" && chmod -R u+w "$am_src.tmp" && mv "$am_src.tmp" "$am_src"
fi
printf '{"Replace": {"%s": "%s"}}\n' "$am_src/ui/web.go" "$src/alertmanager/webui.go.overlay" \
    > "$dir/go/alertmanager-overlay.json"
overlay=-overlay=$dir/go/alertmanager-overlay.json in=$am_src
build alertmanager "$ALERTMANAGER_VERSION" "-X $pv.Version=$ALERTMANAGER_VERSION" \
    ./cmd/alertmanager ./cmd/amtool
overlay='' in=''
build jaeger "$JAEGER_VERSION" \
    "-X github.com/jaegertracing/jaeger/internal/version.latestVersion=v$JAEGER_VERSION" \
    github.com/jaegertracing/jaeger/cmd/jaeger
# Links left from a build that is gone (an older version, a renamed program).
find "$dir/bin" -xtype l -delete
echo "build-components: ready in $dir/bin"
