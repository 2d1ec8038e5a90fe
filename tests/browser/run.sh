#!/usr/bin/env bash
# The dashboard in a real browser: Debian's chromium driven by Playwright for
# Python (in a venv under target/), against the sdk_fixture (mock providers +
# a gateway with APIKEY). Saves docs/dashboard.png.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash .ci/apt-install chromium
venv=target/browser-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'playwright>=1.40,<2'
cargo build --quiet -p keepwarm-gateway --example sdk_fixture
"$venv/bin/python" tests/browser/test_dashboard.py target/debug/examples/sdk_fixture docs/dashboard.png
