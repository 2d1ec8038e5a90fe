//! P9's profile: why acquire + release costs more at 10,000 keys than at
//! one. The criterion bench's loop (same pool API, same key stride) under
//! callgrind with its cache simulator, collection on only inside the
//! measured loop: instructions, and first-level and last-level data-cache
//! misses per acquire + release, for 1 key and for 10,000.

use std::path::Path;
use std::process::Command;

use keepwarm_pool::{Acquired, Pool, PoolConfig, PoolKey, Poolable};
use serde_json::{json, Map, Value};

use crate::util::{emit, BoxResult};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key(u32);

impl PoolKey for Key {
    fn label(&self) -> &str {
        "bench"
    }
}

struct Conn;

impl Poolable for Conn {
    fn is_open(&self) -> bool {
        true
    }
}

async fn cycle(pool: &Pool<Key, Conn>, key: &Key) -> BoxResult<()> {
    match pool.acquire(key).await? {
        Acquired::Ready(lease) => lease.release(),
        Acquired::Connect(permit) => permit.complete(Conn).release(),
    }
    Ok(())
}

/// The program callgrind runs: fills `keys` keys with one idle connection
/// each, then `n` acquire + release cycles striding over the keys as the
/// criterion bench does.
pub(crate) fn client(keys: u32, n: u64) -> BoxResult<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let pool: Pool<Key, Conn> = Pool::new(PoolConfig::default())?;
    let all: Vec<Key> = (0..keys).map(Key).collect();
    rt.block_on(async {
        for k in &all {
            cycle(&pool, k).await?;
        }
        Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    })?;
    p9_measured_loop(&rt, &pool, &all, n)
}

/// Collected by callgrind (`--toggle-collect=*p9_measured_loop*`).
#[inline(never)]
fn p9_measured_loop(
    rt: &tokio::runtime::Runtime,
    pool: &Pool<Key, Conn>,
    all: &[Key],
    n: u64,
) -> BoxResult<()> {
    rt.block_on(async {
        let mut i = 0usize;
        for _ in 0..n {
            i = (i + 7919) % all.len();
            cycle(pool, &all[i]).await?;
        }
        Ok(())
    })
}

/// Event name → total, from a callgrind output file.
fn totals(file: &Path) -> BoxResult<Map<String, Value>> {
    let s = std::fs::read_to_string(file)?;
    let names: Vec<&str> = s
        .lines()
        .find_map(|l| l.strip_prefix("events:"))
        .ok_or("no events line")?
        .split_whitespace()
        .collect();
    let vals: Vec<u64> = s
        .lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .ok_or("no summary line")?
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    Ok(names
        .iter()
        .zip(vals)
        .map(|(n, v)| (n.to_string(), json!(v)))
        .collect())
}

/// Runs [`client`] under callgrind (cache simulation on) for 1 and 10,000
/// keys, `n` cycles each.
pub(crate) fn profile(n: u64, dir: &Path) -> BoxResult<()> {
    let me = std::env::current_exe()?;
    std::fs::create_dir_all(dir)?;
    let mut out = Map::new();
    out.insert("case".into(), json!("p9_profile"));
    out.insert("cycles".into(), json!(n));
    for keys in [1u32, 10_000] {
        let file = dir.join(format!("callgrind.acquire.{keys}.out"));
        let status = Command::new("valgrind")
            .args([
                "--tool=callgrind",
                "--quiet",
                "--cache-sim=yes",
                "--toggle-collect=*p9_measured_loop*",
            ])
            .arg(format!("--callgrind-out-file={}", file.display()))
            .arg(&me)
            .args(["p9-profile-client", "--keys"])
            .arg(keys.to_string())
            .arg("--n")
            .arg(n.to_string())
            .status()?;
        if !status.success() {
            return Err(format!("valgrind p9-profile-client --keys {keys}: {status}").into());
        }
        let t = totals(&file)?;
        let per = |k: &str| t.get(k).and_then(Value::as_u64).unwrap_or(0) as f64 / n as f64;
        out.insert(
            format!("top_keys_{keys}"),
            json!(crate::cases::instructions::top_entries(
                &file,
                10,
                &["--show=Ir,D1mr,D1mw", "--sort=Ir"]
            )),
        );
        out.insert(
            format!("keys_{keys}"),
            json!({
                "ir_per_cycle": per("Ir"),
                "data_reads_per_cycle": per("Dr"),
                "d1_misses_per_cycle": per("D1mr") + per("D1mw"),
                "ll_misses_per_cycle": per("DLmr") + per("DLmw"),
            }),
        );
    }
    emit(&Value::Object(out));
    Ok(())
}
