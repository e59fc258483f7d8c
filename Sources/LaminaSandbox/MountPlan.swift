#if canImport(Glibc)
import Glibc
#endif

/// One step of the mount plan the child performs in its private mount namespace, before pivot_root.
struct MountOperation: Equatable {
    enum Kind: Int32 {
        case mount = 1, bind = 2, remount = 3, mknod = 4, symlink = 5, mkdir = 6
    }

    var kind: Kind
    var source: String?
    var target: String
    var fstype: String?
    var flags: UInt = 0
    var data: String?
    var mode: UInt32 = 0
    var device: UInt64 = 0
    /// A missing target is skipped (paths of /proc that a kernel may not have).
    var optional = false
}

/// The mounts that turn read-only layers into a sandbox root, in the order the kernel needs them.
/// Everything happens inside the child's own mount namespace, so it all disappears with the sandbox:
/// nothing is ever mounted in the host's namespace and nothing can leak there.
enum MountPlan {
    static let flagReadOnly = UInt(MS_RDONLY)
    static let flagNoSuid = UInt(MS_NOSUID)
    static let flagNoDev = UInt(MS_NODEV)
    static let flagNoExec = UInt(MS_NOEXEC)

    /// /proc files that reveal or control the host and are covered with /dev/null.
    static let maskedProcFiles = ["kcore", "keys", "timer_list", "sched_debug", "latency_stats", "kallsyms", "kmsg", "config.gz", "sysrq-trigger"]
    /// /proc directories hidden under an empty read-only tmpfs.
    static let maskedProcDirectories = ["acpi", "scsi", "firmware", "asound", "driver"]
    /// /proc trees that stay readable but become read-only.
    static let readOnlyProcPaths = ["sys", "irq", "bus", "fs"]
    /// The devices a sandbox gets: (name, major, minor).
    static let devices: [(String, UInt64, UInt64)] = [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9)]

    static func operations(for spec: SandboxSpec, at root: String) -> [MountOperation] {
        var plan: [MountOperation] = []
        plan.append(rootMount(spec.root, at: root))

        plan.append(MountOperation(
            kind: .mount, source: "tmpfs", target: root + "/tmp", fstype: "tmpfs",
            flags: flagNoSuid | flagNoDev, data: "size=\(spec.limits.tmpMB)m,mode=1777"))

        plan.append(MountOperation(
            kind: .mount, source: "proc", target: root + "/proc", fstype: "proc",
            flags: flagNoSuid | flagNoDev | flagNoExec))

        plan += deviceOperations(at: root + "/dev")

        for name in maskedProcFiles {
            plan.append(MountOperation(kind: .bind, source: root + "/dev/null", target: root + "/proc/" + name,
                                       flags: flagReadOnly | flagNoSuid | flagNoDev | flagNoExec, optional: true))
        }
        for name in maskedProcDirectories {
            plan.append(MountOperation(kind: .mount, source: "tmpfs", target: root + "/proc/" + name, fstype: "tmpfs",
                                       flags: flagReadOnly | flagNoSuid | flagNoDev | flagNoExec, data: "size=0", optional: true))
        }
        for name in readOnlyProcPaths {
            plan.append(MountOperation(kind: .bind, source: root + "/proc/" + name, target: root + "/proc/" + name,
                                       flags: flagReadOnly | flagNoSuid | flagNoDev | flagNoExec, optional: true))
        }

        for bind in spec.binds {
            if bind.createTarget {
                var path = root
                for part in bind.target.split(separator: "/") {
                    path += "/" + part
                    if path.count > root.count + 4 { // below /tmp
                        plan.append(MountOperation(kind: .mkdir, target: path, mode: 0o755))
                    }
                }
            }
            plan.append(MountOperation(kind: .bind, source: bind.source, target: root + bind.target,
                                       flags: (bind.readOnly ? flagReadOnly : 0) | flagNoSuid | flagNoDev))
        }
        return plan
    }

    static func rootMount(_ rootfs: RootFilesystem, at root: String) -> MountOperation {
        if let writable = rootfs.writable {
            let data = "lowerdir=\(rootfs.layers.joined(separator: ":")),upperdir=\(writable.upper),workdir=\(writable.work)"
            return MountOperation(kind: .mount, source: "overlay", target: root, fstype: "overlay", flags: flagNoDev, data: data)
        }
        // overlayfs without an upper directory needs two lower layers; one layer is bound read-only.
        if rootfs.layers.count == 1 {
            return MountOperation(kind: .bind, source: rootfs.layers[0], target: root, flags: flagReadOnly | flagNoSuid | flagNoDev)
        }
        return MountOperation(kind: .mount, source: "overlay", target: root, fstype: "overlay",
                              flags: flagReadOnly | flagNoSuid | flagNoDev, data: "lowerdir=\(rootfs.layers.joined(separator: ":"))")
    }

    static func deviceOperations(at dev: String) -> [MountOperation] {
        var plan = [MountOperation(kind: .mount, source: "tmpfs", target: dev, fstype: "tmpfs",
                                   flags: flagNoSuid | flagNoExec, data: "size=64k,mode=755")]
        for (name, major, minor) in devices {
            plan.append(MountOperation(kind: .mknod, target: dev + "/" + name, mode: 0o666, device: makeDevice(major, minor)))
        }
        for (link, target) in [("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")] {
            plan.append(MountOperation(kind: .symlink, source: target, target: dev + "/" + link))
        }
        plan.append(MountOperation(kind: .remount, target: dev, flags: flagReadOnly | flagNoSuid | flagNoExec))
        return plan
    }

    /// glibc's makedev(3) encoding.
    static func makeDevice(_ major: UInt64, _ minor: UInt64) -> UInt64 {
        ((major & 0xffff_f000) << 32) | ((major & 0xfff) << 8) | ((minor & 0xffff_ff00) << 12) | (minor & 0xff)
    }
}
