// CLinux: the few things Swift cannot do safely on Linux.
//
// The centre piece is lamina_spawn(): it clones a child into new namespaces and runs the whole
// isolation sequence in C, between clone and execve, from a configuration the (Swift) parent prepared
// completely beforehand. The child shares the parent's memory (CLONE_VM|CLONE_VFORK, like posix_spawn),
// so it must never allocate, take a lock or call into Swift: only raw system calls on prepared data.
//
// This target knows nothing about Lambda, functions or tenants.
#ifndef CLINUX_H
#define CLINUX_H

#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/// What one entry of the mount plan does. Paths are absolute host paths under the new root's mount
/// point; the plan runs in the child's private mount namespace, before pivot_root.
enum lamina_mount_kind {
    LAMINA_MOUNT = 1,      // mount(source, target, fstype, flags, data)
    LAMINA_BIND = 2,       // bind source on target; remounted with `flags` (MS_RDONLY etc.) afterwards
    LAMINA_REMOUNT = 3,    // remount an existing bind mount at target with `flags`
    LAMINA_MKNOD = 4,      // mknod(target, mode, dev), then chmod to mode (umask-proof)
    LAMINA_SYMLINK = 5,    // symlink(source, target)
    LAMINA_MKDIR = 6,      // mkdir(target, mode); EEXIST is fine
};

struct lamina_mount_op {
    int kind;                 // enum lamina_mount_kind
    int optional;             // non-zero: a missing target (ENOENT) is skipped, not an error
    const char *source;
    const char *target;
    const char *fstype;
    unsigned long flags;
    const char *data;
    unsigned int mode;
    uint64_t dev;
};

struct lamina_rlimit {
    int resource;
    uint64_t soft;
    uint64_t hard;
};

/// The steps of the child's setup, in the order they run. A failure names the step and errno.
enum lamina_spawn_step {
    LAMINA_STEP_NONE = 0,
    LAMINA_STEP_CLONE,
    LAMINA_STEP_SIGNALS,
    LAMINA_STEP_CGROUP_JOIN,
    LAMINA_STEP_CGROUP_NAMESPACE,
    LAMINA_STEP_MOUNT_PRIVATE,
    LAMINA_STEP_MOUNT_PLAN,
    LAMINA_STEP_PIVOT_ROOT,
    LAMINA_STEP_HOSTNAME,
    LAMINA_STEP_LOOPBACK,
    LAMINA_STEP_LISTEN_SOCKET,
    LAMINA_STEP_SEND_SOCKET,
    LAMINA_STEP_SETSID,
    LAMINA_STEP_RLIMITS,
    LAMINA_STEP_NO_NEW_PRIVS,
    LAMINA_STEP_CAPABILITY_BOUNDING,
    LAMINA_STEP_GROUPS,
    LAMINA_STEP_GID,
    LAMINA_STEP_UID,
    LAMINA_STEP_CAPABILITIES,
    LAMINA_STEP_STDIO,
    LAMINA_STEP_CLOSE_FDS,
    LAMINA_STEP_WORKDIR,
    LAMINA_STEP_SECCOMP,
    LAMINA_STEP_EXEC,
};

struct lamina_spawn_config {
    // Namespaces to create: CLONE_NEW* flags except CLONE_NEWCGROUP (see cgroup_namespace).
    unsigned long namespaces;
    // Non-zero: unshare a cgroup namespace after joining the cgroups, so the sandbox's own cgroup is its root.
    int cgroup_namespace;
    // Open (O_WRONLY) cgroup.procs files of every hierarchy the child must join; it writes "0" to each.
    const int *cgroup_procs_fds;
    int cgroup_procs_count;

    // Mount plan, then the new root (pivot_root into it). root == NULL keeps the host's root.
    const struct lamina_mount_op *mounts;
    int mount_count;
    const char *root;

    const char *hostname;          // NULL: keep
    int loopback_up;               // bring `lo` up in the new network namespace
    // listen_port > 0: create a TCP socket listening on 127.0.0.1:listen_port inside the new network
    // namespace and send it to the parent over control_fd (SCM_RIGHTS) before exec.
    int listen_port;
    int control_fd;

    const struct lamina_rlimit *rlimits;
    int rlimit_count;
    int no_new_privs;
    // Capabilities: everything not in keep_capabilities (a bit per capability number) is dropped from
    // the bounding set; ambient and inheritable are cleared; permitted and effective end up equal to
    // keep_capabilities for uid 0 and empty for any other uid. Tenant code always gets 0.
    int drop_capabilities;
    uint64_t keep_capabilities;
    uint32_t uid;
    uint32_t gid;

    // Child stdio: fds in the parent that become 0, 1, 2. Every other fd is closed before exec.
    int stdin_fd;
    int stdout_fd;
    int stderr_fd;

    const char *workdir;
    // Classic BPF program (struct sock_filter[]) for seccomp, or NULL.
    const void *seccomp_filter;
    unsigned short seccomp_filter_len;

    const char *executable;        // absolute, or a name looked up in search_path (':'-separated)
    const char *search_path;
    char *const *argv;
    char *const *envp;

    // Scratch space for building paths in the child (no malloc there); at least PATH_MAX bytes.
    char *scratch;
    unsigned long scratch_len;
    // The child's stack; the parent owns it and frees it after lamina_spawn returns.
    void *stack;
    unsigned long stack_len;

    // Filled in by the child: CLOCK_MONOTONIC (ns) when each step began, indexed by enum
    // lamina_spawn_step, for the benchmarks' breakdown of where start-up time goes.
    uint64_t step_started_ns[32];

    // Filled in by lamina_spawn: on failure the step that failed, its errno and the mount op index.
    int failed_step;
    int failed_errno;
    int failed_mount_index;
};

/// Spawns the child described by `config`. Returns the child's pid (> 0) and stores a pidfd in
/// *pidfd; on failure returns -1 with config->failed_step/failed_errno set (a child that failed after
/// clone has already been reaped).
pid_t lamina_spawn(struct lamina_spawn_config *config, int *pidfd);

/// Receives one file descriptor sent with SCM_RIGHTS on `socket`. Returns the fd or -1 (errno set).
int lamina_receive_fd(int socket);

/// pidfd helpers (glibc 2.36 has no wrappers we can rely on).
int lamina_pidfd_open(pid_t pid);
int lamina_pidfd_send_signal(int pidfd, int sig);
/// Waits (blocking unless nohang) for the process behind pidfd. Returns 1 when it exited with
/// *code/*signal filled in (signal = 0 for a normal exit), 0 when still running (nohang), -1 on error.
int lamina_pidfd_wait(int pidfd, int nohang, int *code, int *signal);

/// Namespace flags (Swift's Glibc module is built without _GNU_SOURCE).
static const unsigned long LAMINA_CLONE_NEWNS = 0x00020000;
static const unsigned long LAMINA_CLONE_NEWCGROUP = 0x02000000;
static const unsigned long LAMINA_CLONE_NEWUTS = 0x04000000;
static const unsigned long LAMINA_CLONE_NEWIPC = 0x08000000;
static const unsigned long LAMINA_CLONE_NEWUSER = 0x10000000;
static const unsigned long LAMINA_CLONE_NEWPID = 0x20000000;
static const unsigned long LAMINA_CLONE_NEWNET = 0x40000000;

/// pipe2(fds, O_CLOEXEC).
int lamina_pipe_cloexec(int fds[2]);

/// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread and returns a signalfd that becomes
/// readable when one arrives (for single-threaded command-line hosts that poll()).
int lamina_termination_signalfd(void);
/// Reads one pending signal from such a signalfd; returns its number or -1.
int lamina_read_signalfd(int fd);

/// memfd_create with MFD_CLOEXEC.
int lamina_memfd_create(const char *name);

/// Thin wrappers for calls whose Glibc overlay is awkward from Swift.
int lamina_mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data);
int lamina_umount2(const char *target, int flags);
int lamina_prctl_get_no_new_privs(void);
int lamina_close_range(unsigned int first, unsigned int last, unsigned int flags);
int lamina_set_cloexec(int fd);

#ifdef __cplusplus
}
#endif

#endif
