#if canImport(Glibc)
import Glibc
#endif
import CLinux

/// Prepares everything the C child needs (strings, arrays, the mount plan, the seccomp program) in
/// memory that stays valid until the child has exec'd, then calls `lamina_spawn`. Nothing in here
/// runs in the child.
struct Spawner {
    struct Result {
        var pid: pid_t
        var pidfd: Int32
        var listeningSocket: Int32?
        var timings: SpawnTimings
    }

    /// Owns every C allocation made for one spawn and frees them together.
    final class Arena {
        private var pointers: [UnsafeMutableRawPointer] = []

        func string(_ text: String) -> UnsafeMutablePointer<CChar> {
            let pointer = strdup(text)!
            pointers.append(UnsafeMutableRawPointer(pointer))
            return pointer
        }

        func optionalString(_ text: String?) -> UnsafePointer<CChar>? {
            text.map { UnsafePointer(string($0)) }
        }

        func array<T>(_ values: [T]) -> UnsafeMutablePointer<T> {
            let pointer = UnsafeMutablePointer<T>.allocate(capacity: max(values.count, 1))
            pointer.initialize(from: values, count: values.count)
            pointers.append(UnsafeMutableRawPointer(pointer))
            return pointer
        }

        /// A NULL-terminated char* array (argv, envp).
        func stringArray(_ values: [String]) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> {
            array(values.map { Optional(string($0)) } + [nil])
        }

        func bytes(_ count: Int) -> UnsafeMutableRawPointer {
            let pointer = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 16)
            pointers.append(pointer)
            return pointer
        }

        deinit { for pointer in pointers { pointer.deallocate() } }
    }

    static let childStackSize = 256 * 1024
    static let scratchSize = Int(PATH_MAX) + 256

    static func spawn(
        spec: SandboxSpec,
        rootMountPoint: String,
        cgroup: any SandboxCgroup,
        seccomp: SeccompProgram?
    ) throws(SandboxError) -> Result {
        let arena = Arena()
        let plan = MountPlan.operations(for: spec, at: rootMountPoint)
        let mounts = plan.map { op in
            lamina_mount_op(
                kind: op.kind.rawValue, optional: op.optional ? 1 : 0,
                source: arena.optionalString(op.source), target: UnsafePointer(arena.string(op.target)),
                fstype: arena.optionalString(op.fstype), flags: op.flags, data: arena.optionalString(op.data),
                mode: op.mode, dev: op.device)
        }

        var namespaces = LAMINA_CLONE_NEWNS | LAMINA_CLONE_NEWPID | LAMINA_CLONE_NEWIPC | LAMINA_CLONE_NEWUTS
        if spec.network == .loopbackOnly { namespaces |= LAMINA_CLONE_NEWNET }

        // Raising a hard limit needs CAP_SYS_RESOURCE, which some hosts (containers, VMs) withhold
        // even from root: never ask for more than the host process's own hard limit.
        var current = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &current)
        let openFiles = min(UInt64(spec.limits.openFiles), UInt64(current.rlim_max))
        let rlimits = [
            lamina_rlimit(resource: Int32(RLIMIT_NOFILE.rawValue), soft: openFiles, hard: openFiles),
            lamina_rlimit(resource: Int32(RLIMIT_CORE.rawValue), soft: 0, hard: 0),
        ]

        // Stdio: the caller's descriptors, or /dev/null.
        var nullFD: Int32 = -1
        defer { if nullFD >= 0 { close(nullFD) } }
        let stdio: (Int32, Int32, Int32)
        switch spec.stdio {
        case .fds(let stdin, let stdout, let stderr):
            stdio = (stdin, stdout, stderr)
        case .null:
            nullFD = open("/dev/null", O_RDWR | O_CLOEXEC)
            guard nullFD >= 0 else { throw .system(SystemError("open", path: "/dev/null")) }
            stdio = (nullFD, nullFD, nullFD)
        }

        // A socket pair carries the listening socket created inside the new network namespace.
        var control: [Int32] = [-1, -1]
        if spec.listenPort != nil {
            guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &control) == 0 else {
                throw .system(SystemError("socketpair"))
            }
        }
        defer { for fd in control where fd >= 0 { close(fd) } }

        let environment = spec.environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        let joinFDs = cgroup.joinDescriptors
        var config = lamina_spawn_config()
        config.namespaces = namespaces
        config.cgroup_namespace = 1
        config.cgroup_procs_fds = UnsafePointer(arena.array(joinFDs))
        config.cgroup_procs_count = Int32(joinFDs.count)
        config.mounts = UnsafePointer(arena.array(mounts))
        config.mount_count = Int32(mounts.count)
        config.root = UnsafePointer(arena.string(rootMountPoint))
        config.hostname = UnsafePointer(arena.string(spec.hostname))
        config.loopback_up = spec.network == .loopbackOnly ? 1 : 0
        config.listen_port = Int32(spec.listenPort ?? 0)
        config.control_fd = control[1]
        config.rlimits = UnsafePointer(arena.array(rlimits))
        config.rlimit_count = Int32(rlimits.count)
        config.no_new_privs = 1
        config.drop_capabilities = 1
        config.keep_capabilities = spec.privileges == .buildRoot ? Privileges.buildCapabilities : 0
        config.uid = spec.privileges == .buildRoot ? 0 : spec.user.uid
        config.gid = spec.privileges == .buildRoot ? 0 : spec.user.gid
        config.stdin_fd = stdio.0
        config.stdout_fd = stdio.1
        config.stderr_fd = stdio.2
        config.workdir = UnsafePointer(arena.string(spec.workingDirectory))
        if let seccomp {
            let program = arena.array(seccomp.bytes)
            config.seccomp_filter = UnsafeRawPointer(program)
            config.seccomp_filter_len = UInt16(seccomp.instructionCount)
        }
        config.executable = UnsafePointer(arena.string(spec.command[0]))
        config.search_path = arena.optionalString(spec.environment["PATH"] ?? SandboxSpec.defaultPath)
        config.argv = UnsafePointer(arena.stringArray(spec.command))
        config.envp = UnsafePointer(arena.stringArray(environment))
        config.scratch = arena.bytes(scratchSize).assumingMemoryBound(to: CChar.self)
        config.scratch_len = UInt(scratchSize)
        config.stack = arena.bytes(childStackSize)
        config.stack_len = UInt(childStackSize)

        var pidfd: Int32 = -1
        let pid = lamina_spawn(&config, &pidfd)
        let returned = monotonicNanoseconds()
        guard pid > 0 else { throw failure(config, plan: plan) }
        let timings = SpawnTimings(steps: config.step_started_ns, returned: returned)

        var listening: Int32?
        if spec.listenPort != nil {
            let fd = lamina_receive_fd(control[0])
            guard fd >= 0 else {
                let error = SystemError("receive the listening socket from the sandbox")
                _ = lamina_pidfd_send_signal(pidfd, SIGKILL)
                throw .system(error)
            }
            listening = fd
        }
        return Result(pid: pid, pidfd: pidfd, listeningSocket: listening, timings: timings)
    }

    static func failure(_ config: lamina_spawn_config, plan: [MountOperation]) -> SandboxError {
        let reason = String(cString: strerror(config.failed_errno))
        let step = Int(config.failed_step)
        switch step {
        case Int(LAMINA_STEP_MOUNT_PLAN.rawValue):
            let index = Int(config.failed_mount_index)
            let op = index >= 0 && index < plan.count ? plan[index] : nil
            let what = op.map { op -> String in
                switch op.kind {
                case .mount: return "mounting \(op.fstype ?? "") on \(op.target)"
                case .bind: return "binding \(op.source ?? "") on \(op.target)"
                case .remount: return "remounting \(op.target)"
                case .mknod: return "creating device \(op.target)"
                case .symlink: return "creating symlink \(op.target)"
                case .mkdir: return "creating directory \(op.target)"
                }
            } ?? "running the mount plan"
            let hint = config.failed_errno == ENOENT ? " (the root filesystem lacks this mount point)" : ""
            return .spawnFailed(step: what, detail: reason + hint)
        case Int(LAMINA_STEP_EXEC.rawValue):
            let program = String(cString: config.executable)
            return .spawnFailed(step: "starting `\(program)`", detail: reason)
        case Int(LAMINA_STEP_WORKDIR.rawValue):
            return .spawnFailed(step: "entering the working directory \(String(cString: config.workdir))", detail: reason)
        default:
            return .spawnFailed(step: stepNames[step] ?? "step \(step)", detail: reason)
        }
    }

    static let stepNames: [Int: String] = [
        Int(LAMINA_STEP_CLONE.rawValue): "cloning into new namespaces",
        Int(LAMINA_STEP_SIGNALS.rawValue): "resetting signal handlers",
        Int(LAMINA_STEP_CGROUP_JOIN.rawValue): "joining the sandbox cgroup",
        Int(LAMINA_STEP_CGROUP_NAMESPACE.rawValue): "creating the cgroup namespace",
        Int(LAMINA_STEP_MOUNT_PRIVATE.rawValue): "making mounts private",
        Int(LAMINA_STEP_PIVOT_ROOT.rawValue): "switching to the new root (pivot_root)",
        Int(LAMINA_STEP_HOSTNAME.rawValue): "setting the hostname",
        Int(LAMINA_STEP_LOOPBACK.rawValue): "bringing up the loopback interface",
        Int(LAMINA_STEP_LISTEN_SOCKET.rawValue): "creating the listening socket",
        Int(LAMINA_STEP_SEND_SOCKET.rawValue): "handing the listening socket to the host",
        Int(LAMINA_STEP_SETSID.rawValue): "starting a new session",
        Int(LAMINA_STEP_RLIMITS.rawValue): "setting resource limits",
        Int(LAMINA_STEP_NO_NEW_PRIVS.rawValue): "setting no_new_privs",
        Int(LAMINA_STEP_CAPABILITY_BOUNDING.rawValue): "dropping the capability bounding set",
        Int(LAMINA_STEP_GROUPS.rawValue): "clearing supplementary groups",
        Int(LAMINA_STEP_GID.rawValue): "switching to the sandbox gid",
        Int(LAMINA_STEP_UID.rawValue): "switching to the sandbox uid",
        Int(LAMINA_STEP_CAPABILITIES.rawValue): "dropping capabilities",
        Int(LAMINA_STEP_STDIO.rawValue): "connecting stdin, stdout and stderr",
        Int(LAMINA_STEP_CLOSE_FDS.rawValue): "closing inherited file descriptors",
        Int(LAMINA_STEP_SECCOMP.rawValue): "loading the seccomp filter",
    ]
}

/// Where a sandbox's start-up time went, in milliseconds, measured by the child itself.
public struct SpawnTimings: Sendable, Equatable {
    /// Host side before clone: cgroup creation and limits, preparing the plan.
    public var prepare: Double = 0
    /// clone(2) with the new namespaces, until the child runs.
    public var clone: Double = 0
    public var cgroupJoin: Double = 0
    /// The mount plan and pivot_root.
    public var mounts: Double = 0
    /// Hostname, loopback, the listening socket.
    public var network: Double = 0
    /// setsid, rlimits, no_new_privs, capabilities, uid/gid.
    public var privileges: Double = 0
    public var stdio: Double = 0
    public var seccompLoad: Double = 0
    /// execve until the parent resumes.
    public var exec: Double = 0

    public var total: Double { prepare + clone + cgroupJoin + mounts + network + privileges + stdio + seccompLoad + exec }

    public init() {}

    init(steps: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                 UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64),
         returned: UInt64) {
        let t = withUnsafeBytes(of: steps) { Array($0.bindMemory(to: UInt64.self)) }
        func ms(_ from: lamina_spawn_step, _ to: lamina_spawn_step) -> Double {
            let a = t[Int(from.rawValue)], b = t[Int(to.rawValue)]
            return b > a ? Double(b - a) / 1_000_000 : 0
        }
        clone = ms(LAMINA_STEP_CLONE, LAMINA_STEP_CGROUP_JOIN)
        cgroupJoin = ms(LAMINA_STEP_CGROUP_JOIN, LAMINA_STEP_MOUNT_PLAN)
        mounts = ms(LAMINA_STEP_MOUNT_PLAN, LAMINA_STEP_HOSTNAME)
        network = ms(LAMINA_STEP_HOSTNAME, LAMINA_STEP_RLIMITS)
        privileges = ms(LAMINA_STEP_RLIMITS, LAMINA_STEP_STDIO)
        stdio = ms(LAMINA_STEP_STDIO, LAMINA_STEP_SECCOMP)
        seccompLoad = ms(LAMINA_STEP_SECCOMP, LAMINA_STEP_EXEC)
        let execStarted = t[Int(LAMINA_STEP_EXEC.rawValue)]
        exec = returned > execStarted ? Double(returned - execStarted) / 1_000_000 : 0
    }
}
