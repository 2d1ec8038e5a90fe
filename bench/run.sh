#!/usr/bin/env bash
# keepwarm's benchmark harness: cases P1–P10 (docs/BENCHMARKS.md), each run
# REPS times interleaved, then medians, ratios and goals.
#
#   bash bench/run.sh                 # full run (5 reps, release build, ~15 min on 2 cores);
#                                     # writes bench/results/latest.json, regenerates the
#                                     # results section of docs/BENCHMARKS.md and docs/bench/*.png
#   bash bench/run.sh --smoke         # tiny counts, 1 rep, debug build; writes bench/results/smoke.json
#   bash bench/run.sh --reps 3 --only "p1 p4"    # a subset (results to bench/results/partial.json)
#   cases for --only: p1 p2 p3 p4 p5 p6 p7 p8 p9 p10 allocs
#   bash bench/run.sh --bins DIR ...  # run prebuilt keepwarm-bench, keepwarm-allocs and keepwarm
#                                     # from DIR instead of building (before/after comparisons)
#
# A full run regenerates docs/BENCHMARKS.md only on a clean tree: the file
# names the commit (`git describe --always --dirty`); a dirty tree's results
# go to bench/results/dirty.json.
#
# Installs nginx, haproxy, wrk, valgrind and fonts-dejavu-core with apt-get
# when missing. All traffic goes to 127.0.0.1; every case is bounded by
# `timeout`. Daemons it starts (nginx ×2, haproxy, the gateway) run from a
# temporary directory and are stopped by pid on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

MODE=full
REPS=""
ONLY=""
PROFILE=""
BINS=""
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) MODE=smoke ;;
    --reps) REPS="$2"; shift ;;
    --only) ONLY="$2"; shift ;;
    --profile) PROFILE="$2"; shift ;;
    --bins) BINS="$2"; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [ "$MODE" = smoke ]; then
  REPS="${REPS:-1}"; PROFILE="${PROFILE:-dev}"
else
  REPS="${REPS:-5}"; PROFILE="${PROFILE:-release}"
fi
want() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }

say() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
loud() { printf '\n!!!!!!!! %s\n\n' "$*" >&2; }

W="$(mktemp -d /tmp/keepwarm-bench.XXXXXX)"
chmod 755 "$W"
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null || true
  done
  # nginx: QUIT is its graceful stop. HAProxy: TERM (QUIT only dumps its pools).
  for f in "$W"/origin/nginx.pid "$W"/proxy/nginx.pid; do
    [ -s "$f" ] && kill -QUIT "$(cat "$f")" 2>/dev/null || true
  done
  [ -s "$W/haproxy.pid" ] && kill -TERM "$(cat "$W/haproxy.pid")" 2>/dev/null || true
  sleep 0.5
  rm -rf "$W"
}
trap cleanup EXIT

# --- tools ---------------------------------------------------------------
need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
command -v wrk >/dev/null || need+=(wrk)
command -v valgrind >/dev/null || need+=(valgrind)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]} with apt-get"
  if ! bash "$ROOT/.ci/apt-install" "${need[@]}" >"$W/apt.log" 2>&1; then
    loud "apt-get install ${need[*]} FAILED (see below); cases needing them will be SKIPPED"
    tail -5 "$W/apt.log" >&2 || true
  fi
fi
export PATH="$PATH:/usr/sbin:/sbin"
have() { command -v "$1" >/dev/null; }
SKIPPED=()
have nginx || SKIPPED+=("P3 P4 P5 P6: nginx not installed")
have haproxy || SKIPPED+=("P6 haproxy: haproxy not installed")
have wrk || SKIPPED+=("P6: wrk not installed")
have valgrind || SKIPPED+=("P5: valgrind not installed")

# Many sockets (P8 holds 10,000 connections on each side).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true

# --- build ---------------------------------------------------------------
if [ -n "$BINS" ]; then
  say "using prebuilt binaries from $BINS (no build)"
  SRC="$BINS"
else
  say "building keepwarm-bench and keepwarm-gateway (--profile $PROFILE)"
  cargo build -q --profile "$PROFILE" -p keepwarm-bench -p keepwarm-gateway
  DIR=$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
  SRC="$ROOT/target/$DIR"
fi
# Run copies, so a concurrent `cargo build` in this tree cannot swap the
# binaries mid-run (and perf can still read the gateway's symbols).
cp "$SRC/keepwarm-bench" "$SRC/keepwarm-allocs" "$SRC/keepwarm" "$W/"
B="$W/keepwarm-bench"
ALLOCS="$W/keepwarm-allocs"
GW="$W/keepwarm"

# --- machine -------------------------------------------------------------
LOAD_BEFORE="$(uptime)"
# The commit measured. A full run on a tree with uncommitted changes to
# tracked files measures code no commit names: its results do not go into
# docs/BENCHMARKS.md (they go to bench/results/dirty.json instead).
GIT_DESCRIBE="$(git describe --always --dirty 2>/dev/null || echo unknown)"
DIRTY=false
case "$GIT_DESCRIBE" in *-dirty|unknown) DIRTY=true ;; esac
if [ "$MODE" = full ] && [ "$DIRTY" = true ]; then
  loud "the tree is DIRTY ($GIT_DESCRIBE): docs/BENCHMARKS.md will NOT be regenerated; commit first for a run that counts"
fi
ver() { "$@" 2>&1 | head -1 || true; }
python3 - "$W/machine.json" <<EOF || echo '{}' >"$W/machine.json"
import json, sys
cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), '?')
json.dump({
  "mode": "$MODE", "reps": $REPS, "build profile": "$PROFILE",
  "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "git": "$GIT_DESCRIBE",
  "binaries": "${BINS:-built from this tree}",
  "dirty": $([ "$DIRTY" = true ] && echo True || echo False),
  "uncommitted files (git status --porcelain)": "$(git status --porcelain 2>/dev/null | wc -l)",
  "nproc": "$(nproc)", "cpu": cpu, "kernel": "$(uname -sr)",
  "rustc": "$(ver rustc -V)",
  "nginx": "$(ver nginx -v)", "haproxy": "$(ver haproxy -v)", "wrk": "$(ver wrk -v)",
  "valgrind": "$(ver valgrind --version)",
  "load before (uptime)": "$LOAD_BEFORE",
}, open(sys.argv[1], 'w'), indent=1)
EOF

# --- daemons -------------------------------------------------------------
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
A=$(port); S=$(port); STRICT=$(port); NP=$(port); HP=$(port)
GEN_URL="http://127.0.0.1:$A/"
STRICT_URL="http://127.0.0.1:$STRICT/"
STUB="http://127.0.0.1:$S/stub_status"
BODY_JSON='{"id":"msg","type":"message","content":[]}'

start_nginx() { # name conf
  mkdir -p "$W/$1/tmp" && chmod 777 "$W/$1/tmp"
  printf '%s\n' "$2" >"$W/$1/nginx.conf"
  nginx -p "$W/$1" -c "$W/$1/nginx.conf" -e "$W/$1/error.log"
}
nginx_common() { # workers
  cat <<EOF
worker_processes $1;
worker_rlimit_nofile 65536;
pid $W/$2/nginx.pid;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path $W/$2/tmp/body;
  proxy_temp_path $W/$2/tmp/proxy;
  fastcgi_temp_path $W/$2/tmp/fastcgi;
  uwsgi_temp_path $W/$2/tmp/uwsgi;
  scgi_temp_path $W/$2/tmp/scgi;
EOF
}
if have nginx; then
  # The origin: one worker; the upstream of P3/P4/P5/P6 with its stub_status.
  start_nginx origin "$(nginx_common 1 origin)
  server {   # generous limits: P3a, P4, P5, and P6's upstream
    listen 127.0.0.1:$A backlog=4096;
    keepalive_timeout 75s;
    keepalive_requests 1000000;
    location / { return 200 'ok'; }
    location /v1/ { default_type application/json; return 200 '$BODY_JSON'; }
  }
  server {   # strict limits: P3b
    listen 127.0.0.1:$STRICT backlog=4096;
    keepalive_timeout 1s;
    keepalive_requests 100;
    location / { return 200 'ok'; }
  }
  server { listen 127.0.0.1:$S; location = /stub_status { stub_status; } }
}"
  # nginx as P6's reverse proxy: upstream keepalive with a 64-connection idle
  # cache (= wrk's concurrency, so it never churns connections for want of
  # cache room: the comparison is about design, not a setting).
  start_nginx proxy "$(nginx_common auto proxy)
  upstream up { server 127.0.0.1:$A; keepalive 64; }
  server {
    listen 127.0.0.1:$NP backlog=4096;
    keepalive_timeout 75s;
    keepalive_requests 1000000;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection \"\"; }
  }
}"
fi
if have haproxy; then
  cat >"$W/haproxy.cfg" <<EOF
global
  maxconn 4000
  pidfile $W/haproxy.pid
  daemon
defaults
  mode http
  option http-keep-alive
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  timeout http-keep-alive 75s
frontend fe
  bind 127.0.0.1:$HP
  default_backend be
backend be
  http-reuse always
  server origin 127.0.0.1:$A
EOF
  haproxy -f "$W/haproxy.cfg"
fi
GWPORT=$(port)
cat >"$W/gateway.json" <<EOF
{"PORT": $GWPORT, "LOG_LEVEL": "warn",
 "Providers": [{"name": "up", "api_base_url": "http://127.0.0.1:$A/v1/messages", "api_key": "x", "models": ["m"]}],
 "HttpConnectionPool": {"global": {"maxSockets": 16, "maxFreeSockets": 16}}}
EOF
cat >"$W/post.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"model":"up,m","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["anthropic-version"] = "2023-06-01"
EOF
if have nginx && have wrk; then
  "$GW" serve --config "$W/gateway.json" >"$W/gateway.log" 2>&1 &
  GWPID=$!
  PIDS+=($GWPID)
  for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$GWPORT/health" >/dev/null 2>&1 && break
    sleep 0.1
  done
  # Every proxy must answer the POST with the origin's body before we time anything.
  for u in "http://127.0.0.1:$GWPORT" "http://127.0.0.1:$NP" "http://127.0.0.1:$HP"; do
    case "$u" in *":$HP") have haproxy || continue ;; esac
    got=$(curl -sS -m 5 -X POST "$u/v1/messages" -H 'content-type: application/json' \
      -d '{"model":"up,m","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}' || true)
    [ "$got" = "$BODY_JSON" ] || { echo "run.sh: $u/v1/messages answered: $got" >&2; exit 1; }
  done
fi

# nginx proxy's processes: master and workers (for their CPU time).
proxy_pids() { local m; m=$(cat "$W/proxy/nginx.pid"); echo "$m$(pgrep -P "$m" | sed 's/^/,/' | tr -d '\n' || true)"; }

# --- counts ----------------------------------------------------------------
if [ "$MODE" = smoke ]; then
  P1="--n 5"; P2="--trials 1 --steady 3"
  P3A="--requests 2000"; P3B="--requests 2000 --pauses 1 --pause-ms 1200"
  P4="--warmup-ms 200 --duration-ms 1000"; P5="--n1 5 --n2 25"
  P6="--warmup-s 0 --duration-s 1"; P7="--n 50"
  P8="--conns 300"; P9="--conns 50 --window-ms 1000"
  AL="--warmup 20 --n 100"; P10="--concurrency 5 --gap-ms 1"
else
  P1="--n 50"; P2="--trials 5 --steady 10"
  P3A="--requests 100000"; P3B="--requests 100000 --pauses 4 --pause-ms 1500"
  P4="--warmup-ms 1000 --duration-ms 5000"; P5="--n1 200 --n2 2200"
  P6="--warmup-s 1 --duration-s 8"; P7="--n 2000"
  P8="--conns 10000"; P9="--conns 1000 --window-ms 10000"
  AL="--warmup 200 --n 2000"; P10="--concurrency 50 --gap-ms 5"
fi

RAW="$W/raw.jsonl"
: >"$RAW"
FAILED=()
case_run() { # label timeout_s args...
  local label="$1" t="$2"; shift 2
  bin_run "$label" "$t" "$B" "$@"
}
bin_run() { # label timeout_s binary args...
  local label="$1" t="$2"; shift 2
  say "$label"
  if ! timeout "$t" "$@" >>"$RAW" 2>"$W/err"; then
    loud "$label FAILED: $(tail -3 "$W/err")"
    FAILED+=("$label")
  fi
}

for rep in $(seq "$REPS"); do
  say "=== repetition $rep of $REPS"
  want p1 && case_run "P1 rep $rep" 120 p1 $P1
  want p2 && case_run "P2 rep $rep" 120 p2 $P2
  if have nginx; then
    want p3 && case_run "P3a rep $rep" 300 p3 --variant generous --url "$GEN_URL" --stub "$STUB" $P3A
    want p3 && case_run "P3b rep $rep" 300 p3 --variant strict --url "$STRICT_URL" --stub "$STUB" --keepalive-requests 100 $P3B
    # Alternate which client goes first.
    order=$([ $((rep % 2)) = 1 ] && echo "keepwarm reqwest" || echo "reqwest keepwarm")
    for c in $order; do
      want p4 && case_run "P4 $c rep $rep" 120 p4 --client "$c" --url "$GEN_URL" --stub "$STUB" $P4
    done
    # For reference: keepwarm capped at 16 connections (P3's and P6's maxSockets).
    want p4 && case_run "P4 keepwarm maxSockets 16 rep $rep" 120 p4 --client keepwarm --max-sockets 16 \
      --label keepwarm-16 --url "$GEN_URL" --stub "$STUB" $P4
    # Heap allocations per proxied (non-streaming) POST in the gateway.
    want allocs && bin_run "allocations per proxied request rep $rep" 120 "$ALLOCS" \
      --upstream "http://127.0.0.1:$A/v1/messages" $AL
    if have valgrind; then
      want p5 && case_run "P5 rep $rep" 600 p5 --url "$GEN_URL" --dir "$W/callgrind" $P5
    fi
    if have wrk; then
      targets=("keepwarm=http://127.0.0.1:$GWPORT/v1/messages=$GWPID" "nginx=http://127.0.0.1:$NP/v1/messages=$(proxy_pids)")
      have haproxy && targets+=("haproxy=http://127.0.0.1:$HP/v1/messages=$(cat "$W/haproxy.pid")")
      # Rotate the order each repetition.
      n=${#targets[@]}; args=()
      for i in $(seq 0 $((n - 1))); do args+=(--target "${targets[$(((i + rep) % n))]}"); done
      want p6 && case_run "P6 rep $rep" 300 p6 "${args[@]}" --stub "$STUB" --upstream-port "$A" --script "$W/post.lua" $P6
    fi
  fi
  want p7 && case_run "P7 rep $rep" 120 p7 --gateway "$GW" --workdir "$W/p7" $P7
  if want p7 && have nginx && have wrk; then
    vias=(--via "keepwarm=http://127.0.0.1:$GWPORT/v1/messages" --via "nginx=http://127.0.0.1:$NP/v1/messages")
    have haproxy && vias+=(--via "haproxy=http://127.0.0.1:$HP/v1/messages")
    case_run "P7 peers rep $rep" 120 p7-peers --direct "http://127.0.0.1:$A/v1/messages" "${vias[@]}" $P7
  fi
  # HTTP/2 vs HTTP/1.1 streams through the gateway; alternate which goes first.
  p10order=$([ $((rep % 2)) = 1 ] && echo "--protocol http2 --protocol http1" || echo "--protocol http1 --protocol http2")
  want p10 && case_run "P10 rep $rep" 120 p10 --gateway "$GW" --workdir "$W/p10" $p10order $P10
  want p8 && case_run "P8 plain rep $rep" 180 p8 $P8
  want p8 && case_run "P8 tls rep $rep" 240 p8 --tls $P8
  want p9 && case_run "P9 idle rep $rep" 120 p9-idle $P9
done

if [ "$MODE" = full ] && want p9; then
  say "P9 criterion: cargo bench -p keepwarm-pool --bench acquire"
  if cargo bench -q -p keepwarm-pool --bench acquire -- --warm-up-time 1 --measurement-time 4 >"$W/criterion.txt" 2>&1; then
    case_run "P9 criterion" 30 p9-criterion --dir "$ROOT/target/criterion"
    have valgrind && case_run "P9 profile (callgrind, 1 vs 10,000 keys)" 300 p9-profile --n 200000 --dir "$W/callgrind"
  else
    loud "cargo bench -p keepwarm-pool --bench acquire FAILED: $(tail -3 "$W/criterion.txt")"
    FAILED+=("P9 criterion")
  fi
elif [ "$MODE" = smoke ]; then
  loud "smoke: P9's criterion half (cargo bench, a release build of its own) is not run in smoke mode"
fi

# --- what an idle connection holds on the heap (massif, 2,000 connections) ----
# --time-unit=B: snapshots follow bytes allocated and freed, so the freeing after
# the bodies are read gets one and the last snapshot is the idle state (with
# instructions as time the last one can be the peak, while every body is held).
if [ "$MODE" = full ] && want p8 && have valgrind && have ms_print; then
  for v in plain tls; do
    say "P8 heap profile ($v): valgrind --tool=massif, 2,000 idle connections"
    flag=$([ "$v" = tls ] && echo --tls || true)
    if timeout 300 valgrind --tool=massif --quiet --time-unit=B --detailed-freq=1 --depth=40 --threshold=2 \
        --massif-out-file="$W/massif.$v.out" "$B" p8 $flag --conns 2000 --exit-idle >/dev/null 2>&1; then
      ms_print "$W/massif.$v.out" >"$W/massif.$v.txt"
      python3 bench/massif_top.py "$W/massif.$v.txt" 2000 "$v" >>"$RAW" || loud "massif_top.py failed ($v)"
    else
      loud "massif run failed ($v): no heap profile"
    fi
  done
fi

# --- where the gateway's allocations per request come from (valgrind DHAT) ----
if [ "$MODE" = full ] && want allocs && have valgrind && have nginx; then
  say "allocation profile: valgrind --tool=dhat on keepwarm-allocs (50 + 400 requests)"
  if timeout 300 valgrind --tool=dhat --dhat-out-file="$W/dhat.json" "$ALLOCS" \
      --upstream "http://127.0.0.1:$A/v1/messages" --warmup 50 --n 400 >/dev/null 2>"$W/dhat.err"; then
    python3 bench/dhat_top.py "$W/dhat.json" 450 >>"$RAW" || loud "dhat_top.py failed"
  else
    loud "the DHAT run failed: no allocation profile ($(tail -2 "$W/dhat.err"))"
  fi
fi

# --- where the gateway spends its time (perf, while wrk loads it) -------------
if [ "$MODE" = full ] && want p6 && have perf && have wrk && [ -n "${GWPID:-}" ]; then
  say "profiling the gateway with perf during a 6 s wrk run"
  wrk -t1 -c64 -d8s -s "$W/post.lua" "http://127.0.0.1:$GWPORT/v1/messages" >"$W/perf-wrk.txt" 2>&1 &
  WRKPID=$!
  sleep 1
  if timeout 60 perf record -q -e cpu-clock -F 999 -g -p "$GWPID" -o "$W/perf.data" -- sleep 6 >/dev/null 2>&1; then
    wait "$WRKPID" || true
    perf report -i "$W/perf.data" --stdio --no-children --sort dso 2>/dev/null | grep -E '^ +[0-9]' | head -6 >"$W/perf-dso.txt" || true
    perf report -i "$W/perf.data" --stdio --no-children --sort symbol 2>/dev/null | grep -E '^ +[0-9]' | head -20 >"$W/perf-self.txt" || true
    perf report -i "$W/perf.data" --stdio --children --sort symbol 2>/dev/null | grep -E '^ +[0-9]' | grep -F '[.]' | grep -v ' 0x0' | head -25 >"$W/perf-children.txt" || true
    perf report -i "$W/perf.data" --stdio --no-children --dsos keepwarm --sort symbol 2>/dev/null | grep -E '^ +[0-9]' | head -20 >"$W/perf-gateway.txt" || true
    python3 - "$W" >>"$RAW" <<'EOF' || true
import json, sys, re
w = sys.argv[1]
def lines(f):
    return [re.sub(r'\s+', ' ', l).strip()[:160] for l in open(f'{w}/{f}') if l.strip()]
rps = next((l.split(':')[1].strip() for l in open(f'{w}/perf-wrk.txt') if l.startswith('Requests/sec')), '?')
print(json.dumps({"case": "profile_gateway", "wrk_rps_while_profiled": rps,
  "by_dso": lines('perf-dso.txt'), "self": lines('perf-self.txt'), "children_user": lines('perf-children.txt'),
  "gateway_binary_self": lines('perf-gateway.txt')}))
EOF
  else
    loud "perf record failed: no gateway profile"
    wait "$WRKPID" || true
  fi
fi

# --- summary ---------------------------------------------------------------
LOAD_AFTER="$(uptime)"
python3 - "$W/machine.json" "$LOAD_AFTER" <<'EOF' || true
import json, sys
m = json.load(open(sys.argv[1])); m["load after (uptime)"] = sys.argv[2]
json.dump(m, open(sys.argv[1], 'w'), indent=1)
EOF
mkdir -p bench/results
if [ "$MODE" = smoke ]; then
  OUT=bench/results/smoke.json
elif [ -n "$ONLY" ] || [ "$REPS" != 5 ]; then
  OUT=bench/results/partial.json
elif [ "$DIRTY" = true ]; then
  OUT=bench/results/dirty.json
else
  OUT=bench/results/latest.json
fi
cp "$RAW" "${OUT%.json}.raw.jsonl"
DOCS=()
[ "$OUT" = bench/results/latest.json ] && DOCS=(--docs docs/BENCHMARKS.md)
"$B" summarize --raw "$RAW" --machine "$W/machine.json" --out "$OUT" "${DOCS[@]}"
if [ "$OUT" = bench/results/latest.json ]; then
  "$B" chart --latest "$OUT" --out-dir docs/bench
fi
echo
echo "results: $OUT (raw lines: ${OUT%.json}.raw.jsonl)"
echo "load before: $LOAD_BEFORE"
echo "load after:  $LOAD_AFTER"
[ "$MODE" = smoke ] && [ "$PROFILE" = dev ] && echo "(smoke mode: debug build and tiny counts; the numbers only show that every case runs)"
for s in "${SKIPPED[@]:-}"; do [ -n "$s" ] && loud "SKIPPED $s"; done
if [ ${#FAILED[@]} -gt 0 ]; then
  loud "FAILED: ${FAILED[*]}"
  exit 1
fi
