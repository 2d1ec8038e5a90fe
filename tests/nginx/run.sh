#!/usr/bin/env bash
# HTTP/2 against nginx (a server nobody here wrote): installs nginx (Debian's
# nginx-light where it exists, else nginx; both have the http2 module), then
# runs crates/keepwarm/tests/nginx.rs with KEEPWARM_NGINX set, so a missing
# nginx fails instead of skipping. About 1 s after the build.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  bash .ci/apt-install nginx-light || bash .ci/apt-install nginx
fi
bin=$(command -v nginx || echo /usr/sbin/nginx)
KEEPWARM_NGINX="$bin" cargo test -p keepwarm --test nginx -- --nocapture
