#if canImport(Glibc)
import Glibc
#endif

/// Everything that describes one sandbox, as a value. Validated once by `validate()`, at the edge.
public struct SandboxSpec: Sendable {
    /// argv. `command[0]` is an absolute path, or a name looked up in the sandbox's PATH.
    public var command: [String]
    /// The complete environment of the process; nothing is inherited from the host.
    public var environment: [String: String]
    public var root: RootFilesystem
    /// Host directories bound into the sandbox (the target must exist in the root).
    public var binds: [BindMount]
    public var limits: ResourceLimits
    public var user: SandboxUser
    public var hostname: String
    public var workingDirectory: String
    public var network: NetworkMode
    /// When set, a TCP socket listening on 127.0.0.1:port inside the sandbox's network namespace is
    /// created before exec and handed to the host (`Sandbox.takeListeningSocket()`), so the host can
    /// serve an API to the sandbox without any proxy or shared network.
    public var listenPort: UInt16?
    public var seccomp: SeccompProfile
    public var stdio: Stdio
    public var privileges: Privileges

    public init(
        command: [String],
        root: RootFilesystem,
        environment: [String: String] = ["PATH": SandboxSpec.defaultPath],
        binds: [BindMount] = [],
        limits: ResourceLimits = ResourceLimits(),
        user: SandboxUser,
        hostname: String = "sandbox",
        workingDirectory: String = "/",
        network: NetworkMode = .loopbackOnly,
        listenPort: UInt16? = nil,
        seccomp: SeccompProfile = .default,
        stdio: Stdio = .null,
        privileges: Privileges = .unprivileged
    ) {
        self.command = command
        self.root = root
        self.environment = environment
        self.binds = binds
        self.limits = limits
        self.user = user
        self.hostname = hostname
        self.workingDirectory = workingDirectory
        self.network = network
        self.listenPort = listenPort
        self.seccomp = seccomp
        self.stdio = stdio
        self.privileges = privileges
    }

    public static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// Checks every field a user can get wrong and says which one and why.
    public func validate() throws(SandboxError) {
        guard let executable = command.first, !executable.isEmpty else {
            throw .invalidSpec("the command is empty: give the program to run after `--`")
        }
        if command.contains(where: { $0.utf8.contains(0) }) || environment.contains(where: { $0.key.utf8.contains(0) || $0.value.utf8.contains(0) }) {
            throw .invalidSpec("the command and environment must not contain NUL bytes")
        }
        for key in environment.keys where key.isEmpty || key.contains("=") {
            throw .invalidSpec("invalid environment variable name `\(key)`")
        }
        try root.validate()
        try limits.validate()
        if privileges == .unprivileged { try user.validate() }
        guard hostname.utf8.count <= 64, !hostname.isEmpty else {
            throw .invalidSpec("the hostname must be 1 to 64 bytes long")
        }
        guard workingDirectory.hasPrefix("/") else {
            throw .invalidSpec("the working directory `\(workingDirectory)` must be an absolute path")
        }
        for bind in binds {
            guard bind.target.hasPrefix("/"), !bind.target.split(separator: "/").contains("..") else {
                throw .invalidSpec("bind target `\(bind.target)` must be an absolute path without `..`")
            }
            guard FileIO.exists(bind.source) else {
                throw .invalidSpec("bind source `\(bind.source)` does not exist")
            }
            if bind.createTarget && !bind.target.hasPrefix("/tmp/") {
                throw .invalidSpec("bind target `\(bind.target)` can only be created under /tmp (the root is read-only)")
            }
        }
    }
}

/// The sandbox's root: read-only layers (top first) merged with overlayfs; an optional writable
/// upper directory exists for building layers, never for running tenant code.
public struct RootFilesystem: Sendable {
    public var layers: [String]
    public var writable: WritableLayer?

    public init(layers: [String], writable: WritableLayer? = nil) {
        self.layers = layers
        self.writable = writable
    }

    func validate() throws(SandboxError) {
        guard !layers.isEmpty else { throw .invalidSpec("at least one --layer is needed for the root filesystem") }
        for layer in layers {
            guard layer.hasPrefix("/") else { throw .invalidSpec("layer `\(layer)` must be an absolute path") }
            guard FileIO.isDirectory(layer) else { throw .invalidSpec("layer directory `\(layer)` does not exist") }
            // overlayfs separates lower directories with ':' and options with ','.
            guard !layer.contains(":"), !layer.contains(",") else {
                throw .invalidSpec("layer path `\(layer)` must not contain ':' or ','")
            }
        }
        if let writable {
            for dir in [writable.upper, writable.work] where !FileIO.isDirectory(dir) {
                throw .invalidSpec("writable layer directory `\(dir)` does not exist")
            }
        }
    }
}

public struct WritableLayer: Sendable {
    /// Receives every change; becomes the new layer.
    public var upper: String
    /// overlayfs' scratch directory, on the same filesystem as `upper`, empty.
    public var work: String

    public init(upper: String, work: String) {
        self.upper = upper
        self.work = work
    }
}

public struct BindMount: Sendable {
    public var source: String
    public var target: String
    public var readOnly: Bool
    /// Create the target directory first (only under /tmp, which is the sandbox's own tmpfs).
    public var createTarget: Bool

    public init(source: String, target: String, readOnly: Bool = true, createTarget: Bool = false) {
        self.source = source
        self.target = target
        self.readOnly = readOnly
        self.createTarget = createTarget
    }
}

/// Who the sandboxed process is.
public enum Privileges: Sendable, Equatable {
    /// An unprivileged uid/gid with no capabilities at all. Tenant code always runs like this.
    case unprivileged
    /// uid 0 with Docker's default capability set, for the operator's own build recipes (package
    /// managers need to chown and switch users). Never for tenant code.
    case buildRoot

    /// CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE,
    /// SYS_CHROOT, MKNOD, AUDIT_WRITE, SETFCAP: Docker's default set.
    static let buildCapabilities: UInt64 = [0, 1, 3, 4, 5, 6, 7, 8, 10, 18, 27, 29, 31].reduce(0) { $0 | (1 << UInt64($1)) }
}

public struct ResourceLimits: Sendable {
    public static let memoryRangeMB = 128...10240
    /// Lambda: "At 1,769 MB, a function has the equivalent of one vCPU".
    public static let megabytesPerCPU = 1769.0

    public var memoryMB: Int
    /// CPU share; nil means proportional to memory.
    public var cpus: Double?
    /// CPU share from the start until the caller lowers it to `effectiveCPUs` (`SandboxCgroup.limitCPU`),
    /// when that is more: Lambda runs a function's init faster than its handler (measured: about
    /// two unthrottled vCPUs below 3 GB), so a 128 MB Python function starts in tens of ms, not
    /// hundreds. nil: `effectiveCPUs` throughout.
    public var startupCPUs: Double?
    public var pids: Int
    public var tmpMB: Int
    public var openFiles: Int

    public init(memoryMB: Int = 128, cpus: Double? = nil, startupCPUs: Double? = nil, pids: Int = 1024, tmpMB: Int = 512, openFiles: Int = 1024) {
        self.memoryMB = memoryMB
        self.cpus = cpus
        self.startupCPUs = startupCPUs
        self.pids = pids
        self.tmpMB = tmpMB
        self.openFiles = openFiles
    }

    public var effectiveCPUs: Double { cpus ?? Double(memoryMB) / Self.megabytesPerCPU }
    /// The CPU share a sandbox starts with.
    public var initialCPUs: Double { max(effectiveCPUs, startupCPUs ?? 0) }
    public var memoryBytes: Int64 { Int64(memoryMB) * 1024 * 1024 }

    func validate() throws(SandboxError) {
        guard Self.memoryRangeMB.contains(memoryMB) else {
            throw .invalidSpec("memory \(memoryMB) MB is out of range: use 128 to 10240 MB")
        }
        if let cpus, !(cpus >= 0.01 && cpus <= 64) {
            throw .invalidSpec("cpus \(cpus) is out of range: use 0.01 to 64")
        }
        if let startupCPUs, !(startupCPUs >= 0.01 && startupCPUs <= 64) {
            throw .invalidSpec("startup cpus \(startupCPUs) is out of range: use 0.01 to 64")
        }
        guard (1...65536).contains(pids) else { throw .invalidSpec("pids \(pids) is out of range: use 1 to 65536") }
        guard (1...10240).contains(tmpMB) else { throw .invalidSpec("tmp size \(tmpMB) MB is out of range: use 1 to 10240 MB") }
        guard (16...65536).contains(openFiles) else { throw .invalidSpec("open files \(openFiles) is out of range: use 16 to 65536") }
    }
}

public struct SandboxUser: Sendable, Equatable {
    public var uid: UInt32
    public var gid: UInt32

    public init(uid: UInt32, gid: UInt32) {
        self.uid = uid
        self.gid = gid
    }

    func validate() throws(SandboxError) {
        guard uid != 0, gid != 0 else { throw .invalidSpec("a sandbox never runs as uid or gid 0") }
        guard uid != UInt32.max, gid != UInt32.max else { throw .invalidSpec("uid and gid must be valid ids") }
    }
}

public enum NetworkMode: Sendable {
    /// A new network namespace with only `lo`, up. Tenant code always runs like this.
    case loopbackOnly
    /// The host's network. Only for the operator's own build recipes, never for tenant code.
    case host
}

public enum SeccompProfile: Sendable, Hashable {
    /// The allowlist in `SeccompAllowlist` (Docker's default profile in spirit).
    case `default`
    /// No filter. Only for the operator's own build recipes.
    case unconfined
}

/// Where the sandbox's stdin, stdout and stderr go. File descriptors are the caller's and stay open.
public enum Stdio: Sendable {
    case null
    case fds(stdin: Int32, stdout: Int32, stderr: Int32)
}

public enum SandboxError: Error, CustomStringConvertible, Sendable {
    case invalidSpec(String)
    case system(SystemError)
    case spawnFailed(step: String, detail: String)
    case unsupportedHost(String)

    public var description: String {
        switch self {
        case .invalidSpec(let message): return message
        case .system(let error): return error.description
        case .spawnFailed(let step, let detail): return "sandbox setup failed while \(step): \(detail)"
        case .unsupportedHost(let message): return message
        }
    }
}
