#!/usr/bin/env bash
# The gateway under the official `anthropic` and `openai` Python SDKs and curl.
# Installs the SDKs into a virtual environment (target/sdk-venv), starts the
# sdk_fixture (mock providers + gateway), and runs tests/sdk/test_sdks.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl; }
venv=target/sdk-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'anthropic>=0.40' 'openai>=1.50'
cargo build --quiet -p keepwarm-gateway --example sdk_fixture
"$venv/bin/python" tests/sdk/test_sdks.py target/debug/examples/sdk_fixture
