#!/usr/bin/env bash
# The real Claude Code CLI (npm @anthropic-ai/claude-code, installed into
# target/claude-code when missing) answers through the gateway from an
# OpenAI-format mock provider: Anthropic Messages in, Chat Completions
# upstream, translated back (streaming, with Claude Code's tools offered).
# Offline: HOME in a temp dir, CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=target/claude-code
if [ ! -x "$dir/node_modules/.bin/claude" ]; then
    command -v npm >/dev/null || bash .ci/apt-install nodejs npm
    mkdir -p "$dir"
    (cd "$dir" && npm install --no-audit --no-fund --silent @anthropic-ai/claude-code)
fi
cargo build --quiet -p keepwarm-gateway --example sdk_fixture
python3 tests/claude/test_claude.py target/debug/examples/sdk_fixture "$dir/node_modules/.bin/claude"
