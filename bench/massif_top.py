#!/usr/bin/env python3
"""Summarizes the last detailed snapshot of `ms_print` output (massif run of
`keepwarm-bench p8 --exit-idle` with `--time-unit=B`, so the heap while
holding N idle connections) as one JSON line: heap bytes per connection and the biggest
allocation sites, each named by its first frame outside the allocator.

Usage: massif_top.py MS_PRINT_OUTPUT CONNECTIONS VARIANT
"""
import json
import re
import sys

text = open(sys.argv[1]).read().splitlines()
conns = int(sys.argv[2])
variant = sys.argv[3]

# Snapshot header rows: "  n  time(i)  total(B)  useful-heap(B) extra-heap(B) stacks(B)".
row = re.compile(r'^\s*(\d+)\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)\s*$')
starts = [(i, row.match(l)) for i, l in enumerate(text) if row.match(l)]
detailed = [(i, m) for i, m in starts if i + 1 < len(text) and '(heap allocation functions)' in text[i + 1]]
if not detailed:
    sys.exit('no detailed snapshot in ms_print output')
i0, m = detailed[-1]
useful = int(m.group(4).replace(',', ''))
extra = int(m.group(5).replace(',', ''))
end = next((j for j in range(i0 + 2, len(text)) if row.match(text[j]) or text[j].startswith('----')), len(text))
block = text[i0 + 2:end]

SKIP = ('library/alloc', 'library/core', 'library/std', 'alloc (', 'alloc_impl', 'allocate (',
        'unix.rs', '__rdl_alloc', 'raw_vec', 'with_capacity', 'finish_grow', 'grow_amortized',
        'do_alloc', 'new_uninitialized', 'fallible_with_capacity', 'box_new_uninit', 'aligned_malloc',
        'UnknownInlinedFun (library', 'do_reserve_and_handle', 'reserve_rehash', 'prepare_resize',
        'resize_inner')
entry = re.compile(r'->([\d.]+)% \(([\d,]+)B\) (?:0x[0-9A-Fa-f]+: )?(.*)')
tops = []
for k, l in enumerate(block):
    if not l.startswith('->'):
        continue
    m = entry.search(l)
    size = int(m.group(2).replace(',', ''))
    frames = []
    for l2 in block[k:k + 60]:
        if l2.startswith('->') and l2 is not l:
            break
        m2 = entry.search(l2)
        if m2:
            f = m2.group(3)
            if not any(s in f for s in SKIP):
                frames.append(re.sub(r'<[^<>]*(<[^<>]*>[^<>]*)*>', '<…>', f)[:110])
    site = ' ← '.join(frames[:3]) if frames else m.group(3)[:110]
    tops.append(f'{size / conns:8.0f} B/conn ({float(m.group(1)):5.2f}%)  {site}')
print(json.dumps({
    'case': 'profile_p8', 'variant': variant, 'connections': conns,
    'heap_bytes_per_connection': (useful + extra) / conns,
    'useful_heap_bytes_per_connection': useful / conns,
    'top': tops[:10],
}))
