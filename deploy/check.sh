#!/usr/bin/env bash
# Checks deploy/ beyond what `cargo test` does (tests/deploy.rs checks that
# every metric the alert rules and the Grafana dashboard name exists):
#  - promtool on the alert rules and the scrape config (Debian's prometheus
#    package brings promtool; when it cannot be installed this says so loudly
#    and skips);
#  - with --build: builds the release binary with the very command of
#    deploy/Dockerfile's build stage (there is no Docker engine here) and
#    checks the image's config.json with it.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v promtool >/dev/null; then
  bash .ci/apt-install prometheus >/dev/null 2>&1 || true
fi
if command -v promtool >/dev/null; then
  promtool check rules deploy/prometheus/alerts.yml
  promtool check config --syntax-only deploy/prometheus/prometheus.yml
else
  echo "SKIPPED: promtool is not installed and could not be (apt-get install prometheus failed); alert rules NOT checked" >&2
fi
if [ "${1:-}" = "--build" ]; then
  cmd=$(sed -n 's/^RUN \(cargo build [^&\\]*[^ &\\]\).*/\1/p' deploy/Dockerfile)
  [ -n "$cmd" ] || { echo "no 'RUN cargo build' line in deploy/Dockerfile" >&2; exit 1; }
  echo "== $cmd   (as deploy/Dockerfile's build stage)"
  eval "$cmd"
  KEEPWARM_API_KEY=k ANTHROPIC_API_KEY=a OPENAI_API_KEY=o \
    target/release/keepwarm check-config deploy/kubernetes/config.json >/dev/null
  echo "release binary built as in the Dockerfile; deploy/kubernetes/config.json is valid"
fi
