//! Which CPUs this process may run on, for pinning executors.
//!
//! It lives here, beside [`crate::heartbeat`], because every crate that starts executors (the
//! broker, the bench, tests) already depends on storage. Pinning must stay inside the
//! affinity mask the process was started with (`taskset`, cgroups' cpusets): pinning outside it
//! fails, and counting CPUs with `available_parallelism` alone then names the wrong ones (a
//! bench started with `taskset -c 1` pinned itself to CPU 0, on top of the broker).

/// The CPUs in this thread's affinity mask, ascending; `[0]` if the mask cannot be read.
pub fn allowed() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is valid; sched_getaffinity fills it for this thread.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let ok =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) }
            == 0;
    let cpus: Vec<usize> = if ok {
        (0..libc::CPU_SETSIZE as usize)
            // SAFETY: `c` is below CPU_SETSIZE and `set` is initialised.
            .filter(|c| unsafe { libc::CPU_ISSET(*c, &set) })
            .collect()
    } else {
        Vec::new()
    };
    if cpus.is_empty() {
        vec![0]
    } else {
        cpus
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_current_cpu_is_allowed() {
        // SAFETY: sched_getcpu has no preconditions.
        let now = unsafe { libc::sched_getcpu() };
        assert!(now >= 0);
        assert!(super::allowed().contains(&(now as usize)));
    }
}
