// The sandbox child: everything between clone and execve.
//
// The child is created with CLONE_VM|CLONE_VFORK (as posix_spawn does): it shares the parent's
// memory and the spawning thread sleeps until the child has exec'd or died. That avoids copying the
// daemon's page tables on every cold start, and it lets the child report a failure by writing into
// `config`. The price is strict discipline here: no malloc, no stdio, no locks, no glibc wrapper
// with hidden process-wide state (set*id go through syscall(2) because glibc's wrappers would
// broadcast to the parent's threads). Every step is one function, in the order the kernel needs.
#define _GNU_SOURCE
#include "clinux.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

// The vDSO makes clock_gettime a memory read: safe and cheap in the child.
static inline void mark(struct lamina_spawn_config *c, int step) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    c->step_started_ns[step] = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

__attribute__((noreturn)) static void child_fail(struct lamina_spawn_config *c, int step, int err) {
    c->failed_step = step;
    c->failed_errno = err;
    _exit(127);
}

static void child_reset_signals(void) {
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    // Handlers are the parent's (Swift runtime) and would run on shared memory: reset every one.
    // glibc refuses its two internal real-time signals; that is fine, they are blocked.
    for (int sig = 1; sig < _NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        sigaction(sig, &dfl, NULL);
    }
}

static void child_join_cgroups(struct lamina_spawn_config *c) {
    for (int i = 0; i < c->cgroup_procs_count; i++) {
        // "0" means the writing process itself (cgroup v1 and v2 alike).
        if (write(c->cgroup_procs_fds[i], "0", 1) != 1) child_fail(c, LAMINA_STEP_CGROUP_JOIN, errno);
    }
    if (c->cgroup_namespace && unshare(CLONE_NEWCGROUP) != 0) child_fail(c, LAMINA_STEP_CGROUP_NAMESPACE, errno);
}

static int run_mount_op(const struct lamina_mount_op *op) {
    switch (op->kind) {
    case LAMINA_MOUNT:
        return mount(op->source, op->target, op->fstype, op->flags, op->data);
    case LAMINA_BIND:
        if (mount(op->source, op->target, NULL, MS_BIND | MS_REC, NULL) != 0) return -1;
        if (op->flags == 0) return 0;
        return mount(NULL, op->target, NULL, MS_REMOUNT | MS_BIND | op->flags, NULL);
    case LAMINA_REMOUNT:
        return mount(NULL, op->target, NULL, MS_REMOUNT | MS_BIND | op->flags, NULL);
    case LAMINA_MKNOD:
        if (mknod(op->target, S_IFCHR | op->mode, (dev_t)op->dev) != 0) return -1;
        return chmod(op->target, op->mode);
    case LAMINA_SYMLINK:
        return symlink(op->source, op->target);
    case LAMINA_MKDIR:
        if (mkdir(op->target, op->mode) != 0 && errno != EEXIST) return -1;
        return 0;
    default:
        errno = EINVAL;
        return -1;
    }
}

static void child_mounts(struct lamina_spawn_config *c) {
    if (!(c->namespaces & CLONE_NEWNS)) return;
    // Nothing we mount may propagate back to the host's namespace.
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) child_fail(c, LAMINA_STEP_MOUNT_PRIVATE, errno);
    for (int i = 0; i < c->mount_count; i++) {
        const struct lamina_mount_op *op = &c->mounts[i];
        if (run_mount_op(op) != 0) {
            if (op->optional && errno == ENOENT) continue;
            c->failed_mount_index = i;
            child_fail(c, LAMINA_STEP_MOUNT_PLAN, errno);
        }
    }
    if (c->root == NULL) return;
    // pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves only the
    // new root. This works on a read-only root where no put_old directory can be created.
    if (chdir(c->root) != 0) child_fail(c, LAMINA_STEP_PIVOT_ROOT, errno);
    if (syscall(SYS_pivot_root, ".", ".") != 0) child_fail(c, LAMINA_STEP_PIVOT_ROOT, errno);
    if (umount2(".", MNT_DETACH) != 0) child_fail(c, LAMINA_STEP_PIVOT_ROOT, errno);
    if (chdir("/") != 0) child_fail(c, LAMINA_STEP_PIVOT_ROOT, errno);
}

static void child_network(struct lamina_spawn_config *c) {
    if (c->loopback_up) {
        int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s < 0) child_fail(c, LAMINA_STEP_LOOPBACK, errno);
        struct ifreq ifr;
        memset(&ifr, 0, sizeof ifr);
        memcpy(ifr.ifr_name, "lo", 3);
        if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0) child_fail(c, LAMINA_STEP_LOOPBACK, errno);
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) child_fail(c, LAMINA_STEP_LOOPBACK, errno);
        close(s);
    }
    if (c->listen_port <= 0) return;
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) child_fail(c, LAMINA_STEP_LISTEN_SOCKET, errno);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)c->listen_port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&addr, sizeof addr) != 0) child_fail(c, LAMINA_STEP_LISTEN_SOCKET, errno);
    if (listen(s, 128) != 0) child_fail(c, LAMINA_STEP_LISTEN_SOCKET, errno);

    char byte = 0;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &s, sizeof s);
    if (sendmsg(c->control_fd, &msg, MSG_NOSIGNAL) != 1) child_fail(c, LAMINA_STEP_SEND_SOCKET, errno);
    close(s);
}

static void child_limits_and_privileges(struct lamina_spawn_config *c) {
    for (int i = 0; i < c->rlimit_count; i++) {
        struct rlimit rl = {.rlim_cur = c->rlimits[i].soft, .rlim_max = c->rlimits[i].hard};
        if (setrlimit(c->rlimits[i].resource, &rl) != 0) child_fail(c, LAMINA_STEP_RLIMITS, errno);
    }
    if (c->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) child_fail(c, LAMINA_STEP_NO_NEW_PRIVS, errno);
    if (c->drop_capabilities) {
        // The bounding set must go while we still hold CAP_SETPCAP, i.e. before the uid change.
        for (int cap = 0; cap < 64; cap++) {
            if (c->keep_capabilities & (1ull << cap)) continue;
            if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
                if (errno == EINVAL) break; // past the kernel's last capability
                child_fail(c, LAMINA_STEP_CAPABILITY_BOUNDING, errno);
            }
        }
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    }
    if (syscall(SYS_setgroups, 0, NULL) != 0) child_fail(c, LAMINA_STEP_GROUPS, errno);
    if (syscall(SYS_setresgid, c->gid, c->gid, c->gid) != 0) child_fail(c, LAMINA_STEP_GID, errno);
    // Moving every uid away from 0 clears the permitted and effective sets (no SECBIT_KEEP_CAPS).
    if (syscall(SYS_setresuid, c->uid, c->uid, c->uid) != 0) child_fail(c, LAMINA_STEP_UID, errno);
    if (c->drop_capabilities) {
        struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
        struct __user_cap_data_struct data[2];
        memset(data, 0, sizeof data);
        if (c->uid == 0) {
            uint64_t keep = c->keep_capabilities;
            data[0].effective = data[0].permitted = (uint32_t)keep;
            data[1].effective = data[1].permitted = (uint32_t)(keep >> 32);
        }
        if (syscall(SYS_capset, &header, data) != 0) child_fail(c, LAMINA_STEP_CAPABILITIES, errno);
    }
}

static void child_stdio(struct lamina_spawn_config *c) {
    int wanted[3] = {c->stdin_fd, c->stdout_fd, c->stderr_fd};
    int high[3];
    // Move the sources out of 0..2 first so one dup2 cannot clobber another's source.
    for (int i = 0; i < 3; i++) {
        high[i] = fcntl(wanted[i], F_DUPFD_CLOEXEC, 3);
        if (high[i] < 0) child_fail(c, LAMINA_STEP_STDIO, errno);
    }
    for (int i = 0; i < 3; i++) {
        if (dup2(high[i], i) < 0) child_fail(c, LAMINA_STEP_STDIO, errno);
    }
    if (syscall(SYS_close_range, 3u, ~0u, 0u) != 0) child_fail(c, LAMINA_STEP_CLOSE_FDS, errno);
}

static void child_seccomp(struct lamina_spawn_config *c) {
    if (c->seccomp_filter == NULL) return;
    struct sock_fprog prog = {
        .len = c->seccomp_filter_len,
        .filter = (struct sock_filter *)c->seccomp_filter,
    };
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) child_fail(c, LAMINA_STEP_SECCOMP, errno);
}

__attribute__((noreturn)) static void child_exec(struct lamina_spawn_config *c) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    if (strchr(c->executable, '/') != NULL || c->search_path == NULL) {
        execve(c->executable, c->argv, c->envp);
        child_fail(c, LAMINA_STEP_EXEC, errno);
    }
    // PATH lookup as execvpe does it, without its allocations.
    size_t name_len = strlen(c->executable);
    int saw_eacces = 0;
    const char *p = c->search_path;
    while (1) {
        const char *end = strchr(p, ':');
        size_t dir_len = end ? (size_t)(end - p) : strlen(p);
        if (dir_len == 0) {
            dir_len = 1;
            p = ".";
        }
        if (dir_len + 1 + name_len + 1 <= c->scratch_len) {
            memcpy(c->scratch, p, dir_len);
            c->scratch[dir_len] = '/';
            memcpy(c->scratch + dir_len + 1, c->executable, name_len + 1);
            execve(c->scratch, c->argv, c->envp);
            if (errno == EACCES) saw_eacces = 1;
            else if (errno != ENOENT && errno != ENOTDIR) child_fail(c, LAMINA_STEP_EXEC, errno);
        }
        if (end == NULL) break;
        p = end + 1;
    }
    child_fail(c, LAMINA_STEP_EXEC, saw_eacces ? EACCES : ENOENT);
}

static int child_main(void *arg) {
    struct lamina_spawn_config *c = arg;
    mark(c, LAMINA_STEP_SIGNALS);
    child_reset_signals();
    mark(c, LAMINA_STEP_CGROUP_JOIN);
    child_join_cgroups(c);
    mark(c, LAMINA_STEP_MOUNT_PLAN);
    child_mounts(c);
    mark(c, LAMINA_STEP_HOSTNAME);
    if (c->hostname && sethostname(c->hostname, strlen(c->hostname)) != 0) child_fail(c, LAMINA_STEP_HOSTNAME, errno);
    mark(c, LAMINA_STEP_LOOPBACK);
    child_network(c);
    mark(c, LAMINA_STEP_RLIMITS);
    if (setsid() < 0) child_fail(c, LAMINA_STEP_SETSID, errno);
    child_limits_and_privileges(c);
    mark(c, LAMINA_STEP_STDIO);
    child_stdio(c);
    if (c->workdir && chdir(c->workdir) != 0) child_fail(c, LAMINA_STEP_WORKDIR, errno);
    mark(c, LAMINA_STEP_SECCOMP);
    child_seccomp(c);
    mark(c, LAMINA_STEP_EXEC);
    child_exec(c);
}

pid_t lamina_spawn(struct lamina_spawn_config *c, int *pidfd) {
    c->failed_step = LAMINA_STEP_NONE;
    c->failed_errno = 0;
    c->failed_mount_index = -1;
    *pidfd = -1;

    // Block every signal so none is delivered to the child while it still runs the parent's handlers.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int flags = (int)(c->namespaces & ~(unsigned long)CLONE_NEWCGROUP) | CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD;
    char *stack_top = (char *)c->stack + c->stack_len;
    stack_top = (char *)((uintptr_t)stack_top & ~(uintptr_t)15);
    int fd = -1;
    mark(c, LAMINA_STEP_CLONE);
    pid_t pid = clone(child_main, stack_top, flags, c, &fd);
    int clone_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    if (pid < 0) {
        c->failed_step = LAMINA_STEP_CLONE;
        c->failed_errno = clone_errno;
        return -1;
    }
    if (c->failed_step != LAMINA_STEP_NONE) {
        // The child wrote its failure and exited before exec: reap it now.
        int code, sig;
        lamina_pidfd_wait(fd, 0, &code, &sig);
        close(fd);
        return -1;
    }
    *pidfd = fd;
    return pid;
}

int lamina_receive_fd(int socket) {
    char byte;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    ssize_t n;
    do {
        n = recvmsg(socket, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
        if (n == 0) errno = ENODATA;
        return -1;
    }
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    if (cmsg == NULL || cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) {
        errno = EBADMSG;
        return -1;
    }
    int fd;
    memcpy(&fd, CMSG_DATA(cmsg), sizeof fd);
    return fd;
}

int lamina_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

int lamina_pidfd_send_signal(int pidfd, int sig) { return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0); }

int lamina_pidfd_wait(int pidfd, int nohang, int *code, int *signal) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    int r;
    do {
        r = waitid((idtype_t)P_PIDFD, (id_t)pidfd, &info, WEXITED | (nohang ? WNOHANG : 0));
    } while (r < 0 && errno == EINTR);
    if (r < 0) return -1;
    if (info.si_pid == 0) return 0;
    if (info.si_code == CLD_EXITED) {
        *code = info.si_status;
        *signal = 0;
    } else {
        *code = 0;
        *signal = info.si_status;
    }
    return 1;
}

int lamina_termination_signalfd(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) return -1;
    return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

int lamina_read_signalfd(int fd) {
    struct signalfd_siginfo info;
    ssize_t n = read(fd, &info, sizeof info);
    if (n != (ssize_t)sizeof info) return -1;
    return (int)info.ssi_signo;
}

int lamina_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int lamina_memfd_create(const char *name) { return memfd_create(name, MFD_CLOEXEC); }

int lamina_mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data) {
    return mount(source, target, fstype, flags, data);
}

int lamina_umount2(const char *target, int flags) { return umount2(target, flags); }

int lamina_prctl_get_no_new_privs(void) { return prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); }

int lamina_close_range(unsigned int first, unsigned int last, unsigned int flags) {
    return (int)syscall(SYS_close_range, first, last, flags);
}

int lamina_set_cloexec(int fd) {
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0) return -1;
    return fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}
