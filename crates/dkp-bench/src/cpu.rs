//! Where the CPU went during a run, from /proc: each process of the
//! deployment, the PostgreSQL backends of its database and its Redis, the
//! load generator itself, and the rest of the machine (PostgreSQL's shared
//! workers and whatever else runs there). Figures are cores in use on
//! average over the run. Where /proc cannot be read, processes count 0.

use std::time::Instant;

/// /proc counts CPU time in ticks of 1/100 s (USER_HZ) on Linux.
const TICKS_PER_SECOND: f64 = 100.0;

/// User plus system ticks of one process.
fn process_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0 };
    // The command name may hold spaces; the fields after it do not.
    let Some((_, fields)) = stat.rsplit_once(')') else { return 0 };
    let fields: Vec<&str> = fields.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after `) state`.
    let field = |n: usize| fields.get(n).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    field(11) + field(12)
}

/// Busy ticks of all cores together (everything but idle and I/O wait).
fn machine_ticks() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else { return 0 };
    let Some(line) = stat.lines().next() else { return 0 };
    let values: Vec<u64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    let total: u64 = values.iter().take(8).sum();
    total.saturating_sub(values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0))
}

/// The processes whose parent is `pid` (nginx's workers, for one).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            let parent =
                stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
            parent == Some(pid)
        })
        .collect()
}

/// The processes whose command line contains each of `needles` (a
/// PostgreSQL backend shows its database there, redis-server its port).
pub fn matching(needles: &[&str]) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let line = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let line = String::from_utf8_lossy(&line).replace('\0', " ");
            needles.iter().all(|needle| line.contains(needle))
        })
        .collect()
}

/// CPU time of named groups of processes, from `start` to `report`.
pub struct CpuMeter {
    groups: Vec<(String, Vec<u32>)>,
    before: Vec<u64>,
    machine: u64,
    at: Instant,
}

impl CpuMeter {
    /// Starts measuring `groups` and this process (the load generator).
    pub fn start(mut groups: Vec<(String, Vec<u32>)>) -> CpuMeter {
        groups.push(("generator".to_owned(), vec![std::process::id()]));
        let before = groups.iter().map(|(_, pids)| pids.iter().map(|p| process_ticks(*p)).sum()).collect();
        CpuMeter { groups, before, machine: machine_ticks(), at: Instant::now() }
    }

    /// CPU seconds used since `start` by the groups whose names begin with `prefix`.
    pub fn seconds_of(&self, prefix: &str) -> f64 {
        let used: u64 = (self.groups.iter().zip(&self.before))
            .filter(|((name, _), _)| name.starts_with(prefix))
            .map(|((_, pids), before)| pids.iter().map(|p| process_ticks(*p)).sum::<u64>().saturating_sub(*before))
            .sum();
        used as f64 / TICKS_PER_SECOND
    }

    /// Cores each group used on average since `start`, and the rest of the machine.
    pub fn report(&self) -> String {
        let seconds = self.at.elapsed().as_secs_f64().max(0.001);
        let cores = |ticks: u64| ticks as f64 / TICKS_PER_SECOND / seconds;
        let mut ours = 0;
        let mut parts = Vec::new();
        for ((name, pids), before) in self.groups.iter().zip(&self.before) {
            let used = pids.iter().map(|p| process_ticks(*p)).sum::<u64>().saturating_sub(*before);
            ours += used;
            parts.push(format!("{name}={:.2}", cores(used)));
        }
        let machine = machine_ticks().saturating_sub(self.machine);
        parts.push(format!("rest={:.2}", cores(machine.saturating_sub(ours))));
        format!("cores used: {} (machine {:.2} of 2)", parts.join(" "), cores(machine))
    }
}
