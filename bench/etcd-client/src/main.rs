//! The etcd-client crate as a baseline for bench/kv.pl, with the same
//! phases and output as bench/kv_baseline.rs.
//!
//! Usage: etcd-client-baseline ENDPOINT OPS INFLIGHT SEQ_OPS [SERVER_PID]
//! Runs the phases KV_PHASES lists (all when unset). Prints one line per
//! phase: `phase ops seconds cpu_seconds server_cpu
//! idle` (-1 where unknown).

use std::time::Instant;

use etcd_client::{Client, KvClient};

#[path = "../../measure.rs"]
mod measure;
use measure::{cpu, Around};

const VALUE: &str = "some-value-of-32-bytes-length...";

async fn pipelined(kv: &KvClient, ops: usize, inflight: usize, put: bool) -> (f64, f64) {
    let (t0, c0) = (Instant::now(), cpu());
    let mut set = tokio::task::JoinSet::new();
    let (mut issued, mut done) = (0, 0);
    while done < ops {
        while issued < ops && set.len() < inflight {
            let mut kv = kv.clone();
            let key = format!("/bench/crate/{}", issued % 1000);
            set.spawn(async move {
                if put {
                    kv.put(key, VALUE, None).await.map(|_| ())
                } else {
                    kv.get(key, None).await.map(|_| ())
                }
            });
            issued += 1;
        }
        set.join_next()
            .await
            .expect("task")
            .expect("join")
            .expect("rpc");
        done += 1;
    }
    (t0.elapsed().as_secs_f64(), cpu() - c0)
}

async fn sequential(kv: &mut KvClient, ops: usize, put: bool) -> (f64, f64) {
    let (t0, c0) = (Instant::now(), cpu());
    for i in 0..ops {
        let key = format!("/bench/crate/seq{}", i % 100);
        if put {
            kv.put(key, "v", None).await.expect("put");
        } else {
            kv.get(key, None).await.expect("get");
        }
    }
    (t0.elapsed().as_secs_f64(), cpu() - c0)
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let ep = a.get(1).cloned().unwrap_or_else(|| "127.0.0.1:2379".into());
    let ops: usize = a.get(2).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let inflight: usize = a.get(3).and_then(|s| s.parse().ok()).unwrap_or(100);
    let seq: usize = a.get(4).and_then(|s| s.parse().ok()).unwrap_or(2_000);
    let server: Option<u32> = a.get(5).and_then(|s| s.parse().ok());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = Client::connect([format!("http://{ep}")], None)
            .await
            .expect("connect");
        let mut kv = client.kv_client();
        pipelined(&kv, 1000, inflight, true).await;
        sequential(&mut kv, 200, true).await;
        for (phase, put) in [("put", true), ("get", false)] {
            if measure::wanted(phase) {
                let around = Around::start(server);
                let (s, c) = pipelined(&kv, ops, inflight, put).await;
                println!("{phase} {ops} {s:.4} {c:.4} {}", around.end());
            }
        }
        for (phase, put) in [("seqput", true), ("seqget", false)] {
            if measure::wanted(phase) {
                let around = Around::start(server);
                let (s, c) = sequential(&mut kv, seq, put).await;
                println!("{phase} {seq} {s:.4} {c:.4} {}", around.end());
            }
        }
    });
}
