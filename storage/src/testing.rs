//! Test support (the `test-support` feature; always on in this crate's own tests).
//!
//! [`forbid_file_syscalls`] catches the rule of `docs/ARCHITECTURE.md` being broken: no blocking
//! file-system call on an executor's thread. It installs a seccomp filter on the calling thread
//! only (a test's executor thread, after glommio has started its blocking thread, which the
//! filter therefore does not cover): every file-system syscall made directly from that thread
//! then traps instead of running, is counted, and fails with `EPERM`. File operations that go
//! through io_uring are not syscalls of that thread and pass, as do those run on glommio's
//! blocking thread. Reads and writes on open descriptors are not trapped: appends `pwritev`
//! into the page cache on the executor on purpose (see `fs::pwritev_all`), and the reactor
//! reads and writes its eventfds.

use std::cell::Cell;

thread_local! {
    static TRAPPED: Cell<u32> = const { Cell::new(0) };
    static FIRST_TRAPPED: Cell<libc::c_long> = const { Cell::new(-1) };
}

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64

/// Syscalls that look up, create, remove, stat, sync or resize files: each may wait for the disk.
fn file_syscalls() -> Vec<libc::c_long> {
    let mut nrs = vec![
        libc::SYS_openat,
        libc::SYS_openat2,
        libc::SYS_getdents64,
        libc::SYS_newfstatat,
        libc::SYS_statx,
        libc::SYS_fstat,
        libc::SYS_faccessat,
        libc::SYS_faccessat2,
        libc::SYS_readlinkat,
        libc::SYS_mkdirat,
        libc::SYS_unlinkat,
        libc::SYS_renameat,
        libc::SYS_renameat2,
        libc::SYS_linkat,
        libc::SYS_symlinkat,
        libc::SYS_utimensat,
        libc::SYS_fsync,
        libc::SYS_fdatasync,
        libc::SYS_sync_file_range,
        libc::SYS_truncate,
        libc::SYS_ftruncate,
        libc::SYS_fallocate,
    ];
    #[cfg(target_arch = "x86_64")]
    nrs.extend([
        libc::SYS_open,
        libc::SYS_creat,
        libc::SYS_stat,
        libc::SYS_lstat,
        libc::SYS_access,
        libc::SYS_getdents,
        libc::SYS_readlink,
        libc::SYS_mkdir,
        libc::SYS_rmdir,
        libc::SYS_unlink,
        libc::SYS_rename,
        libc::SYS_link,
        libc::SYS_symlink,
        libc::SYS_utime,
        libc::SYS_utimes,
        libc::SYS_futimesat,
    ]);
    nrs
}

extern "C" fn on_sigsys(_: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel passes a SIGSYS siginfo, whose `si_syscall` is the int at byte 24 on
    // 64-bit Linux (after si_signo, si_errno, si_code, padding and si_call_addr), and the
    // interrupted thread's ucontext, whose return-value register the handler may set.
    unsafe {
        let nr = *info.cast::<u8>().add(24).cast::<libc::c_int>();
        // Only this thread's own thread-locals, touched before the filter was installed, so
        // no allocation happens here.
        TRAPPED.with(|t| t.set(t.get() + 1));
        FIRST_TRAPPED.with(|f| {
            if f.get() < 0 {
                f.set(nr as libc::c_long)
            }
        });
        let uc = context.cast::<libc::ucontext_t>();
        let ret = -(libc::EPERM as i64);
        #[cfg(target_arch = "x86_64")]
        {
            (*uc).uc_mcontext.gregs[libc::REG_RAX as usize] = ret;
        }
        #[cfg(target_arch = "aarch64")]
        {
            (*uc).uc_mcontext.regs[0] = ret as u64;
        }
    }
}

/// Makes every file-system syscall of the calling thread from now on trap, count and fail
/// (see the module doc). Call it first thing on a test's executor; it lasts as long as the
/// thread. Panics if the kernel refuses the filter.
pub fn forbid_file_syscalls() {
    static HANDLER: std::sync::Once = std::sync::Once::new();
    HANDLER.call_once(|| {
        // SAFETY: installs a process-wide SIGSYS handler; only threads with this filter ever
        // get SIGSYS from seccomp.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigsys as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut action.sa_mask);
            assert_eq!(
                libc::sigaction(libc::SIGSYS, &action, std::ptr::null_mut()),
                0
            );
        }
    });
    TRAPPED.with(|t| t.set(0));
    FIRST_TRAPPED.with(|f| f.set(-1));

    const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let nrs = file_syscalls();
    let n = nrs.len();
    assert!(n < 250, "jump offsets are one byte");
    // seccomp_data: nr at byte 0, arch at byte 4.
    let mut program = vec![
        op(LD_W_ABS, 0, 0, 4),
        // Another architecture's calling convention (none is used here): allow.
        op(JEQ_K, 0, (n + 1) as u8, AUDIT_ARCH),
        op(LD_W_ABS, 0, 0, 0),
    ];
    for (i, nr) in nrs.iter().enumerate() {
        program.push(op(JEQ_K, (n - i) as u8, 0, *nr as u32));
    }
    program.push(op(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW));
    program.push(op(RET_K, 0, 0, libc::SECCOMP_RET_TRAP));
    let prog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_mut_ptr(),
    };
    // SAFETY: plain prctl calls; `prog` points at `program`, alive for the call. Without
    // SECCOMP_FILTER_FLAG_TSYNC the filter applies to this thread only (and threads it starts).
    unsafe {
        assert_eq!(
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0),
            0,
            "PR_SET_NO_NEW_PRIVS: {}",
            std::io::Error::last_os_error()
        );
        assert_eq!(
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER as libc::c_ulong,
                &prog as *const libc::sock_fprog,
            ),
            0,
            "PR_SET_SECCOMP: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// The file-system syscalls this thread made since [`forbid_file_syscalls`], and the number of
/// the first one (`-1` if none).
pub fn trapped_file_syscalls() -> (u32, libc::c_long) {
    (TRAPPED.with(Cell::get), FIRST_TRAPPED.with(Cell::get))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_syscall_on_the_guarded_thread_is_caught_and_one_elsewhere_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        std::thread::spawn(move || {
            forbid_file_syscalls();
            assert_eq!(trapped_file_syscalls(), (0, -1));
            assert!(std::fs::read_dir(&path).is_err(), "the trapped call fails");
            let (count, first) = trapped_file_syscalls();
            assert!(count >= 1);
            assert_eq!(first, libc::SYS_openat);
        })
        .join()
        .unwrap();
        // This thread has no filter.
        assert!(std::fs::read_dir(dir.path()).is_ok());
        assert_eq!(trapped_file_syscalls(), (0, -1));
    }
}
