#![allow(missing_docs)] // criterion_group! generates an undocumented fn
//! Pool acquire + release cost: one key vs 10,000 keys, every acquire
//! reusing an idle connection (the pool's hot path).
//!
//! Run: `cargo bench -p keepwarm-pool --bench acquire`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use keepwarm_pool::{Acquired, Pool, PoolConfig, PoolKey, Poolable};

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

async fn cycle(pool: &Pool<Key, Conn>, key: &Key) {
    match pool.acquire(key).await.expect("no limit is reached") {
        Acquired::Ready(lease) => lease.release(),
        Acquired::Connect(permit) => permit.complete(Conn).release(),
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("acquire_release");
    for keys in [1u32, 10_000] {
        let pool: Pool<Key, Conn> = Pool::new(PoolConfig::default()).expect("valid");
        let all: Vec<Key> = (0..keys).map(Key).collect();
        rt.block_on(async {
            for k in &all {
                cycle(&pool, k).await;
            }
        });
        let mut i = 0usize;
        group.bench_function(format!("{keys}_keys"), |b| {
            b.to_async(&rt).iter(|| {
                i = (i + 7919) % all.len();
                let k = &all[i];
                let pool = &pool;
                async move { cycle(black_box(pool), black_box(k)).await }
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = bench
}
criterion_main!(benches);
