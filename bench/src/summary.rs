//! `summarize`: reads the JSON lines of every run (`raw.jsonl`), takes the
//! median (and min/max) of every number per case over the repetitions,
//! checks the goals, and writes `latest.json` plus a markdown section that
//! `run.sh` splices into `docs/BENCHMARKS.md` (with P10's HTTP/2 vs
//! HTTP/1.1 rows as their own table).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::util::{median, BoxResult};

/// Every record of one case (and variant), in run order.
type Groups = BTreeMap<String, Vec<Map<String, Value>>>;

fn group(raw: &str) -> Groups {
    let mut g = Groups::new();
    for line in raw.lines() {
        let Ok(Value::Object(m)) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let Some(case) = m.get("case").and_then(Value::as_str) else {
            continue;
        };
        let key = match m.get("variant").and_then(Value::as_str) {
            Some(v) => format!("{case}/{v}"),
            None => case.to_string(),
        };
        g.entry(key).or_default().push(m);
    }
    g
}

/// `{field: {median, min, max, n}}` over the numeric top-level fields (and
/// one level of nested objects, as `outer.inner`).
fn stats(records: &[Map<String, Value>]) -> Map<String, Value> {
    let mut vals: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in records {
        for (k, v) in r {
            match v {
                Value::Number(n) => vals.entry(k.clone()).or_default().extend(n.as_f64()),
                Value::Bool(b) => {
                    vals.entry(k.clone())
                        .or_default()
                        .push(if *b { 1.0 } else { 0.0 })
                }
                Value::Object(inner) => {
                    for (k2, v2) in inner {
                        if let Some(x) = v2.as_f64() {
                            vals.entry(format!("{k}.{k2}")).or_default().push(x);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    vals.into_iter()
        .map(|(k, v)| {
            let min = v.iter().copied().fold(f64::INFINITY, f64::min);
            let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (
                k,
                json!({"median": median(&v), "min": min, "max": max, "n": v.len()}),
            )
        })
        .collect()
}

/// The summary: per-case statistics keyed `case` or `case/variant`.
struct Summary {
    cases: Map<String, Value>,
}

impl Summary {
    fn get(&self, case: &str, field: &str, which: &str) -> Option<f64> {
        self.cases.get(case)?.get(field)?.get(which)?.as_f64()
    }
    fn med(&self, case: &str, field: &str) -> Option<f64> {
        self.get(case, field, "median")
    }
    fn max(&self, case: &str, field: &str) -> Option<f64> {
        self.get(case, field, "max")
    }
}

/// One row of the goals table.
struct Goal {
    id: &'static str,
    what: &'static str,
    value: Option<f64>,
    shown: String,
    goal: &'static str,
    met: Option<bool>,
}

fn goal(
    id: &'static str,
    what: &'static str,
    value: Option<f64>,
    unit: &str,
    goal: &'static str,
    ok: impl Fn(f64) -> bool,
) -> Goal {
    let shown = match value {
        Some(v) if unit == "%" => format!("{v:.2}%"),
        Some(v) if unit == "×" => format!("{v:.3}×"),
        Some(v) if unit.is_empty() => format!("{v:.0}"),
        Some(v) => format!("{v:.1} {unit}"),
        None => "not run".into(),
    };
    Goal {
        id,
        what,
        value,
        shown,
        goal,
        met: value.map(ok),
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => Some(a / b),
        _ => None,
    }
}

fn goals(s: &Summary) -> Vec<Goal> {
    let faster_peer = match (s.med("p6/nginx", "rps"), s.med("p6/haproxy", "rps")) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    vec![
        goal(
            "P1",
            "reused latency, reduction vs unpooled",
            s.med("p1", "reduction_pct"),
            "%",
            "≥ 60%",
            |v| v >= 60.0,
        ),
        goal(
            "P1",
            "reused latency / (1 measured shim RTT + server time)",
            s.med("p1", "pooled_over_ideal"),
            "×",
            "≤ 1.05×",
            |v| v <= 1.05,
        ),
        goal(
            "P1",
            "the same / (nominal 20 ms + server time)",
            s.med("p1", "pooled_over_nominal_ideal"),
            "×",
            "≤ 1.05× (strict reading)",
            |v| v <= 1.05,
        ),
        goal(
            "P2",
            "first request (minFreeSockets) / steady state",
            s.med("p2", "warm_first_over_steady"),
            "×",
            "≤ 1.1×",
            |v| v <= 1.1,
        ),
        goal(
            "P3a",
            "reuse rate, nginx's count (generous limits)",
            s.med("p3/generous", "nginx_reuse_pct"),
            "%",
            "≥ 99.95%",
            |v| v >= 99.95,
        ),
        goal(
            "P3a",
            "errors (worst run)",
            s.max("p3/generous", "errors"),
            "",
            "0",
            |v| v == 0.0,
        ),
        goal(
            "P3b",
            "connections opened / forced minimum (strict limits)",
            s.med("p3/strict", "connections_over_forced"),
            "×",
            "≤ 1.05×",
            |v| v <= 1.05,
        ),
        goal(
            "P3b",
            "errors (worst run)",
            s.max("p3/strict", "errors"),
            "",
            "0",
            |v| v == 0.0,
        ),
        goal(
            "P4",
            "client throughput keepwarm / reqwest",
            ratio(s.med("p4/keepwarm", "rps"), s.med("p4/reqwest", "rps")),
            "×",
            "≥ 1.3× (reqwest given a pre-parsed Url)",
            |v| v >= 1.3,
        ),
        goal(
            "P5",
            "instructions per pooled request keepwarm / reqwest",
            s.med("p5", "keepwarm_over_reqwest"),
            "×",
            "≤ 0.6×",
            |v| v <= 0.6,
        ),
        goal(
            "P6",
            "gateway throughput / faster of nginx, HAProxy",
            ratio(s.med("p6/keepwarm", "rps"), faster_peer),
            "×",
            "≥ 1.0×",
            |v| v >= 1.0,
        ),
        goal(
            "P6",
            "gateway upstream connections open at once (worst run)",
            s.max("p6/keepwarm", "upstream_peak_open"),
            "",
            "≤ 16 (maxSockets)",
            |v| v <= 16.0,
        ),
        goal(
            "P6",
            "gateway upstream connections used over the whole run: open at its start + opened (worst run)",
            s.max("p6/keepwarm", "upstream_connections_used"),
            "",
            "≤ 16 (maxSockets)",
            |v| v <= 16.0,
        ),
        goal(
            "P7",
            "gateway added latency p50",
            s.med("p7", "added_p50_us"),
            "µs",
            "≤ 30 µs",
            |v| v <= 30.0,
        ),
        goal(
            "P7",
            "gateway added latency p99",
            s.med("p7", "added_p99_us"),
            "µs",
            "≤ 150 µs",
            |v| v <= 150.0,
        ),
        goal(
            "P8",
            "RSS per idle plain connection",
            s.med("p8/plain", "kib_per_connection"),
            "KiB",
            "≤ 12 KiB",
            |v| v <= 12.0,
        ),
        goal(
            "P8",
            "RSS per idle TLS connection",
            s.med("p8/tls", "kib_per_connection"),
            "KiB",
            "≤ 20 KiB",
            |v| v <= 20.0,
        ),
        goal(
            "P9",
            "acquire at 10,000 keys / 1 key (criterion)",
            s.med("p9_criterion", "ratio"),
            "×",
            "≤ 1.2×",
            |v| v <= 1.2,
        ),
        goal(
            "P9",
            "extra wakeups/s, 1,000 idle connections",
            s.med("p9_idle", "extra_wakeups_per_s"),
            "/s",
            "none (≤ 0.5/s: noise)",
            |v| v <= 0.5,
        ),
        goal(
            "—",
            "heap allocations per proxied request (non-streaming POST, gateway)",
            s.med("allocs/gateway_post", "allocations_per_request"),
            "",
            "≤ 8",
            |v| v <= 8.0,
        ),
    ]
}

/// P10's rows, HTTP/2 against HTTP/1.1 (medians over the runs; errors:
/// the worst run), as a markdown table; `None` when P10 did not run.
fn p10_table(s: &Summary) -> Option<String> {
    let (h2, h1) = ("p10/http2", "p10/http1");
    if !s.cases.contains_key(h2) && !s.cases.contains_key(h1) {
        return None;
    }
    let cell = |case: &str, field: &str, unit: &str| match s.med(case, field) {
        Some(v) if unit.is_empty() => format!("{v:.0}"),
        Some(v) => format!("{v:.1} {unit}"),
        None => "not run".into(),
    };
    let n = s
        .med(h2, "concurrency")
        .or(s.med(h1, "concurrency"))
        .unwrap_or(0.0);
    let mut md = String::new();
    let _ = writeln!(
        md,
        "### P10: {n:.0} concurrent streams through the gateway, provider on HTTP/2 vs HTTP/1.1\n"
    );
    let _ = writeln!(md, "| | HTTP/2 | HTTP/1.1 |\n|---|---|---|");
    for (what, field, unit) in [
        (
            "upstream connections (server's count)",
            "upstream_connections",
            "",
        ),
        ("TLS handshakes (server's count)", "tls_handshakes", ""),
        ("time to first byte p50", "ttfb_p50_ms", "ms"),
        ("time to first byte p99", "ttfb_p99_ms", "ms"),
        ("time to last byte p50", "ttlb_p50_ms", "ms"),
        ("time to last byte p99", "ttlb_p99_ms", "ms"),
    ] {
        let _ = writeln!(
            md,
            "| {what} | {} | {} |",
            cell(h2, field, unit),
            cell(h1, field, unit)
        );
    }
    let worst = |case: &str| {
        s.max(case, "errors")
            .map_or("not run".into(), |v| format!("{v:.0}"))
    };
    let _ = writeln!(md, "| errors (worst run) | {} | {} |", worst(h2), worst(h1));
    Some(md)
}

fn fmt_num(v: f64) -> String {
    if v.abs() >= 1000.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

fn markdown(s: &Summary, goals: &[Goal], raw: &Groups, machine: &Value) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Measured at commit `{}` (`git describe --always --dirty`), {}.\n",
        machine
            .get("git")
            .and_then(Value::as_str)
            .unwrap_or("unknown"),
        machine
            .get("date")
            .and_then(Value::as_str)
            .unwrap_or("date unknown"),
    );
    let _ = writeln!(md, "### Goals\n");
    let _ = writeln!(
        md,
        "| case | what | median | goal | met? |\n|---|---|---|---|---|"
    );
    for g in goals {
        let met = match g.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "not run",
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            g.id, g.what, g.shown, g.goal, met
        );
    }
    if let Some(t) = p10_table(s) {
        let _ = writeln!(md, "\n{t}");
    }
    let _ = writeln!(
        md,
        "\n### Every number, per case (median [min–max] over the runs)\n"
    );
    for (case, fields) in &s.cases {
        if fields.as_object().is_none_or(Map::is_empty) {
            continue;
        }
        let n = raw.get(case).map_or(0, Vec::len);
        let _ = writeln!(
            md,
            "<details><summary><code>{case}</code> ({n} runs)</summary>\n"
        );
        let _ = writeln!(md, "| field | median | min | max |\n|---|---|---|---|");
        if let Value::Object(f) = fields {
            for (k, v) in f {
                let g = |w: &str| v.get(w).and_then(Value::as_f64).map_or("-".into(), fmt_num);
                let _ = writeln!(
                    md,
                    "| {k} | {} | {} | {} |",
                    g("median"),
                    g("min"),
                    g("max")
                );
            }
        }
        let _ = writeln!(md, "\n</details>\n");
    }
    if let Some(p5) = raw.get("p5").and_then(|v| v.last()) {
        for who in ["keepwarm", "reqwest"] {
            if let Some(Value::Array(top)) = p5.get(&format!("top_{who}")) {
                let _ = writeln!(
                    md,
                    "**P5 profile, {who}** (`callgrind_annotate --inclusive=no`, top {} by own instructions, {} requests):\n\n```text",
                    top.len(),
                    p5.get("n2").and_then(Value::as_u64).unwrap_or(0)
                );
                for l in top {
                    let _ = writeln!(md, "{}", l.as_str().unwrap_or(""));
                }
                let _ = writeln!(md, "```\n");
            }
        }
    }
    if let Some(pg) = raw.get("profile_gateway").and_then(|v| v.last()) {
        let _ = writeln!(
            md,
            "**P6/P7 profile, the gateway** (`perf record -e cpu-clock -g` for 6 s while wrk loads it at {} req/s):\n",
            pg.get("wrk_rps_while_profiled").and_then(Value::as_str).unwrap_or("?")
        );
        for (title, key) in [
            ("by binary", "by_dso"),
            ("top functions, own time", "self"),
            ("user-space functions, including callees", "children_user"),
            (
                "the gateway binary only (its code and the crates in it), own time, % of all samples",
                "gateway_binary_self",
            ),
        ] {
            if let Some(Value::Array(ls)) = pg.get(key) {
                let _ = writeln!(md, "{title}:\n\n```text");
                for l in ls {
                    let l = l.as_str().unwrap_or("");
                    let _ = writeln!(md, "{}", l.strip_suffix(" - -").unwrap_or(l));
                }
                let _ = writeln!(md, "```\n");
            }
        }
    }
    if let Some(p) = raw.get("p9_profile").and_then(|v| v.last()) {
        let _ = writeln!(
            md,
            "**P9 profile** (callgrind with its cache simulator, the criterion bench's loop, {} acquire + release cycles):\n\n| keys | instructions / cycle | data reads / cycle | L1 data misses / cycle | last-level misses / cycle |\n|---|---|---|---|---|",
            p.get("cycles").and_then(Value::as_u64).unwrap_or(0)
        );
        for k in ["1", "10000"] {
            let r = &p[format!("keys_{k}").as_str()];
            let g = |f: &str| r.get(f).and_then(Value::as_f64).map_or("-".into(), fmt_num);
            let _ = writeln!(
                md,
                "| {k} | {} | {} | {} | {} |",
                g("ir_per_cycle"),
                g("data_reads_per_cycle"),
                g("d1_misses_per_cycle"),
                g("ll_misses_per_cycle")
            );
        }
        if let Some(Value::Array(top)) = p.get("top_keys_10000") {
            let _ = writeln!(
                md,
                "\nTop 10 by own instructions at 10,000 keys (Ir, D1mr, D1mw):\n\n```text"
            );
            for l in top {
                let _ = writeln!(md, "{}", l.as_str().unwrap_or(""));
            }
            let _ = writeln!(md, "```\n");
        }
    }
    for v in ["plain", "tls"] {
        if let Some(p) = raw.get(&format!("profile_p8/{v}")).and_then(|x| x.last()) {
            let _ = writeln!(
                md,
                "**P8 heap profile, {v}** (valgrind massif, heap while holding {} idle connections: {:.0} bytes each; RSS counts only the pages touched):\n\n```text",
                p.get("connections").and_then(Value::as_u64).unwrap_or(0),
                p.get("heap_bytes_per_connection").and_then(Value::as_f64).unwrap_or(0.0),
            );
            if let Some(Value::Array(top)) = p.get("top") {
                for l in top {
                    let _ = writeln!(md, "{}", l.as_str().unwrap_or(""));
                }
            }
            let _ = writeln!(md, "```\n");
        }
    }
    if let Some(p) = raw.get("profile_allocs").and_then(|x| x.last()) {
        let _ = writeln!(
            md,
            "**Allocation profile** (valgrind DHAT on `keepwarm-allocs`, {} requests; the {} sites that allocate on every request, {} allocations per request between them; per request: count × mean size, then the first frames outside the allocator):\n\n```text",
            p.get("requests_profiled").and_then(Value::as_u64).unwrap_or(0),
            p.get("sites_per_request").and_then(Value::as_u64).unwrap_or(0),
            p.get("allocations_per_request_in_sites").and_then(Value::as_f64).unwrap_or(0.0),
        );
        if let Some(Value::Array(top)) = p.get("top") {
            for l in top {
                let _ = writeln!(md, "{}", l.as_str().unwrap_or(""));
            }
        }
        let _ = writeln!(md, "```\n");
    }
    if let Value::Object(m) = machine {
        let _ = writeln!(md, "### Machine and load\n\n| | |\n|---|---|");
        for (k, v) in m {
            let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            let _ = writeln!(md, "| {k} | {} |", v.replace('|', "\\|").replace('\n', " "));
        }
        md.push('\n');
    }
    md
}

/// Reads `raw` (JSON lines) and `machine` (a JSON object), writes `out`
/// (latest.json) and, when given, the markdown section into `docs` between
/// `<!-- results:begin -->` and `<!-- results:end -->`. Prints the goals.
pub(crate) fn summarize(
    raw: &Path,
    machine: Option<&Path>,
    out: &Path,
    docs: Option<&Path>,
) -> BoxResult<()> {
    let text = std::fs::read_to_string(raw)?;
    let groups = group(&text);
    let cases: Map<String, Value> = groups
        .iter()
        .map(|(k, v)| (k.clone(), Value::Object(stats(v))))
        .collect();
    let s = Summary { cases };
    let gs = goals(&s);
    let machine = match machine {
        Some(p) => serde_json::from_str(&std::fs::read_to_string(p)?)?,
        None => Value::Null,
    };
    let last: Map<String, Value> = groups
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), Value::Object(v.last()?.clone()))))
        .collect();
    let doc = json!({
        "machine": machine,
        "goals": gs.iter().map(|g| json!({
            "case": g.id, "what": g.what, "value": g.value, "goal": g.goal, "met": g.met,
        })).collect::<Vec<_>>(),
        "cases": s.cases,
        "last_run": last,
    });
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(out, serde_json::to_string_pretty(&doc)? + "\n")?;
    println!(
        "{:<5} {:<55} {:>14} {:>24} met?",
        "case", "what", "median", "goal"
    );
    for g in &gs {
        let met = match g.met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        };
        println!(
            "{:<5} {:<55} {:>14} {:>24} {met}",
            g.id, g.what, g.shown, g.goal
        );
    }
    if let Some(t) = p10_table(&s) {
        println!("\n{t}");
    }
    if let Some(docs) = docs {
        // The docs name the commit they were measured on; a run on a dirty
        // tree (or one that does not say) measured code no commit names.
        let git = doc["machine"].get("git").and_then(Value::as_str);
        let dirty = doc["machine"].get("dirty").and_then(Value::as_bool);
        if dirty != Some(false) || git.is_none_or(|g| g.ends_with("-dirty")) {
            return Err(format!(
                "refusing to write {}: the run was not made on a clean commit (git: {}); \
                 commit, then run bash bench/run.sh again",
                docs.display(),
                git.unwrap_or("unknown")
            )
            .into());
        }
        let md = markdown(&s, &gs, &groups, &doc["machine"]);
        let cur = std::fs::read_to_string(docs)?;
        let (b, e) = ("<!-- results:begin -->", "<!-- results:end -->");
        let (Some(i), Some(j)) = (cur.find(b), cur.find(e)) else {
            return Err(format!("{} has no {b} … {e} markers", docs.display()).into());
        };
        let new = format!("{}{b}\n\n{md}\n{}", &cur[..i], &cur[j..]);
        std::fs::write(docs, new)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_per_case_and_variant() {
        let raw = r#"{"case":"p4","variant":"keepwarm","rps":10}
noise
{"case":"p4","variant":"reqwest","rps":5}
{"case":"p4","variant":"keepwarm","rps":30}
{"case":"p4","variant":"keepwarm","rps":20}"#;
        let g = group(raw);
        let s = Summary {
            cases: g
                .iter()
                .map(|(k, v)| (k.clone(), Value::Object(stats(v))))
                .collect(),
        };
        assert_eq!(s.med("p4/keepwarm", "rps"), Some(20.0));
        assert_eq!(s.max("p4/keepwarm", "rps"), Some(30.0));
        let p4 = goals(&s).into_iter().find(|g| g.id == "P4").unwrap();
        assert_eq!(p4.value, Some(4.0));
        assert_eq!(p4.met, Some(true));
    }

    #[test]
    fn p10_rows_compare_http2_with_http1() {
        let raw = r#"{"case":"p10","variant":"http2","concurrency":50,"upstream_connections":1,"tls_handshakes":1,"ttfb_p50_ms":3.0,"ttfb_p99_ms":5.0,"ttlb_p50_ms":70.0,"ttlb_p99_ms":80.0,"errors":0}
{"case":"p10","variant":"http1","concurrency":50,"upstream_connections":50,"tls_handshakes":50,"ttfb_p50_ms":9.0,"ttfb_p99_ms":20.0,"ttlb_p50_ms":75.0,"ttlb_p99_ms":95.0,"errors":0}
{"case":"p10","variant":"http1","concurrency":50,"upstream_connections":50,"tls_handshakes":48,"ttfb_p50_ms":11.0,"ttfb_p99_ms":22.0,"ttlb_p50_ms":77.0,"ttlb_p99_ms":97.0,"errors":2}"#;
        let g = group(raw);
        let s = Summary {
            cases: g
                .iter()
                .map(|(k, v)| (k.clone(), Value::Object(stats(v))))
                .collect(),
        };
        let t = p10_table(&s).unwrap();
        assert!(t.contains("### P10: 50 concurrent streams"), "{t}");
        assert!(
            t.contains("| upstream connections (server's count) | 1 | 50 |"),
            "{t}"
        );
        assert!(
            t.contains("| TLS handshakes (server's count) | 1 | 49 |"),
            "{t}"
        );
        assert!(
            t.contains("| time to first byte p50 | 3.0 ms | 10.0 ms |"),
            "{t}"
        );
        assert!(
            t.contains("| time to last byte p99 | 80.0 ms | 96.0 ms |"),
            "{t}"
        );
        assert!(t.contains("| errors (worst run) | 0 | 2 |"), "{t}");
        let none = Summary { cases: Map::new() };
        assert!(p10_table(&none).is_none());
        let md = markdown(&s, &goals(&s), &g, &Value::Null);
        assert!(md.contains("### P10:"), "{md}");
    }

    #[test]
    fn refuses_to_write_docs_from_a_dirty_tree() {
        let dir = std::env::temp_dir().join(format!("keepwarm-summary-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let raw = dir.join("raw.jsonl");
        std::fs::write(&raw, r#"{"case":"p4","variant":"keepwarm","rps":10}"#).unwrap();
        let docs = dir.join("doc.md");
        let before = "# x\n<!-- results:begin -->\nold\n<!-- results:end -->\n";
        std::fs::write(&docs, before).unwrap();
        let out = dir.join("out.json");
        let machine = dir.join("machine.json");
        std::fs::write(&machine, r#"{"git": "abc1234-dirty", "dirty": true}"#).unwrap();
        let e = summarize(&raw, Some(&machine), &out, Some(&docs)).unwrap_err();
        assert!(e.to_string().contains("abc1234-dirty"), "{e}");
        assert_eq!(std::fs::read_to_string(&docs).unwrap(), before);
        std::fs::write(&machine, r#"{"git": "abc1234", "dirty": false}"#).unwrap();
        summarize(&raw, Some(&machine), &out, Some(&docs)).unwrap();
        let now = std::fs::read_to_string(&docs).unwrap();
        assert!(now.contains("Measured at commit `abc1234`"), "{now}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
