#!/usr/bin/env bash
# The benchmark harness in smoke mode: every case at tiny counts, once, with a
# debug build, so the harness cannot silently rot. Exits 0 on success and
# prints a short summary; installs nginx, haproxy, wrk, valgrind and
# fonts-dejavu-core with apt-get when missing (cases that need a tool that
# could not be installed are skipped, loudly). Under 2 minutes on 2 cores
# once the workspace's debug build exists (as after `cargo test --workspace`).
set -euo pipefail
exec bash "$(dirname "$0")/run.sh" --smoke "$@"
