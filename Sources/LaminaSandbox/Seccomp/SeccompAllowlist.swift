/// The system calls tenant code may make, in the spirit of Docker's default profile: what ordinary
/// programs and language runtimes need, and nothing that reaches the kernel's larger attack surface
/// or another namespace. Everything else fails with EPERM; foreign architectures are killed.
///
/// Deliberately absent (each fails with EPERM): mount, umount2, pivot_root, chroot, unshare, setns,
/// open_tree/move_mount/fs*, ptrace, process_vm_*, kcmp, bpf, perf_event_open, userfaultfd,
/// keyctl/add_key/request_key, kexec_*, init_module/finit_module/delete_module, reboot, swapon/swapoff,
/// open_by_handle_at, io_uring_*, fanotify_init, quotactl, acct, syslog, settimeofday/clock_settime,
/// sethostname/setdomainname, iopl/ioperm, mbind/set_mempolicy/move_pages/migrate_pages, lookup_dcookie,
/// vhangup, nfsservctl, pidfd_getfd, uselib, ustat, sysfs, _sysctl.
public enum SeccompAllowlist {
    static let unconditional: [String] = [
        "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat", "capget", "capset",
        "chdir", "chmod", "chown", "clock_adjtime", "clock_getres", "clock_gettime", "clock_nanosleep",
        "close", "close_range", "connect", "copy_file_range", "creat", "dup", "dup2", "dup3",
        "epoll_create", "epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_pwait2", "epoll_wait",
        "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group", "faccessat", "faccessat2",
        "fadvise64", "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown",
        "fchownat", "fcntl", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr",
        "fsetxattr", "fstat", "fstatfs", "fsync", "ftruncate", "futex", "futex_requeue", "futex_wait",
        "futex_waitv", "futex_wake", "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid",
        "geteuid", "getgid", "getgroups", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid",
        "getppid", "getpriority", "getrandom", "getresgid", "getresuid", "getrlimit", "get_robust_list",
        "getrusage", "getsid", "getsockname", "getsockopt", "gettid", "gettimeofday", "getuid",
        "getxattr", "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel",
        "ioctl", "io_destroy", "io_getevents", "io_pgetevents", "ioprio_get", "ioprio_set", "io_setup",
        "io_submit", "kill", "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self",
        "lchown", "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr", "lremovexattr",
        "lseek", "lsetxattr", "lstat", "madvise", "map_shadow_stack", "membarrier", "memfd_create",
        "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall",
        "mmap", "mprotect", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedsend",
        "mq_unlink", "mremap", "mseal", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock",
        "munlockall", "munmap", "name_to_handle_at", "nanosleep", "newfstatat", "open", "openat",
        "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free",
        "pkey_mprotect", "poll", "ppoll", "prctl", "pread64", "preadv", "preadv2", "prlimit64",
        "process_mrelease", "pselect6", "pwrite64", "pwritev", "pwritev2", "read", "readahead",
        "readlink", "readlinkat", "readv", "recvfrom", "recvmmsg", "recvmsg", "remap_file_pages",
        "removexattr", "rename", "renameat", "renameat2", "restart_syscall", "rmdir", "rseq",
        "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn",
        "rt_sigsuspend", "rt_sigtimedwait", "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr",
        "sched_getparam", "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
        "sched_rr_get_interval", "sched_setaffinity", "sched_setattr", "sched_setparam",
        "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl", "semget", "semop",
        "semtimedop", "sendfile", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsuid", "setgid",
        "setgroups", "setitimer", "setpgid", "setpriority", "setregid", "setresgid", "setresuid",
        "setreuid", "setrlimit", "set_robust_list", "setsid", "setsockopt", "set_thread_area",
        "set_tid_address", "setuid", "setxattr", "shmat", "shmctl", "shmdt", "shmget", "shutdown",
        "sigaltstack", "signalfd", "signalfd4", "socketpair", "splice", "stat", "statfs", "statx",
        "symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time",
        "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime", "timer_settime",
        "timerfd_create", "timerfd_gettime", "timerfd_settime", "times", "tkill", "truncate", "umask",
        "uname", "unlink", "unlinkat", "utime", "utimensat", "utimes", "vfork", "vmsplice", "wait4",
        "waitid", "write", "writev", "arch_prctl",
    ]

    /// clone(2) without any namespace flag: threads and processes yes, new namespaces no.
    static let namespaceFlags: UInt64 = 0x0002_0000 /* NEWNS */ | 0x0200_0000 /* NEWCGROUP */
        | 0x0400_0000 /* NEWUTS */ | 0x0800_0000 /* NEWIPC */ | 0x1000_0000 /* NEWUSER */
        | 0x2000_0000 /* NEWPID */ | 0x4000_0000 /* NEWNET */

    /// personality(2) values ordinary programs use (query, Linux, 32-bit, UNAME26).
    static let personalities: [UInt64] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff]

    /// socket(2) in every family but AF_VSOCK, which would reach the hypervisor.
    static let vsockFamily: UInt64 = 40
}

extension SeccompAllowlist {
    /// The same allowlist as an OCI runtime-spec seccomp profile (for crun/runc, e.g. to compare).
    public static func ociProfile() -> String {
        func names(_ list: [String]) -> String { "[" + list.map { "\"\($0)\"" }.joined(separator: ",") + "]" }
        var rules: [String] = []
        rules.append("{\"names\":\(names(unconditional)),\"action\":\"SCMP_ACT_ALLOW\"}")
        rules.append("{\"names\":[\"clone\"],\"action\":\"SCMP_ACT_ALLOW\",\"args\":[{\"index\":0,\"value\":\(namespaceFlags),\"valueTwo\":0,\"op\":\"SCMP_CMP_MASKED_EQ\"}]}")
        rules.append("{\"names\":[\"clone3\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":38}")
        for value in personalities {
            rules.append("{\"names\":[\"personality\"],\"action\":\"SCMP_ACT_ALLOW\",\"args\":[{\"index\":0,\"value\":\(value),\"op\":\"SCMP_CMP_EQ\"}]}")
        }
        rules.append("{\"names\":[\"socket\"],\"action\":\"SCMP_ACT_ALLOW\",\"args\":[{\"index\":0,\"value\":\(vsockFamily),\"op\":\"SCMP_CMP_NE\"}]}")
        return "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":1,\"architectures\":[\"SCMP_ARCH_X86_64\"],\"syscalls\":[\n"
            + rules.joined(separator: ",\n") + "\n]}"
    }
}
