#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import LaminaSandbox

/// create -> exit of /bin/true in a full sandbox, in process through the library API.
struct SandboxBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandbox",
        abstract: "Time spawn -> exit of a command in a full sandbox through the library API."
    )

    @Option(name: .customLong("layer"), help: "Root filesystem layer (repeatable, top first).") var layers: [String]
    @Option(help: "Number of measured runs.") var runs = 200
    @Option(help: "Warm-up runs, not measured.") var warmup = 10
    @Option(help: "Memory limit in MB (CPU share follows it).") var memory = 1769
    @Option(help: "State directory.") var stateDir = "/tmp/lamina-bench"
    @Option(help: "cgroup parent.") var cgroupParent = "lamina-bench"
    @Flag(help: "Wait with poll(2) on the pidfd instead of Swift concurrency.") var blocking = false
    @Argument(help: "The command.") var command: [String] = ["/bin/true"]

    func run() async throws {
        let host = try SandboxHost(configuration: SandboxHostConfiguration(stateDirectory: stateDir, cgroupParent: cgroupParent))
        try host.warmUp()
        let spec = SandboxSpec(
            command: command, root: RootFilesystem(layers: layers),
            limits: ResourceLimits(memoryMB: memory), user: SandboxUser(uid: 299_999, gid: 299_999))
        var totals: [Double] = []
        var breakdown: [SpawnTimings] = []
        for index in 0..<(warmup + runs) {
            let start = now()
            let sandbox = try host.spawn(spec)
            let status = blocking ? sandbox.waitBlocking() ?? TerminationStatus() : await sandbox.wait()
            let exited = now()
            try await sandbox.destroy()
            guard status.code == 0 else { throw ValidationError("command failed: \(status)") }
            if index >= warmup {
                totals.append(Double(exited - start) / 1_000_000)
                breakdown.append(sandbox.timings)
            }
        }
        await host.shutdown()

        let p = Percentiles(totals)
        print("in-process spawn -> exit of \(command.joined(separator: " ")), \(runs) runs (ms)")
        print("p50 \(format(p.p50))  p90 \(format(p.p90))  p99 \(format(p.p99))  mean \(format(p.mean))")
        print("where the time goes (mean ms):")
        let rows: [(String, KeyPath<SpawnTimings, Double>)] = [
            ("prepare (cgroup, plan)", \.prepare), ("clone + namespaces", \.clone), ("cgroup join", \.cgroupJoin),
            ("mounts + pivot_root", \.mounts), ("hostname, loopback", \.network), ("rlimits, caps, uid", \.privileges),
            ("stdio, close fds", \.stdio), ("seccomp load", \.seccompLoad), ("execve", \.exec),
        ]
        for (name, path) in rows {
            let values = Percentiles(breakdown.map { $0[keyPath: path] })
            print("  \(pad(name, 24)) mean \(format(values.mean, decimals: 3))  p50 \(format(values.p50, decimals: 3))")
        }
        let rest = Percentiles(zip(totals, breakdown).map { $0 - $1.total })
        print("  \(pad("exit + reap", 24)) mean \(format(rest.mean, decimals: 3))  p50 \(format(rest.p50, decimals: 3))")
    }

    func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
