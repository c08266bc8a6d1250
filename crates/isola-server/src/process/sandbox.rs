//! The worker process sandbox (Linux): what a worker may still do once it
//! runs tenant code.
//!
//! Installed after the worker has loaded the base snapshot, started its
//! threads and connected to its supervisor, before it serves any request:
//!
//! - `PR_SET_NO_NEW_PRIVS`: no privilege gain through exec (which is also
//!   filtered).
//! - `RLIMIT_NOFILE` lowered to [`NOFILE`]: few descriptors even if one
//!   leaked in.
//! - A seccomp-BPF filter on every thread (`SECCOMP_FILTER_FLAG_TSYNC`)
//!   allowing only [`ALLOWED`] and the argument-checked calls of
//!   [`argument_rules`] (threads but no `fork`, harmless `fcntl`s,
//!   `prctl` for names only): memory management, threads and futexes,
//!   clocks and sleeping, signals (`tgkill` to its own threads only), reading and writing descriptors it
//!   already holds (its supervisor socket, its pipes), epoll, randomness and
//!   thread priority. Everything else, among it `open`/`openat`, `socket`,
//!   `connect`, `bind`, `execve`, `fork`, `ptrace`, `kill`, `mount`, traps
//!   (`SIGSYS`): [`on_sigsys`] makes the call fail with `EACCES` and writes
//!   `isola: sandbox violation: system call N refused` to stderr, which the
//!   supervisor relays, counts per worker (`GET /v1/workers`,
//!   `isola_worker_sandbox_violations_total`) and logs. The worker goes on:
//!   the operation simply failed.
//!
//! Verify it on a running worker: `grep Seccomp /proc/PID/status` shows
//! `Seccomp: 2` (filter mode) and `NoNewPrivs: 1`.

/// Exit code of a worker that made a forbidden system call on an
/// architecture where the call cannot be failed in place.
pub const VIOLATION_EXIT: i32 = 159;
/// The line prefix a refused call writes to stderr.
pub const VIOLATION_LINE: &str = "isola: sandbox violation";
/// Descriptor limit of a sandboxed worker.
pub const NOFILE: u64 = 64;

/// System calls a sandboxed worker may make.
#[cfg(target_os = "linux")]
pub const ALLOWED: &[libc::c_long] = &[
    // Descriptors it already has.
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_close,
    libc::SYS_fstat,
    libc::SYS_recvfrom,
    libc::SYS_recvmsg,
    libc::SYS_sendto,
    libc::SYS_sendmsg,
    libc::SYS_shutdown,
    libc::SYS_epoll_ctl,
    libc::SYS_epoll_pwait,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_epoll_wait,
    libc::SYS_ppoll,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_poll,
    // Memory.
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mprotect,
    libc::SYS_mremap,
    libc::SYS_madvise,
    libc::SYS_brk,
    libc::SYS_membarrier,
    libc::SYS_pkey_alloc,
    libc::SYS_pkey_free,
    libc::SYS_pkey_mprotect,
    // Threads, futexes, scheduling.
    libc::SYS_clone3,
    libc::SYS_set_robust_list,
    libc::SYS_rseq,
    libc::SYS_futex,
    libc::SYS_sched_yield,
    libc::SYS_sched_getaffinity,
    libc::SYS_sched_getscheduler,
    libc::SYS_sched_getparam,
    libc::SYS_gettid,
    libc::SYS_getpid,
    libc::SYS_getrusage,
    libc::SYS_exit,
    libc::SYS_exit_group,
    // Time.
    libc::SYS_clock_gettime,
    libc::SYS_clock_getres,
    libc::SYS_clock_nanosleep,
    libc::SYS_nanosleep,
    libc::SYS_gettimeofday,
    // Signals.
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigreturn,
    libc::SYS_sigaltstack,
    // Randomness and system facts.
    libc::SYS_getrandom,
    libc::SYS_sysinfo,
    libc::SYS_uname,
    libc::SYS_getcpu,
    libc::SYS_restart_syscall,
];

/// Why the sandbox could not be installed.
#[derive(Debug, thiserror::Error)]
#[error("worker sandbox: {0}")]
pub struct SandboxError(String);

/// Installs the sandbox on every thread of this process.
#[cfg(target_os = "linux")]
pub fn install() -> Result<(), SandboxError> {
    use seccompiler::{BpfProgram, SeccompAction, SeccompFilter};
    use std::collections::BTreeMap;

    install_sigsys_handler()?;
    // glibc sizes malloc arenas from the CPU count, read from /sys the first
    // time a new thread allocates; a fixed arena limit avoids that open.
    // SAFETY: mallopt takes plain integers.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 8);
    }
    let lim = libc::rlimit {
        rlim_cur: NOFILE,
        rlim_max: NOFILE,
    };
    // SAFETY: `lim` is a valid rlimit for the duration of the call.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(SandboxError(format!(
            "setrlimit(RLIMIT_NOFILE): {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: prctl with PR_SET_NO_NEW_PRIVS takes plain integers.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(SandboxError(format!(
            "prctl(PR_SET_NO_NEW_PRIVS): {}",
            std::io::Error::last_os_error()
        )));
    }
    let arch = std::env::consts::ARCH
        .try_into()
        .map_err(|e| SandboxError(format!("architecture: {e:?}")))?;
    let mut rules: BTreeMap<i64, Vec<seccompiler::SeccompRule>> =
        ALLOWED.iter().map(|&nr| (nr, Vec::new())).collect();
    for (nr, allowed) in argument_rules()? {
        rules.insert(nr, allowed);
    }
    let filter = SeccompFilter::new(rules, SeccompAction::Trap, SeccompAction::Allow, arch)
        .map_err(|e| SandboxError(format!("building the filter: {e}")))?;
    let program: BpfProgram = filter
        .try_into()
        .map_err(|e| SandboxError(format!("compiling the filter: {e:?}")))?;
    // A second filter makes `clone3` fail with ENOSYS: glibc then creates
    // threads with `clone`, whose flags the first filter can check (a
    // `clone3` argument is a pointer to a struct seccomp cannot read).
    let no_clone3 = SeccompFilter::new(
        [(libc::SYS_clone3, Vec::new())].into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )
    .map_err(|e| SandboxError(format!("building the filter: {e}")))?;
    let no_clone3: BpfProgram = no_clone3
        .try_into()
        .map_err(|e| SandboxError(format!("compiling the filter: {e:?}")))?;
    seccompiler::apply_filter_all_threads(&no_clone3)
        .map_err(|e| SandboxError(format!("installing the filter: {e}")))?;
    seccompiler::apply_filter_all_threads(&program)
        .map_err(|e| SandboxError(format!("installing the filter: {e}")))
}

/// System calls allowed only with certain arguments (each rule is one
/// allowed shape; all its conditions must hold):
/// - `clone` only for threads (`CLONE_THREAD`): no `fork`, so no process
///   escapes the supervisor's watch.
/// - `fcntl` only to read and set descriptor and status flags, never
///   `O_ASYNC`/`F_SETOWN`/`F_SETSIG` (which could signal other processes).
/// - `setpriority`/`getpriority` only on processes/threads (`PRIO_PROCESS`),
///   not on every process of the user (`PRIO_USER`) or a group.
/// - `prctl` only to name threads and memory areas.
/// - `tgkill` only to this process's own threads.
#[cfg(target_os = "linux")]
fn argument_rules() -> Result<Vec<(i64, Vec<seccompiler::SeccompRule>)>, SandboxError> {
    use seccompiler::{SeccompCmpArgLen as Len, SeccompCmpOp as Op, SeccompCondition as C};
    let err = |e: seccompiler::BackendError| SandboxError(format!("building the filter: {e}"));
    let cond = |arg: u8, len: Len, op: Op, v: u64| C::new(arg, len, op, v).map_err(err);
    let rule = |c: Vec<C>| seccompiler::SeccompRule::new(c).map_err(err);
    let eq = |arg: u8, v: u64| cond(arg, Len::Dword, Op::Eq, v);
    let mut fcntl = Vec::new();
    for cmd in [
        libc::F_GETFD,
        libc::F_SETFD,
        libc::F_GETFL,
        libc::F_DUPFD_CLOEXEC,
    ] {
        fcntl.push(rule(vec![eq(1, cmd as u64)?])?);
    }
    let o_async = libc::O_ASYNC as u64;
    fcntl.push(rule(vec![
        eq(1, libc::F_SETFL as u64)?,
        cond(2, Len::Qword, Op::MaskedEq(o_async), 0)?,
    ])?);
    let thread = libc::CLONE_THREAD as u64;
    let clone = vec![rule(vec![cond(
        0,
        Len::Qword,
        Op::MaskedEq(thread),
        thread,
    )?])?];
    let prio = || -> Result<Vec<seccompiler::SeccompRule>, SandboxError> {
        Ok(vec![rule(vec![eq(0, libc::PRIO_PROCESS as u64)?])?])
    };
    const PR_SET_VMA: u64 = 0x5356_4d41;
    let prctl = vec![
        rule(vec![eq(0, libc::PR_SET_NAME as u64)?])?,
        rule(vec![eq(0, libc::PR_GET_NAME as u64)?])?,
        rule(vec![eq(0, PR_SET_VMA)?])?,
    ];
    let tgkill = vec![rule(vec![eq(0, u64::from(std::process::id()))?])?];
    Ok(vec![
        (libc::SYS_fcntl, fcntl),
        (libc::SYS_clone, clone),
        (libc::SYS_setpriority, prio()?),
        (libc::SYS_getpriority, prio()?),
        (libc::SYS_prctl, prctl),
        (libc::SYS_tgkill, tgkill),
    ])
}

/// No sandbox off Linux: process isolation still separates tenants' crashes.
#[cfg(not(target_os = "linux"))]
pub fn install() -> Result<(), SandboxError> {
    Err(SandboxError("the seccomp sandbox needs Linux".into()))
}

#[cfg(target_os = "linux")]
fn install_sigsys_handler() -> Result<(), SandboxError> {
    // SAFETY: a zeroed sigaction is a valid starting value; we set the
    // handler (an `extern "C"` fn with the SA_SIGINFO signature) and flags,
    // and pass valid pointers to sigaction.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigsys as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut()) != 0 {
            return Err(SandboxError(format!(
                "sigaction(SIGSYS): {}",
                std::io::Error::last_os_error()
            )));
        }
    }
    Ok(())
}

/// The seccomp trap: the refused call returns `-EACCES` to its caller and a
/// line names it on stderr. Only async-signal-safe work (`write`, register
/// edits in the signal context).
#[cfg(target_os = "linux")]
extern "C" fn on_sigsys(_sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // siginfo_t for SIGSYS (Linux, 64-bit): si_signo, si_errno, si_code
    // (and padding) in the first 16 bytes, then `_sigsys`: the call
    // address (8 bytes) and the system call number (an int) at byte 24.
    let nr: i32 = if info.is_null() {
        -1
    } else {
        // SAFETY: the kernel passes a valid siginfo_t of at least 128 bytes;
        // offset 24 lies inside it and is 4-byte aligned.
        unsafe { std::ptr::read((info as *const u8).add(24) as *const i32) }
    };
    if i64::from(nr) == libc::SYS_openat && benign_probe(ctx) {
        // glibc and V8 count CPUs by reading these; they fall back quietly.
        fail_in_place(ctx, libc::ENOENT);
        return;
    }
    let mut buf = [0u8; 160];
    let prefix = b"isola: sandbox violation: system call ";
    buf[..prefix.len()].copy_from_slice(prefix);
    let mut n = prefix.len();
    let mut digits = [0u8; 12];
    let mut d = 0;
    let mut v = i64::from(nr).unsigned_abs();
    if nr < 0 {
        buf[n] = b'-';
        n += 1;
    }
    loop {
        digits[d] = b'0' + (v % 10) as u8;
        d += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    while d > 0 {
        d -= 1;
        buf[n] = digits[d];
        n += 1;
    }
    if i64::from(nr) == libc::SYS_openat {
        if let Some(path) = openat_path(ctx) {
            let open = b" (openat \"";
            buf[n..n + open.len()].copy_from_slice(open);
            n += open.len();
            for i in 0..48 {
                // SAFETY: the path the caller passed to openat, read up to
                // its NUL (and at most 48 bytes).
                let b = unsafe { *path.add(i) };
                if b == 0 {
                    break;
                }
                buf[n] = if b.is_ascii_graphic() { b } else { b'?' };
                n += 1;
            }
            buf[n] = b'"';
            buf[n + 1] = b')';
            n += 2;
        }
    }
    let suffix = b" refused (EACCES)\n";
    buf[n..n + suffix.len()].copy_from_slice(suffix);
    n += suffix.len();
    // SAFETY: write is async-signal-safe; `buf[..n]` is initialised.
    unsafe {
        libc::write(2, buf.as_ptr().cast(), n);
    }
    fail_in_place(ctx, libc::EACCES);
}

/// Files glibc and V8 read to count CPUs (prefixes; refused without a report).
#[cfg(target_os = "linux")]
const BENIGN_OPENS: [&[u8]; 2] = [b"/sys/devices/system/cpu/", b"/proc/stat\0"];

/// Whether the trapped `openat` names a path under one of [`BENIGN_OPENS`].
#[cfg(target_os = "linux")]
fn benign_probe(ctx: *mut libc::c_void) -> bool {
    let Some(path) = openat_path(ctx) else {
        return false;
    };
    BENIGN_OPENS.iter().any(|want| {
        want.iter().enumerate().all(|(i, &b)| {
            // SAFETY: the caller passed this pointer to openat as a
            // NUL-terminated path; we stop at the first mismatch, so we never
            // read past its NUL.
            unsafe { *path.add(i) == b }
        })
    })
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn openat_path(ctx: *mut libc::c_void) -> Option<*const u8> {
    if ctx.is_null() {
        return None;
    }
    // SAFETY: a valid ucontext_t from the kernel; RSI holds openat's path.
    let p = unsafe { (*(ctx as *mut libc::ucontext_t)).uc_mcontext.gregs[libc::REG_RSI as usize] };
    (p != 0).then_some(p as *const u8)
}

#[cfg(all(target_os = "linux", target_arch = "aarch64"))]
fn openat_path(ctx: *mut libc::c_void) -> Option<*const u8> {
    if ctx.is_null() {
        return None;
    }
    // SAFETY: a valid ucontext_t from the kernel; x1 holds openat's path.
    let p = unsafe { (*(ctx as *mut libc::ucontext_t)).uc_mcontext.regs[1] };
    (p != 0).then_some(p as *const u8)
}

#[cfg(all(
    target_os = "linux",
    not(any(target_arch = "x86_64", target_arch = "aarch64"))
))]
fn openat_path(_ctx: *mut libc::c_void) -> Option<*const u8> {
    None
}

/// Sets the trapped call's return value to `-EACCES`.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn fail_in_place(ctx: *mut libc::c_void, errno: i32) {
    if ctx.is_null() {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(VIOLATION_EXIT) };
    }
    // SAFETY: for an SA_SIGINFO handler the kernel passes a valid ucontext_t;
    // RAX holds the system call's return value once the handler returns.
    unsafe {
        let uc = ctx as *mut libc::ucontext_t;
        (*uc).uc_mcontext.gregs[libc::REG_RAX as usize] = -i64::from(errno);
    }
}

/// Sets the trapped call's return value to `-EACCES`.
#[cfg(all(target_os = "linux", target_arch = "aarch64"))]
fn fail_in_place(ctx: *mut libc::c_void, errno: i32) {
    if ctx.is_null() {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(VIOLATION_EXIT) };
    }
    // SAFETY: for an SA_SIGINFO handler the kernel passes a valid ucontext_t;
    // x0 holds the system call's return value once the handler returns.
    unsafe {
        let uc = ctx as *mut libc::ucontext_t;
        (*uc).uc_mcontext.regs[0] = (-i64::from(errno)) as u64;
    }
}

/// Elsewhere the call cannot be failed in place: the worker exits.
#[cfg(all(
    target_os = "linux",
    not(any(target_arch = "x86_64", target_arch = "aarch64"))
))]
fn fail_in_place(_ctx: *mut libc::c_void, _errno: i32) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(VIOLATION_EXIT) };
}

/// Whether `/proc/PID/status` says `pid` runs under a seccomp filter.
pub fn is_filtered(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|s| {
            s.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["Seccomp:", "2"])
        })
        .unwrap_or(false)
}
