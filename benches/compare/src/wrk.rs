//! `wrk` as the load generator of the real-HTTP bench, and the check that it saturated the
//! server: the server process's CPU time over the run (all its threads, from
//! `/proc/<pid>/stat`) and wrk's own (bash's `times` after it exits).

use std::net::SocketAddr;
use std::process::Command;
use std::time::Instant;

/// A run is kept only when the server's CPU was at least this busy: below it the generator, not
/// the server, set the pace, and every variant looks alike.
pub const SERVER_BUSY_MIN: f64 = 0.95;
/// …and when wrk itself had CPU to spare (below this share of its core).
pub const WRK_BUSY_MAX: f64 = 0.99;

/// What one wrk run measured.
#[derive(Debug, Clone)]
pub struct Run {
    pub requests: u64,
    pub rps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// The server's CPU time over the run's wall time (1.0: one core all the time).
    pub server_busy: f64,
    /// wrk's CPU time over the run's wall time.
    pub wrk_busy: f64,
    /// The server's CPU time per request, µs.
    pub server_us_per_request: f64,
}

impl Run {
    /// Whether the run measured the server (see [`SERVER_BUSY_MIN`], [`WRK_BUSY_MAX`]).
    pub fn kept(&self) -> bool {
        self.server_busy >= SERVER_BUSY_MIN && self.wrk_busy < WRK_BUSY_MAX
    }
}

/// Whether `wrk` is installed.
pub fn available() -> bool {
    Command::new("wrk").arg("--version").output().is_ok()
}

/// User + system CPU time of process `pid`, all its threads, seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(14) + ticks(15)) / 100.0 // USER_HZ is 100 on Linux
}

/// A wrk duration (`512.00us`, `1.20ms`, `2.00s`) in µs.
fn micros(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = text.split_at(split);
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        "us" => n,
        "ms" => n * 1e3,
        "s" => n * 1e6,
        "m" => n * 60e6,
        _ => return None,
    })
}

/// Runs wrk (`connections` keep-alive connections, one thread) against `addr` for `seconds`,
/// pinned to `cpu` when `pin`, while the server `server_pid` serves.
pub fn run(addr: SocketAddr, server_pid: u32, seconds: f64, connections: usize, pin: Option<usize>) -> Run {
    let wrk = format!(
        "wrk -t1 -c{connections} -d{}s --latency -H 'user-agent: bench/1.0' -H 'accept: application/json' \
         -H 'accept-encoding: gzip, br' -H 'cookie: session=abc' 'http://{addr}/items/42?page=2'; times",
        seconds.round().max(1.0) as u64
    );
    let mut command = match pin {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.args(["-c", &cpu.to_string(), "bash", "-c", &wrk]);
            c
        }
        None => {
            let mut c = Command::new("bash");
            c.args(["-c", &wrk]);
            c
        }
    };
    let cpu_before = cpu_seconds(server_pid);
    let started = Instant::now();
    let output = command.output().expect("wrk runs");
    let wall = started.elapsed().as_secs_f64();
    let server_cpu = cpu_seconds(server_pid) - cpu_before;
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "wrk failed: {text}{}", String::from_utf8_lossy(&output.stderr));
    let mut run = Run {
        requests: 0,
        rps: 0.0,
        p50_us: 0.0,
        p99_us: 0.0,
        server_busy: server_cpu / wall,
        wrk_busy: 0.0,
        server_us_per_request: 0.0,
    };
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", n] => run.rps = n.parse().unwrap_or(0.0),
            ["50%", t] => run.p50_us = micros(t).unwrap_or(0.0),
            ["99%", t] => run.p99_us = micros(t).unwrap_or(0.0),
            [n, "requests", "in", ..] => run.requests = n.parse().unwrap_or(0),
            _ => {}
        }
    }
    // `times`: the shell's own user/system times, then its children's (wrk's): `0m1.234s 0m0.5s`.
    if let Some(children) = text.lines().last() {
        let secs: f64 = children
            .split_whitespace()
            .filter_map(|t| {
                let (m, s) = t.trim_end_matches('s').split_once('m')?;
                Some(m.parse::<f64>().ok()? * 60.0 + s.parse::<f64>().ok()?)
            })
            .sum();
        run.wrk_busy = secs / wall;
    }
    if run.requests > 0 {
        run.server_us_per_request = server_cpu * 1e6 / run.requests as f64;
    }
    run
}

#[cfg(test)]
mod tests {
    use super::micros;

    #[test]
    fn wrk_durations_are_read_in_micros() {
        assert_eq!(micros("512.00us"), Some(512.0));
        assert_eq!(micros("1.20ms"), Some(1200.0));
        assert_eq!(micros("2.00s"), Some(2e6));
        assert_eq!(micros("fast"), None);
    }
}
