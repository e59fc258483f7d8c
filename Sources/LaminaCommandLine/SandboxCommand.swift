#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import CLinux
import LaminaSandbox
import Logging

public struct SandboxCommand: ParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(
        commandName: "sandbox",
        abstract: "Run commands in isolated sandboxes, and clean up after crashed hosts.",
        subcommands: [SandboxRun.self, SandboxGC.self, SandboxSeccompProfile.self]
    )
}

public struct SandboxRun: ParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run COMMAND in a fresh sandbox and exit with its status (128+signal if killed).",
        discussion: """
        The root is a read-only overlay of the --layer directories (top first); /tmp is a tmpfs;
        the network has only loopback; the process runs as an unprivileged uid with no capabilities,
        no_new_privs and a seccomp allowlist, in its own cgroup.
        """
    )

    @OptionGroup var host: HostOptions

    @Option(name: .customLong("layer"), help: "A read-only root filesystem layer (repeatable, top first).")
    var layers: [String] = []

    @Option(help: "Memory limit in MB (128-10240); swap is disabled.")
    var memory: Int = 128

    @Option(help: "CPU share (default: memory / 1769 MB, as on Lambda).")
    var cpus: Double?

    @Option(help: "Maximum number of processes and threads.")
    var pids: Int = 1024

    @Option(name: .customLong("tmp-size"), help: "Size of the /tmp tmpfs in MB.")
    var tmpSize: Int = 512

    @Option(help: "Kill everything in the sandbox after this many seconds.")
    var timeout: Double?

    @Option(name: .customLong("env"), help: "An environment variable K=V (repeatable). Nothing is inherited from the host.")
    var environment: [String] = []

    @Option(help: "Working directory inside the sandbox.")
    var workdir: String = "/"

    @Option(help: "Hostname inside the sandbox.")
    var hostname: String = "sandbox"

    @Option(help: "Run as this uid (default: a free one from \(UIDLease.defaultRange.lowerBound)-\(UIDLease.defaultRange.upperBound)).")
    var uid: UInt32?

    @Option(help: "Run as this gid (default: the uid).")
    var gid: UInt32?

    @Flag(help: "After exit, print one JSON object with the sandbox's statistics on stderr.")
    var json = false

    @Argument(parsing: .postTerminator, help: "The command and its arguments, after `--`.")
    var command: [String] = []

    public func validate() throws {
        guard !command.isEmpty else { throw ValidationError("no command given: put it after `--`, e.g. lamina sandbox run --layer DIR -- /bin/sh") }
        guard !layers.isEmpty else { throw ValidationError("no --layer given: the sandbox needs a root filesystem") }
        for entry in environment where !entry.contains("=") || entry.hasPrefix("=") {
            throw ValidationError("--env `\(entry)` must look like KEY=VALUE")
        }
        if let timeout, !(timeout > 0) { throw ValidationError("--timeout must be a positive number of seconds") }
    }

    public func run() throws {
        bootstrapLogging(verbose: host.verbose)
        var variables = ["PATH": SandboxSpec.defaultPath, "HOME": "/tmp"]
        for entry in environment {
            let parts = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            variables[String(parts[0])] = String(parts[1])
        }
        var spec = SandboxSpec(
            command: command,
            root: RootFilesystem(layers: layers.map(absolutePath)),
            environment: variables,
            limits: ResourceLimits(memoryMB: memory, cpus: cpus, pids: pids, tmpMB: tmpSize),
            user: SandboxUser(uid: uid ?? 1, gid: gid ?? uid ?? 1),
            hostname: hostname,
            workingDirectory: workdir,
            stdio: .fds(stdin: 0, stdout: 1, stderr: 2)
        )
        // Bad input is reported before anything is created on the host.
        do { try spec.validate() } catch { throw UsageError(error.description) }

        let sandboxHost: SandboxHost
        do {
            sandboxHost = try SandboxHost(configuration: SandboxHostConfiguration(stateDirectory: host.stateDir, cgroupParent: host.cgroupParent))
        } catch {
            throw CommandFailure(description: error.description, status: 125)
        }
        defer { sandboxHost.shutdownBlocking() }
        var lease: UIDLease?
        if uid == nil {
            do { lease = try UIDLease.acquire(directory: host.stateDir + "/uids") } catch {
                throw CommandFailure(description: error.description, status: 125)
            }
            spec.user = lease!.user
        }
        // Ctrl-C or a termination request ends the sandbox too: it runs in its own session, so the
        // terminal's signals do not reach it directly.
        let signals = lamina_termination_signalfd()
        defer { if signals >= 0 { close(signals) } }

        let sandbox: Sandbox
        do { sandbox = try sandboxHost.spawn(spec) } catch {
            throw CommandFailure(description: error.description, status: Self.status(for: error))
        }
        let (status, timedOut) = waitForExit(sandbox, signals: signals)
        let wall = Double((sandbox.exitedAt ?? monotonic()) - sandbox.startedAt) / 1_000_000
        let statistics = json ? try? sandbox.statistics() : nil
        do { try sandbox.destroyBlocking() } catch {
            FileHandleOutput.standardError("lamina: warning: \(error)")
        }
        withExtendedLifetime(lease) {}

        if json {
            let report = SandboxReport(
                wallMs: wall, cpuMs: Double(statistics?.cpuTimeNanoseconds ?? 0) / 1_000_000,
                peakMemoryBytes: statistics?.peakMemoryBytes ?? 0, oomKilled: (statistics?.oomKills ?? 0) > 0,
                timedOut: timedOut, exitStatus: status.shellStatus, signal: status.signal)
            FileHandleOutput.standardError(report.json)
        }
        if status.shellStatus != 0 { throw ExitCode(status.shellStatus) }
    }

    /// Waits for the sandbox's exit, a termination signal to this command, or the timeout.
    func waitForExit(_ sandbox: Sandbox, signals: Int32) -> (TerminationStatus, timedOut: Bool) {
        let deadline = timeout.map { monotonic() + UInt64($0 * 1_000_000_000) }
        var timedOut = false
        var killed = false
        while true {
            if let status = sandbox.reapIfExited() { return (status, timedOut) }
            var descriptors = [pollfd(fd: sandbox.exitDescriptor, events: Int16(POLLIN), revents: 0),
                               pollfd(fd: signals, events: Int16(POLLIN), revents: 0)]
            var wait: Int32 = -1
            if let deadline, !killed {
                let now = monotonic()
                wait = now >= deadline ? 0 : Int32(min((deadline - now) / 1_000_000 + 1, UInt64(Int32.max)))
            }
            let ready = poll(&descriptors, signals >= 0 ? 2 : 1, wait)
            if ready < 0 && errno != EINTR { return (sandbox.waitBlocking() ?? TerminationStatus(signal: SIGKILL), timedOut) }
            if descriptors[1].revents != 0 {
                _ = lamina_read_signalfd(signals)
                sandbox.kill()
                killed = true
            }
            if ready == 0, let deadline, monotonic() >= deadline, !killed {
                timedOut = true
                killed = true
                sandbox.kill()
            }
        }
    }

    /// Docker's and podman's convention: 127 command not found, 126 not executable, 125 our own failure.
    static func status(for error: SandboxError) -> Int32 {
        if case .spawnFailed(let step, let detail) = error, step.hasPrefix("starting") {
            if detail == String(cString: strerror(ENOENT)) { return 127 }
            return 126
        }
        return 125
    }

    func absolutePath(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX))
        guard getcwd(&buffer, buffer.count) != nil else { return path }
        return String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self) + "/" + path
    }
}

/// The statistics `--json` prints.
struct SandboxReport {
    var wallMs: Double
    var cpuMs: Double
    var peakMemoryBytes: Int64
    var oomKilled: Bool
    var timedOut: Bool
    var exitStatus: Int32
    var signal: Int32?

    var json: String {
        func ms(_ value: Double) -> String { String(format3: value) }
        return "{\"wall_ms\":\(ms(wallMs)),\"cpu_ms\":\(ms(cpuMs)),\"peak_memory_bytes\":\(peakMemoryBytes),"
            + "\"oom_killed\":\(oomKilled),\"timed_out\":\(timedOut),\"exit_status\":\(exitStatus),"
            + "\"signal\":\(signal.map(String.init) ?? "null")}"
    }
}

extension String {
    /// A number with three decimals, without Foundation.
    init(format3 value: Double) {
        let scaled = Int64((value * 1000).rounded())
        let sign = scaled < 0 ? "-" : ""
        let magnitude = scaled.magnitude
        let fraction = String(magnitude % 1000)
        self = "\(sign)\(magnitude / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)"
    }
}

public struct SandboxGC: ParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Remove every sandbox a crashed host left behind (processes, cgroups, mounts, state directories)."
    )

    @OptionGroup var host: HostOptions

    public func run() throws {
        bootstrapLogging(verbose: host.verbose)
        let sandboxHost: SandboxHost
        do {
            sandboxHost = try SandboxHost(configuration: SandboxHostConfiguration(stateDirectory: host.stateDir, cgroupParent: host.cgroupParent))
        } catch {
            throw CommandFailure(description: error.description, status: 1)
        }
        let report = sandboxHost.collectOrphans()
        sandboxHost.shutdownBlocking()
        for pid in report.killedProcesses { FileHandleOutput.standardOutput("killed process \(pid)") }
        for name in report.removedCgroups { FileHandleOutput.standardOutput("removed cgroup \(sandboxHost.cgroups.parent)/\(name)") }
        for path in report.unmounted { FileHandleOutput.standardOutput("unmounted \(path)") }
        for path in report.removedDirectories { FileHandleOutput.standardOutput("removed directory \(path)") }
        for failure in report.failures { FileHandleOutput.standardError("lamina: could not \(failure)") }
        if report.isEmpty && report.failures.isEmpty { FileHandleOutput.standardOutput("nothing to remove") }
        if !report.failures.isEmpty { throw ExitCode(1) }
    }
}

public struct SandboxSeccompProfile: ParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(
        commandName: "seccomp-profile",
        abstract: "Print the sandbox's seccomp allowlist as an OCI runtime-spec profile (for runc or crun)."
    )

    public func run() throws {
        print(SeccompAllowlist.ociProfile())
    }
}

public func monotonic() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Logs go to stderr as `timestamp level label : key=value ... message`; `LAMINA_LOG_LEVEL` overrides.
public func bootstrapLogging(verbose: Bool, level: Logger.Level = .warning) {
    let chosen = verbose ? .debug : (environment("LAMINA_LOG_LEVEL").flatMap(Logger.Level.init(rawValue:)) ?? level)
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = chosen
        return handler
    }
}
