//! P5: instructions per pooled request, keepwarm vs reqwest, counted by
//! valgrind's callgrind (deterministic, unlike time).
//!
//! `p5-client` is the tiny program callgrind runs: one warm-up request, then
//! `n` sequential pooled GETs on a current-thread runtime. `p5` runs it
//! under callgrind twice per client (`n1` and `n2` requests) and reports
//! `(Ir(n2) - Ir(n1)) / (n2 - n1)` (collection is on only inside the
//! measured loop, and the difference cancels what is left of fixed costs),
//! plus the top entries of `callgrind_annotate` for the `n2` run.

use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::cases::load::{driver, Driver, Target};
use crate::util::{emit, BoxResult};

/// The program callgrind runs.
pub(crate) fn client(which: &str, url: &str, n: u64) -> BoxResult<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let d = driver(which, 1)?;
    let url = Target::new(url)?;
    rt.block_on(d.get(&url))?;
    p5_measured_loop(&rt, &d, &url, n)
}

/// The measured part: callgrind collects only inside this function
/// (`--toggle-collect=*p5_measured_loop*`), the warm-up request and the
/// start-up stay out of the profile.
#[inline(never)]
fn p5_measured_loop(
    rt: &tokio::runtime::Runtime,
    d: &Driver,
    url: &Target,
    n: u64,
) -> BoxResult<()> {
    rt.block_on(async {
        for _ in 0..n {
            d.get(url).await?;
        }
        Ok(())
    })
}

/// Total instructions (`Ir`) of a callgrind output file.
fn total_ir(file: &Path) -> BoxResult<u64> {
    let s = std::fs::read_to_string(file)?;
    for l in s.lines() {
        if let Some(v) = l
            .strip_prefix("summary:")
            .or_else(|| l.strip_prefix("totals:"))
        {
            if let Some(x) = v.split_whitespace().next() {
                return Ok(x.parse()?);
            }
        }
    }
    Err(format!("no summary line in {}", file.display()).into())
}

/// The `top` largest self-cost functions of a callgrind output, as
/// `callgrind_annotate` prints them.
pub(crate) fn top_entries(file: &Path, top: usize, extra: &[&str]) -> Vec<String> {
    let Ok(out) = Command::new("callgrind_annotate")
        .arg("--inclusive=no")
        .args(extra)
        .arg(file)
        .output()
    else {
        return vec!["callgrind_annotate not found".into()];
    };
    let text = String::from_utf8_lossy(&out.stdout);
    // The function table follows the line "Ir  file:function" (its header).
    text.lines()
        .skip_while(|l| !(l.contains("file:function") && l.trim_start().starts_with("Ir")))
        .skip(1)
        .filter(|l| !l.trim().is_empty() && !l.starts_with("--"))
        .take(top)
        .map(|l| {
            let l = shorten(l.trim());
            let l = l.as_str();
            if l.len() > 200 {
                format!(
                    "{}…",
                    &l[..l.char_indices().nth(200).map_or(l.len(), |c| c.0)]
                )
            } else {
                l.to_string()
            }
        })
        .collect()
}

/// Drops the long path prefixes (cargo registry, rustc sources, this
/// binary) from a `callgrind_annotate` line.
pub(crate) fn shorten(l: &str) -> String {
    let mut out = l.to_string();
    for marker in ["/registry/src/", "/rustc/"] {
        while let Some(i) = out.find(marker) {
            // Cut from the path's start (the last space before it) through
            // the next path component (the index or commit directory).
            let start = out[..i].rfind(' ').map_or(0, |s| s + 1);
            let after = i + marker.len();
            let next = out[after..].find('/').map_or(out.len(), |j| after + j + 1);
            out.replace_range(start..next, "");
        }
    }
    if let Some(i) = out.rfind(" [/") {
        if out[i..].contains("keepwarm-bench]") {
            out.truncate(i);
        }
    }
    out
}

/// P5: runs `p5-client` under callgrind for both clients and both counts.
pub(crate) fn p5(url: &str, n1: u64, n2: u64, dir: &Path, top: usize) -> BoxResult<()> {
    let me = std::env::current_exe()?;
    std::fs::create_dir_all(dir)?;
    let mut per_request = serde_json::Map::new();
    let mut tops = serde_json::Map::new();
    for which in ["keepwarm", "reqwest"] {
        let mut ir = Vec::new();
        for n in [n1, n2] {
            let file = dir.join(format!("callgrind.{which}.{n}.out"));
            let status = Command::new("valgrind")
                .args([
                    "--tool=callgrind",
                    "--quiet",
                    "--toggle-collect=*p5_measured_loop*",
                ])
                .arg(format!("--callgrind-out-file={}", file.display()))
                .arg(&me)
                .args(["p5-client", "--client", which, "--url", url, "--n"])
                .arg(n.to_string())
                .status()?;
            if !status.success() {
                return Err(format!("valgrind {which} n={n}: {status}").into());
            }
            let total = total_ir(&file)?;
            if total == 0 {
                return Err(format!(
                    "callgrind collected nothing in {}: did --toggle-collect match?",
                    file.display()
                )
                .into());
            }
            ir.push(total);
        }
        let per = (ir[1].saturating_sub(ir[0])) as f64 / (n2 - n1) as f64;
        per_request.insert(which.into(), json!(per));
        per_request.insert(format!("{which}_n2_mean"), json!(ir[1] as f64 / n2 as f64));
        tops.insert(
            which.into(),
            json!(top_entries(
                &dir.join(format!("callgrind.{which}.{n2}.out")),
                top,
                &[]
            )),
        );
    }
    let k = per_request["keepwarm"].as_f64().unwrap_or(0.0);
    let r = per_request["reqwest"].as_f64().unwrap_or(1.0);
    emit(&json!({
        "case": "p5",
        "n1": n1,
        "n2": n2,
        "keepwarm_ir_per_request": k,
        "reqwest_ir_per_request": r,
        "keepwarm_over_reqwest": k / r,
        "keepwarm_ir_mean_of_n2": per_request["keepwarm_n2_mean"],
        "reqwest_ir_mean_of_n2": per_request["reqwest_n2_mean"],
        "top_keepwarm": tops["keepwarm"],
        "top_reqwest": tops["reqwest"],
    }));
    Ok(())
}
