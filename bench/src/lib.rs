//! What the benchmarks share beyond the fixtures in `kozomol_testkit::fines`: the
//! process's CPU time. See docs/performance.md.

use std::time::Duration;

/// CPU time the process has used (user and system), from `/proc/self/stat`; zero
/// where there is none, as the figures that need it then say.
pub fn process_cpu() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // Fields 14 and 15 (utime, stime) in clock ticks, counted after the command
    // name's closing parenthesis, which may itself hold spaces.
    let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return Duration::ZERO;
    };
    let ticks: u64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse::<u64>().ok())
        .sum();
    // Linux's USER_HZ is 100 on every architecture it exports to user space.
    Duration::from_millis(ticks * 10)
}

pub fn cpu_ms(cpu: Duration, n: usize) -> f64 {
    (cpu.as_secs_f64() * 1000.0 / n.max(1) as f64 * 100.0).round() / 100.0
}
