//! What the Rust baselines of bench/kv.pl measure about themselves, the
//! server and the machine over one phase (bench/kv_baseline.rs and
//! bench/etcd-client/ include this file).

/// Whether phase `name` is to run: those listed in KV_PHASES
/// (comma-separated; bench/kv.pl runs one at a time, so that the clients
/// take turns phase by phase), or all when it is unset.
pub fn wanted(name: &str) -> bool {
    match std::env::var("KV_PHASES") {
        Ok(list) => list.split(',').any(|p| p.trim() == name),
        Err(_) => true,
    }
}

/// Process CPU time (user + system, all threads), in seconds, to the
/// nanosecond (clock_gettime(CLOCK_PROCESS_CPUTIME_ID)).
pub fn cpu() -> f64 {
    cpu_time::ProcessTime::try_now()
        .map(|t| t.as_duration().as_secs_f64())
        .unwrap_or(0.0)
}

/// CPU time of all threads of process `pid`, in seconds (Linux: the
/// nanosecond run times in /proc/PID/task/*/schedstat).
fn task_cpu(pid: Option<u32>) -> Option<f64> {
    let dir = std::fs::read_dir(format!("/proc/{}/task", pid?)).ok()?;
    let mut ns = 0u64;
    for t in dir.flatten() {
        let s = std::fs::read_to_string(t.path().join("schedstat")).ok()?;
        ns += s.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(ns as f64 / 1e9)
}

/// (idle, total) jiffies of the machine (first line of /proc/stat).
fn machine() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let v: Vec<u64> = s
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|x| x.parse().ok())
        .collect();
    (v.len() == 8).then(|| (v[3] + v[4], v.iter().sum()))
}

/// What the server and the machine did over one phase.
pub struct Around {
    server: Option<f64>,
    machine: Option<(u64, u64)>,
    pid: Option<u32>,
}

impl Around {
    pub fn start(pid: Option<u32>) -> Around {
        Around {
            server: task_cpu(pid),
            machine: machine(),
            pid,
        }
    }

    /// `server_cpu idle` for the phase's line (-1 where unknown).
    pub fn end(&self) -> String {
        let server = match (self.server, task_cpu(self.pid)) {
            (Some(a), Some(b)) => b - a,
            _ => -1.0,
        };
        let idle = match (self.machine, machine()) {
            (Some((i0, t0)), Some((i1, t1))) if t1 > t0 => (i1 - i0) as f64 / (t1 - t0) as f64,
            _ => -1.0,
        };
        format!("{server:.4} {idle:.3}")
    }
}
