#!/usr/bin/env bash
# Does mimalloc help the gateway on this machine? (issue 9, item 4)
#
#   bash bench/mimalloc.sh [ROUNDS]     # default 3 rounds, ~1 min after the builds
#
# Builds the `keepwarm` binary twice in release mode — glibc malloc (the
# default) and `--features mimalloc` — and loads each as P6 does: one nginx
# origin worker answering `/v1/messages`, the gateway in front with
# maxSockets 16, `wrk -t1 -c64 -d5s` POSTing the P6 body. The two binaries
# alternate for ROUNDS rounds; prints one JSON line per run and the medians,
# their ratio and each binary's RSS after its last run. Needs a quiet
# machine: other load moves the numbers more than an allocator does.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
ROUNDS="${1:-3}"
bash .ci/apt-install nginx-light wrk >/dev/null
W="$(mktemp -d /tmp/keepwarm-mimalloc.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$W/origin/nginx.pid" ] && kill "$(cat "$W/origin/nginx.pid")" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

echo "building keepwarm (glibc malloc), then keepwarm --features mimalloc (release)" >&2
cargo build -q --release -p keepwarm-gateway
cp target/release/keepwarm "$W/keepwarm-glibc"
# A target dir of its own, so the default binary in target/release stays as it is.
cargo build -q --release -p keepwarm-gateway --features mimalloc --target-dir target/mimalloc
cp target/mimalloc/release/keepwarm "$W/keepwarm-mimalloc"

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
A=$(port)
mkdir -p "$W/origin/tmp"
cat >"$W/origin/nginx.conf" <<EOF
worker_processes 1;
pid $W/origin/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $W/origin/tmp;
  server {
    listen 127.0.0.1:$A backlog=4096;
    keepalive_timeout 75s;
    keepalive_requests 1000000;
    location /v1/ { default_type application/json; return 200 '{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"ok"}],"model":"m","stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}}'; }
  }
}
EOF
nginx -p "$W/origin" -c "$W/origin/nginx.conf" -e "$W/origin/error.log"
cat >"$W/post.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"model":"up,m","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["anthropic-version"] = "2023-06-01"
EOF

run() { # binary label
  local gp pid rps rss
  gp=$(port)
  cat >"$W/gw.json" <<EOF
{"PORT": $gp, "LOG_LEVEL": "warn",
 "Providers": [{"name": "up", "api_base_url": "http://127.0.0.1:$A/v1/messages", "api_key": "x", "models": ["m"]}],
 "HttpConnectionPool": {"global": {"maxSockets": 16, "maxFreeSockets": 16}}}
EOF
  "$1" serve --config "$W/gw.json" >"$W/$2.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$gp/health" >/dev/null 2>&1 && break; sleep 0.1; done
  wrk -t1 -c64 -d1s -s "$W/post.lua" "http://127.0.0.1:$gp/v1/messages" >/dev/null # warm-up
  rps=$(wrk -t1 -c64 -d5s -s "$W/post.lua" "http://127.0.0.1:$gp/v1/messages" | awk '/^Requests\/sec/ {print $2}')
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "{\"allocator\": \"$2\", \"req_per_s\": $rps, \"rss_kib\": $rss}"
}

: >"$W/runs.jsonl"
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then order="glibc mimalloc"; else order="mimalloc glibc"; fi
  for a in $order; do run "$W/keepwarm-$a" "$a" | tee -a "$W/runs.jsonl"; done
done
python3 - "$W/runs.jsonl" "$(git describe --always --dirty)" <<'EOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
med = {a: statistics.median(r["req_per_s"] for r in runs if r["allocator"] == a) for a in ("glibc", "mimalloc")}
rss = {a: [r["rss_kib"] for r in runs if r["allocator"] == a][-1] for a in ("glibc", "mimalloc")}
print(json.dumps({"case": "mimalloc", "commit": sys.argv[2], "rounds": len(runs) // 2,
                  "median_req_per_s": med, "mimalloc_over_glibc": round(med["mimalloc"] / med["glibc"], 3),
                  "rss_kib_after_last_run": rss}))
EOF
