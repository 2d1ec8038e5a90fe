#!/usr/bin/env bash
# System calls the gateway makes per proxied request under P6's load:
# nginx origin (1 worker), `keepwarm serve` (release, one provider,
# maxSockets 16), wrk -t1 -c64 with P6's POST script, and `strace -c -f`
# attached to the gateway for 3 s of the run. Prints strace's table and the
# calls per request, counting requests by the gateway's `writev` to the
# caller (one per response).
#
#   bash bench/syscalls.sh        # builds the release gateway if needed
#
# Installs nginx, wrk and strace with apt-get when missing. Loopback only.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
need=()
for c in nginx wrk strace; do command -v "$c" >/dev/null || need+=("$c"); done
[ "${#need[@]}" -eq 0 ] || { apt-get update -qq && apt-get install -y -qq "${need[@]/nginx/nginx-light}" >/dev/null; }
cargo build -q --release -p keepwarm-gateway
W=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; [ -f "$W/nginx.pid" ] && kill "$(cat "$W/nginx.pid")" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
A=$(port); G=$(port)
mkdir -p "$W/tmp"
cat >"$W/nginx.conf" <<CONF
worker_processes 1;
pid $W/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $W/tmp/b; proxy_temp_path $W/tmp/p; fastcgi_temp_path $W/tmp/f;
  uwsgi_temp_path $W/tmp/u; scgi_temp_path $W/tmp/s;
  server { listen 127.0.0.1:$A backlog=4096; keepalive_timeout 75s; keepalive_requests 1000000;
    location /v1/ { default_type application/json; return 200 '{"id":"msg_1","type":"message","content":[]}'; } }
}
CONF
nginx -p "$W" -c "$W/nginx.conf" -e "$W/error.log"
cat >"$W/gw.json" <<CONF
{"PORT": $G, "LOG_LEVEL": "warn",
 "Providers": [{"name": "up", "api_base_url": "http://127.0.0.1:$A/v1/messages", "api_key": "x", "models": ["m"]}],
 "HttpConnectionPool": {"global": {"maxSockets": 16, "maxFreeSockets": 16}}}
CONF
cat >"$W/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"model":"up,m","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["anthropic-version"] = "2023-06-01"
LUA
target/release/keepwarm serve --config "$W/gw.json" >"$W/gw.log" 2>&1 &
GW=$!; PIDS+=("$GW")
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$G/health" >/dev/null 2>&1 && break; sleep 0.1; done
wrk -t1 -c64 -d6s -s "$W/post.lua" "http://127.0.0.1:$G/v1/messages" >"$W/wrk.txt" 2>&1 &
PIDS+=($!)
sleep 1.5
timeout 3 strace -c -f -p "$GW" -o "$W/strace.txt" || true
wait "${PIDS[1]}" || true
grep Requests/sec "$W/wrk.txt" || true
cat "$W/strace.txt"
# One writev per response to the caller: the requests served while traced.
python3 - "$W/strace.txt" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    p = line.split()
    if len(p) >= 5 and p[0][0].isdigit() and p[-1] not in ("total",):
        rows[p[-1]] = int(p[3])
n = rows.get("writev", 0)
if n:
    print("per request (one writev per response):", ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(rows.items(), key=lambda kv: -kv[1])))
PY
