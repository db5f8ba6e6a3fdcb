//! The run's event log: one line per thing that matters (faults, registrations, fencing,
//! elections, role changes, truncations, acknowledged writes, HW moves), stamped with virtual
//! time, so a failing seed can be read as a story. Printed whole when one seed is replayed
//! (`WEIR_SIM_SEED`), its tail when a seed of a batch fails.

use std::fmt::Write as _;

#[derive(Debug, Default)]
pub struct Trace {
    lines: Vec<String>,
}

impl Trace {
    /// Adds a line at `now_ms` about `who` (a node, a partition replica, the world).
    pub fn log(&mut self, now_ms: i64, who: &str, what: impl std::fmt::Display) {
        let mut line = String::with_capacity(64);
        let _ = write!(
            line,
            "{:>4}.{:03}s {who:<9} {what}",
            now_ms / 1000,
            now_ms % 1000
        );
        self.lines.push(line);
    }

    /// The last `n` lines (all of them for `usize::MAX`), one per line.
    pub fn tail(&self, n: usize) -> String {
        let from = self.lines.len().saturating_sub(n);
        let mut out = String::new();
        if from > 0 {
            let _ = writeln!(out, "... {from} earlier lines ...");
        }
        for l in &self.lines[from..] {
            out.push_str(l);
            out.push('\n');
        }
        out
    }
}
