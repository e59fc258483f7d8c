#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Dispatch
import Foundation
import LaminaSandbox
import Testing

/// Where the repository is, from this file's path.
let repositoryRoot: String = {
    var path = #filePath
    for _ in 0..<3 { path = (path as NSString).deletingLastPathComponent }
    return path
}()

/// The small layers of scripts/build-test-layers (busybox + probe, host python), built once per run.
enum TestLayers {
    static let directory: String = {
        if let preset = ProcessInfo.processInfo.environment["LAMINA_TEST_LAYERS"] { return preset }
        let result = runProcess(["\(repositoryRoot)/scripts/build-test-layers"])
        precondition(result.status == 0, "scripts/build-test-layers failed: \(result.stderr)")
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines).components(separatedBy: "\n").last!
    }()

    static var busybox: String { directory + "/busybox" }
    static var python: String { directory + "/python" }
}

/// The result of running a command in a sandbox to completion.
struct SandboxRun {
    var status: TerminationStatus
    var stdout: String
    var stderr: String
    var statistics: CgroupStatistics?
}

/// One test's own sandbox host: its own state directory and cgroup subtree, removed afterwards.
final class TestHost {
    let stateDirectory: String
    let cgroupParent: String
    let host: SandboxHost

    init(backend: ((String) -> any CgroupBackend)? = nil) throws {
        let unique = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        stateDirectory = "/tmp/lamina-test-\(unique)"
        cgroupParent = "lamina-test-\(unique)"
        host = try SandboxHost(configuration: SandboxHostConfiguration(
            stateDirectory: stateDirectory, cgroupParent: cgroupParent, cgroupBackend: backend?(cgroupParent)))
    }

    func spec(_ command: [String], layers: [String] = [TestLayers.busybox], memoryMB: Int = 256, cpus: Double? = 1,
              pids: Int = 1024, tmpMB: Int = 64) -> SandboxSpec {
        SandboxSpec(command: command, root: RootFilesystem(layers: layers),
                    limits: ResourceLimits(memoryMB: memoryMB, cpus: cpus, pids: pids, tmpMB: tmpMB),
                    user: SandboxUser(uid: 299_000, gid: 299_000))
    }

    /// Runs to completion, capturing stdout and stderr.
    func run(_ spec: SandboxSpec, timeout: Double = 30) async throws -> SandboxRun {
        let out = try Pipe2(), err = try Pipe2()
        var spec = spec
        let devNull = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(devNull) }
        spec.stdio = .fds(stdin: devNull, stdout: out.write, stderr: err.write)
        let sandbox = try host.spawn(spec)
        out.closeWrite()
        err.closeWrite()
        async let stdout = out.readAll()
        async let stderr = err.readAll()
        let killer = Task {
            try await Task.sleep(nanoseconds: UInt64(timeout * 1e9))
            sandbox.kill()
        }
        let status = await sandbox.wait()
        killer.cancel()
        let statistics = try? sandbox.statistics()
        try await sandbox.destroy()
        return SandboxRun(status: status, stdout: await stdout, stderr: await stderr, statistics: statistics)
    }

    /// Removes everything and checks that nothing of this test is left on the host.
    func finish() async {
        await host.shutdown()
        let leftovers = leftoverCgroups()
        #expect(leftovers.isEmpty, "cgroups left behind: \(leftovers)")
        try? FileManager.default.removeItem(atPath: stateDirectory)
    }

    func leftoverCgroups() -> [String] {
        let roots = ["memory", "cpu", "cpuacct", "pids", "freezer", "unified"].map { "/sys/fs/cgroup/\($0)/\(cgroupParent)" }
        return roots.filter { FileManager.default.fileExists(atPath: $0) }
    }
}

/// A pipe whose read end is drained off the cooperative thread pool.
final class Pipe2: @unchecked Sendable {
    let read: Int32
    private(set) var write: Int32

    init() throws {
        var fds: [Int32] = [-1, -1]
        guard lamina_pipe_cloexec(&fds) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno)!) }
        read = fds[0]
        write = fds[1]
    }

    func closeWrite() {
        if write >= 0 { close(write) }
        write = -1
    }

    func readAll() async -> String {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                var data = [UInt8]()
                var buffer = [UInt8](repeating: 0, count: 65536)
                while true {
                    let n = buffer.withUnsafeMutableBytes { Glibc.read(self.read, $0.baseAddress, $0.count) }
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { break }
                    data.append(contentsOf: buffer[0..<n])
                }
                close(self.read)
                continuation.resume(returning: String(decoding: data, as: UTF8.self))
            }
        }
    }
}

struct ProcessResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs a host program to completion (for the CLI tests and fixtures).
@discardableResult
func runProcess(_ arguments: [String], environment: [String: String]? = nil) -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: arguments[0])
    process.arguments = Array(arguments.dropFirst())
    if let environment { process.environment = environment }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    do { try process.run() } catch { return ProcessResult(status: -1, stdout: "", stderr: "\(error)") }
    let stdoutData = out.fileHandleForReading.readDataToEndOfFile()
    let stderrData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return ProcessResult(status: process.terminationStatus, stdout: String(decoding: stdoutData, as: UTF8.self),
                         stderr: String(decoding: stderrData, as: UTF8.self))
}

/// Lines of `probe` output as [check: result].
func probeResults(_ output: String) -> [String: String] {
    var results: [String: String] = [:]
    for line in output.split(separator: "\n") {
        let parts = line.split(separator: " ", maxSplits: 1)
        if parts.count == 2 { results[String(parts[0])] = String(parts[1]) }
    }
    return results
}

/// Whether a process is gone (or a zombie waiting for its reaper) within two seconds.
func processEnds(_ pid: pid_t) async -> Bool {
    for _ in 0..<200 {
        guard let stat = readKernelFile("/proc/\(pid)/stat"), !stat.isEmpty else { return true }
        if let close = stat.lastIndex(of: ")"), stat[stat.index(close, offsetBy: 2)] == "Z" { return true }
        try? await Task.sleep(nanoseconds: 10_000_000)
    }
    return false
}

/// Reads a kernel file (cgroupfs, procfs) to its end; their sizes are reported as 0, so whole-file
/// helpers that trust the size are unreliable here.
func readKernelFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var data = [UInt8]()
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        data.append(contentsOf: buffer[0..<n])
    }
    return String(decoding: data, as: UTF8.self)
}
