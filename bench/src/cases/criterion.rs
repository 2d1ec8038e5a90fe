//! P9's acquire half: reads criterion's estimates written by
//! `cargo bench -p keepwarm-pool --bench acquire` (1 key vs 10,000 keys).

use std::path::Path;

use serde_json::{json, Value};

use crate::util::{emit, BoxResult};

fn median_ns(dir: &Path, bench: &str) -> BoxResult<f64> {
    let p = dir
        .join("acquire_release")
        .join(bench)
        .join("new")
        .join("estimates.json");
    let v: Value = serde_json::from_str(
        &std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?,
    )?;
    v["median"]["point_estimate"]
        .as_f64()
        .ok_or_else(|| format!("{}: no median.point_estimate", p.display()).into())
}

/// Emits the medians (ns per acquire + release) and their ratio.
pub(crate) fn p9(dir: &Path) -> BoxResult<()> {
    let one = median_ns(dir, "1_keys")?;
    let many = median_ns(dir, "10000_keys")?;
    emit(&json!({
        "case": "p9_criterion",
        "one_key_ns": one,
        "ten_thousand_keys_ns": many,
        "ratio": many / one,
    }));
    Ok(())
}
