//! Baseline for bench/kv.pl: the same tonic/prost stack as the module,
//! driven directly from Rust, so the Perl figures have a reference measured
//! on the same machine, against the same etcd, in the same run.
//!
//! Usage: kv_baseline ENDPOINT OPS INFLIGHT SEQ_OPS [SERVER_PID]
//! Runs the phases KV_PHASES lists (put, get, seqput, seqget; all when
//! unset), after a warm-up. Prints one line per phase: `phase ops seconds cpu_seconds server_cpu
//! idle`: the server's CPU seconds (all its threads; -1 without SERVER_PID
//! or off Linux) and the share of the machine's CPU time left idle (-1 off
//! Linux), both over the phase.

use std::time::Instant;

use ev_etcd::etcd::pb::etcdserverpb::{kv_client::KvClient, PutRequest, RangeRequest};
use tonic::transport::{Channel, Endpoint};

#[path = "measure.rs"]
mod measure;
use measure::{cpu, Around};

async fn pipelined(ch: &Channel, ops: usize, inflight: usize, put: bool) -> (f64, f64) {
    let (t0, c0) = (Instant::now(), cpu());
    let mut set = tokio::task::JoinSet::new();
    let mut issued = 0;
    let mut done = 0;
    while done < ops {
        while issued < ops && set.len() < inflight {
            let mut kv = KvClient::new(ch.clone());
            let key = format!("/bench/base/{}", issued % 1000).into_bytes();
            set.spawn(async move {
                if put {
                    kv.put(PutRequest {
                        key,
                        value: b"some-value-of-32-bytes-length...".to_vec(),
                        ..Default::default()
                    })
                    .await
                    .map(|_| ())
                } else {
                    kv.range(RangeRequest {
                        key,
                        ..Default::default()
                    })
                    .await
                    .map(|_| ())
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

async fn sequential(ch: &Channel, ops: usize, put: bool) -> (f64, f64) {
    let (t0, c0) = (Instant::now(), cpu());
    let mut kv = KvClient::new(ch.clone());
    for i in 0..ops {
        let key = format!("/bench/base/seq{}", i % 100).into_bytes();
        if put {
            kv.put(PutRequest {
                key,
                value: b"v".to_vec(),
                ..Default::default()
            })
            .await
            .expect("put");
        } else {
            kv.range(RangeRequest {
                key,
                ..Default::default()
            })
            .await
            .expect("get");
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
    // Same runtime shape as the module: one current-thread runtime.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let ch = Endpoint::from_shared(format!("http://{ep}"))
            .expect("endpoint")
            .tcp_nodelay(true)
            .connect()
            .await
            .expect("connect");
        // warm-up
        pipelined(&ch, 1000, inflight, true).await;
        sequential(&ch, 200, true).await;
        for (phase, put) in [("put", true), ("get", false)] {
            if measure::wanted(phase) {
                let around = Around::start(server);
                let (s, c) = pipelined(&ch, ops, inflight, put).await;
                println!("{phase} {ops} {s:.4} {c:.4} {}", around.end());
            }
        }
        for (phase, put) in [("seqput", true), ("seqget", false)] {
            if measure::wanted(phase) {
                let around = Around::start(server);
                let (s, c) = sequential(&ch, seq, put).await;
                println!("{phase} {seq} {s:.4} {c:.4} {}", around.end());
            }
        }
    });
}
