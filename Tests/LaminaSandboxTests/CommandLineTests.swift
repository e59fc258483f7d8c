#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

/// `lamina sandbox run` and `lamina sandbox gc` as a user runs them.
@Suite("lamina sandbox command", .serialized)
struct CommandLineTests {
    static let binary = ProcessInfo.processInfo.environment["LAMINA_BINARY"] ?? "\(repositoryRoot)/.build/debug/lamina"

    /// A state directory and cgroup parent of the test's own.
    struct Place {
        let stateDirectory = "/tmp/lamina-cli-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let cgroupParent = "lamina-cli-test-\(UInt32.random(in: 0...UInt32.max))"

        var options: [String] { ["--state-dir", stateDirectory, "--cgroup-parent", cgroupParent] }

        func run(_ arguments: [String]) -> ProcessResult {
            runProcess([CommandLineTests.binary] + arguments)
        }

        func leftovers() -> [String] {
            var found: [String] = []
            for controller in ["memory", "cpu", "cpuacct", "pids", "freezer", "unified"] {
                let path = "/sys/fs/cgroup/\(controller)/\(cgroupParent)"
                if FileManager.default.fileExists(atPath: path) { found.append(path) }
            }
            // sandboxes/mnt is the one shared (empty) mount point every sandbox uses; nothing else may remain.
            let sandboxes = stateDirectory + "/sandboxes"
            let entries = ((try? FileManager.default.contentsOfDirectory(atPath: sandboxes)) ?? []).filter { $0 != "mnt" }
            if !entries.isEmpty { found.append("\(sandboxes): \(entries)") }
            if let inside = try? FileManager.default.contentsOfDirectory(atPath: sandboxes + "/mnt"), !inside.isEmpty {
                found.append("\(sandboxes)/mnt: \(inside)")
            }
            let mounts = readKernelFile("/proc/self/mounts") ?? ""
            found += mounts.split(separator: "\n").filter { $0.contains(stateDirectory) }.map(String.init)
            return found
        }

        func remove() { try? FileManager.default.removeItem(atPath: stateDirectory) }
    }

    @Test func exitStatusOfTheCommandIsPassedThrough() {
        let place = Place()
        defer { place.remove() }
        let result = place.run(["sandbox", "run"] + place.options + ["--layer", TestLayers.busybox, "--", "/bin/sh", "-c", "echo out; echo err >&2; exit 7"])
        #expect(result.status == 7)
        #expect(result.stdout == "out\n")
        #expect(result.stderr == "err\n")
        #expect(place.leftovers().isEmpty)
    }

    @Test func laminaSandboxIsTheSameCommandOnItsOwn() {
        let place = Place()
        defer { place.remove() }
        let standalone = CommandLineTests.binary.replacingOccurrences(of: "/lamina", with: "/lamina-sandbox", options: .backwards)
        let result = runProcess([standalone, "run"] + place.options + ["--layer", TestLayers.busybox, "--", "/bin/sh", "-c", "echo standalone; exit 3"])
        #expect(result.status == 3)
        #expect(result.stdout == "standalone\n")
        let usage = runProcess([standalone, "run"] + place.options + ["--layer", TestLayers.busybox])
        #expect(usage.status == 2)
        #expect(usage.stderr.hasPrefix("lamina-sandbox: error: no command given"), "\(usage.stderr)")
        #expect(place.leftovers().isEmpty)
    }

    @Test func jsonReportsStatisticsAfterExit() throws {
        let place = Place()
        defer { place.remove() }
        let result = place.run(["sandbox", "run"] + place.options + ["--layer", TestLayers.busybox, "--memory", "256", "--json", "--", "/bin/probe", "alloc", "20"])
        #expect(result.status == 0)
        let line = try #require(result.stderr.split(separator: "\n").last)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect((report["peak_memory_bytes"] as? Int ?? 0) >= 20 * 1024 * 1024)
        #expect(report["oom_killed"] as? Bool == false)
        #expect(report["timed_out"] as? Bool == false)
        #expect(report["exit_status"] as? Int == 0)
        #expect(report["signal"] is NSNull)
        #expect((report["wall_ms"] as? Double ?? 0) > 0)
        #expect(report["cpu_ms"] is Double)
    }

    @Test func timeoutKillsAndIsReported() throws {
        let place = Place()
        defer { place.remove() }
        let result = place.run(["sandbox", "run"] + place.options + ["--layer", TestLayers.busybox, "--timeout", "0.5", "--json", "--", "/bin/sh", "-c", "sleep 60 & sleep 60"])
        #expect(result.status == 137)
        let line = try #require(result.stderr.split(separator: "\n").last)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(report["timed_out"] as? Bool == true)
        #expect(report["signal"] as? Int == 9)
        #expect(place.leftovers().isEmpty)
    }

    @Test func outOfMemoryIsReportedAsOOM() throws {
        let place = Place()
        defer { place.remove() }
        let result = place.run(["sandbox", "run"] + place.options + ["--layer", TestLayers.busybox, "--memory", "128", "--json", "--", "/bin/probe", "alloc", "400"])
        #expect(result.status == 137)
        let line = try #require(result.stderr.split(separator: "\n").last)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(report["oom_killed"] as? Bool == true)
        #expect(report["timed_out"] as? Bool == false)
    }

    @Test(arguments: [
        (["--layer", "/nonexistent/layer", "--", "/bin/true"], "layer directory `/nonexistent/layer` does not exist"),
        (["--layer", "LAYER", "--memory", "64", "--", "/bin/true"], "memory 64 MB is out of range"),
        (["--layer", "LAYER", "--memory", "20000", "--", "/bin/true"], "memory 20000 MB is out of range"),
        (["--layer", "LAYER"], "no command given"),
        (["--layer", "LAYER", "--no-such-option", "--", "/bin/true"], "no-such-option"),
        (["--layer", "LAYER", "--env", "NOEQUALS", "--", "/bin/true"], "KEY=VALUE"),
    ])
    func badInputGetsOneClearLineAndExitCode2(arguments: [String], message: String) {
        let place = Place()
        defer { place.remove() }
        let resolved = arguments.map { $0 == "LAYER" ? TestLayers.busybox : $0 }
        let result = place.run(["sandbox", "run"] + place.options + resolved)
        #expect(result.status == 2)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "stderr: \(result.stderr)")
        #expect(result.stderr.contains(message), "stderr: \(result.stderr)")
        #expect(place.leftovers().isEmpty)
    }

    @Test func missingProgramExits127() {
        let place = Place()
        defer { place.remove() }
        let result = place.run(["sandbox", "run"] + place.options + ["--layer", TestLayers.busybox, "--", "/no/such/program"])
        #expect(result.status == 127)
        #expect(result.stderr.contains("starting `/no/such/program`"))
        #expect(place.leftovers().isEmpty)
    }

    @Test func garbageCollectionAfterKillingTheHostRemovesEverything() async throws {
        let place = Place()
        defer { place.remove() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["sandbox", "run"] + place.options + ["--layer", TestLayers.busybox, "--", "/bin/sh", "-c", "setsid sleep 600 & sleep 600 & wait"]
        // A file, not a pipe: the sandbox inherits the host's stderr and outlives it.
        let errorPath = place.stateDirectory + ".stderr"
        _ = FileManager.default.createFile(atPath: errorPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: errorPath) }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: errorPath)
        try process.run()

        // Wait until the sandbox runs: its cgroup holds the shell and both sleeps.
        let freezer = "/sys/fs/cgroup/freezer/\(place.cgroupParent)"
        var sandboxProcesses: [pid_t] = []
        for _ in 0..<100 {
            try await Task.sleep(nanoseconds: 50_000_000)
            let cgroups = (try? FileManager.default.contentsOfDirectory(atPath: freezer)) ?? []
            if let name = cgroups.first(where: { $0.contains("-") && $0.contains("_") }),
               let procs = readKernelFile("\(freezer)/\(name)/cgroup.procs") {
                sandboxProcesses = procs.split(separator: "\n").compactMap { pid_t($0) }
                if sandboxProcesses.count >= 3 { break }
            }
        }
        #expect(sandboxProcesses.count >= 3, "running: \(process.isRunning), cgroups: \((try? FileManager.default.contentsOfDirectory(atPath: freezer)) ?? [])")

        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        if sandboxProcesses.count < 3 {
            Issue.record("host stderr: \(readKernelFile(errorPath) ?? "")")
        }
        #expect(!place.leftovers().isEmpty, "the killed host should have left its sandbox behind")

        let gc = place.run(["sandbox", "gc"] + place.options)
        #expect(gc.status == 0, "gc: \(gc.stderr)")
        #expect(gc.stdout.contains("removed cgroup"))
        #expect(gc.stdout.contains("killed process"))
        #expect(place.leftovers().isEmpty, "left: \(place.leftovers())")
        for pid in sandboxProcesses { #expect(await processEnds(pid), "process \(pid) survived gc") }

        let again = place.run(["sandbox", "gc"] + place.options)
        #expect(again.stdout == "nothing to remove\n")
    }

    @Test func garbageCollectionLeavesALiveHostAlone() async throws {
        let place = Place()
        defer { place.remove() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["sandbox", "run"] + place.options + ["--layer", TestLayers.busybox, "--", "/bin/sleep", "600"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        try await Task.sleep(nanoseconds: 500_000_000)
        let gc = place.run(["sandbox", "gc"] + place.options)
        #expect(gc.stdout == "nothing to remove\n")
        // The sandbox still runs; end it the way a user would.
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationStatus == 137)
        #expect(place.leftovers().isEmpty)
    }
}
