// probe: a small static program the sandbox tests run inside sandboxes to ask the kernel
// directly what is allowed. Each command prints one line per check: "<name> <result>", where
// result is "ok" or the errno name.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/reboot.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>

static const char *name(int e) {
    switch (e) {
    case 0: return "ok";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENOSYS: return "ENOSYS";
    case EROFS: return "EROFS";
    case ENOSPC: return "ENOSPC";
    case EINVAL: return "EINVAL";
    case EAGAIN: return "EAGAIN";
    case ENOENT: return "ENOENT";
    case EFAULT: return "EFAULT";
    case EBADF: return "EBADF";
    case ENOMEM: return "ENOMEM";
    case ECONNREFUSED: return "ECONNREFUSED";
    default: return strerror(e);
    }
}

static void report(const char *what, long result) {
    printf("%s %s\n", what, result < 0 ? name(errno) : "ok");
    fflush(stdout);
}

static int syscalls(void) {
    report("mount", mount("none", "/tmp", "tmpfs", 0, NULL));
    report("umount2", umount2("/proc", MNT_DETACH));
    report("unshare-user", unshare(CLONE_NEWUSER));
    report("unshare-net", unshare(CLONE_NEWNET));
    report("unshare-mount", unshare(CLONE_NEWNS));
    int nsfd = open("/proc/self/ns/net", O_RDONLY);
    report("setns", setns(nsfd, CLONE_NEWNET));
    report("ptrace", ptrace(PTRACE_TRACEME, 0, NULL, NULL));
    report("keyctl", syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 0));
    report("bpf", syscall(SYS_bpf, 0 /* BPF_MAP_CREATE */, NULL, 0));
    report("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0));
    report("init_module", syscall(SYS_init_module, NULL, 0, ""));
    // CAD_OFF only disables ctrl-alt-del: harmless even if it were allowed.
    report("reboot", syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_CAD_OFF, NULL));
    report("swapon", syscall(SYS_swapon, "/tmp/swap", 0));
    report("pivot_root", syscall(SYS_pivot_root, ".", "."));
    report("chroot", chroot("/tmp"));
    report("open_by_handle_at", syscall(SYS_open_by_handle_at, AT_FDCWD, NULL, 0));
    long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, 0);
    if (pid == 0) _exit(0);
    report("clone-newuser", pid);
    if (pid > 0) waitpid((pid_t)pid, NULL, 0);
    // A plain fork must still work.
    pid = fork();
    if (pid == 0) _exit(0);
    report("fork", pid);
    if (pid > 0) waitpid((pid_t)pid, NULL, 0);
    return 0;
}

static int alloc(long megabytes) {
    long total = 0;
    for (long i = 0; i < megabytes; i++) {
        char *block = malloc(1 << 20);
        if (block == NULL) { printf("alloc failed after %ld MB\n", total); return 1; }
        memset(block, 1, 1 << 20);
        total++;
    }
    printf("allocated %ld MB\n", total);
    return 0;
}

static int forkbomb(void) {
    int count = 0;
    for (;;) {
        pid_t pid = fork();
        if (pid == 0) { for (;;) pause(); }
        if (pid < 0) { printf("forks %d stopped %s\n", count, name(errno)); fflush(stdout); break; }
        count++;
        if (count > 100000) break;
    }
    return 0;
}

static int spin(void) { for (volatile unsigned long i = 0;; i++) {} return 0; }

static int writefile(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    report("write", fd);
    return 0;
}

static int fill(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { report("fill-open", fd); return 1; }
    static char buffer[65536];
    memset(buffer, 'x', sizeof buffer);
    long total = 0;
    for (;;) {
        ssize_t n = write(fd, buffer, sizeof buffer);
        if (n < 0) { printf("fill %s after %ld bytes\n", name(errno), total); return 0; }
        total += n;
    }
}

// Connects to 127.0.0.1:port, sends a line, prints what comes back.
static int connectto(int port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (connect(s, (struct sockaddr *)&addr, sizeof addr) != 0) { report("connect", -1); return 1; }
    const char *hello = "hello from the sandbox\n";
    write(s, hello, strlen(hello));
    char buffer[256];
    ssize_t n = read(s, buffer, sizeof buffer - 1);
    if (n < 0) n = 0;
    buffer[n] = 0;
    printf("reply %s", buffer);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: probe syscalls|alloc MB|forkbomb|spin|write PATH|fill PATH|connect PORT\n"); return 2; }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(argv[1], "syscalls")) return syscalls();
    if (!strcmp(argv[1], "alloc") && argc > 2) return alloc(atol(argv[2]));
    if (!strcmp(argv[1], "forkbomb")) return forkbomb();
    if (!strcmp(argv[1], "spin")) return spin();
    if (!strcmp(argv[1], "write") && argc > 2) return writefile(argv[2]);
    if (!strcmp(argv[1], "fill") && argc > 2) return fill(argv[2]);
    if (!strcmp(argv[1], "connect") && argc > 2) return connectto(atoi(argv[2]));
    fprintf(stderr, "probe: unknown command %s\n", argv[1]);
    return 2;
}
