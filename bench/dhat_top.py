#!/usr/bin/env python3
"""Allocation sites per proxied request from a valgrind DHAT profile of
keepwarm-allocs: prints one JSON line for the harness.

usage: dhat_top.py DHAT_JSON REQUESTS [TOP]

REQUESTS is every request the profiled run sent (warm-up included): a site
that allocates on every request has at least that many blocks; sites below
95% of it (start-up, occasional growth) are left out. Each site is named by
its first frames outside the allocator and the standard library."""
import json
import re
import sys

path, n = sys.argv[1], int(sys.argv[2])
top = int(sys.argv[3]) if len(sys.argv) > 3 else 40
d = json.load(open(path))
ftbl = d["ftbl"]
noise = re.compile(
    r"(library/alloc|library/core|library/std|stats_alloc|__rust|vgpreload|RawVec|raw_vec|"
    r"alloc::alloc|\[root\]|alloc \(|alloc_impl|finish_grow|grow_amortized|with_capacity|"
    r"try_allocate|exchange_malloc|boxed\.rs|src/rc\.rs|sync\.rs|UnknownInlinedFun \(src/de)"
)
rows = []
for pp in d["pps"]:
    if pp["tbk"] < 0.95 * n:
        continue
    frames = [re.sub(r"^0x[0-9A-Fa-f]+: ", "", ftbl[i]) for i in pp["fs"]]
    named = [f for f in frames if not noise.search(f)][:3]
    rows.append((pp["tbk"] / n, pp["tb"] / n, named))
rows.sort(key=lambda r: -r[0])
lines = []
for per, size, named in rows[:top]:
    where = " <- ".join(re.sub(r"\s+", " ", f)[:110] for f in named) or "?"
    lines.append(f"{per:5.2f} x {size:7.0f} B  {where}")
print(json.dumps({
    "case": "profile_allocs",
    "requests_profiled": n,
    "sites_per_request": len(rows),
    "allocations_per_request_in_sites": round(sum(r[0] for r in rows), 2),
    "top": lines,
}))
