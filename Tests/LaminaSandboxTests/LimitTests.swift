#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LaminaSandbox
import Testing

/// Memory, processes, time and the freezer: each limit holds and is reported for what it is.
@Suite("Limits", .serialized)
struct LimitTests {
    @Test func allocatingPastTheMemoryLimitIsAnOOMKillNotACrash() async throws {
        let host = try TestHost()
        let run = try await host.run(host.spec(["/bin/probe", "alloc", "400"], memoryMB: 128))
        await host.finish()
        #expect(run.status == TerminationStatus(signal: SIGKILL))
        let statistics = try #require(run.statistics)
        #expect(statistics.oomKills >= 1)
        #expect(statistics.peakMemoryBytes <= 128 * 1024 * 1024)
        #expect(statistics.peakMemoryBytes > 100 * 1024 * 1024)
    }

    @Test func memoryWithinTheLimitIsNotAnOOM() async throws {
        let host = try TestHost()
        let run = try await host.run(host.spec(["/bin/probe", "alloc", "32"], memoryMB: 128))
        await host.finish()
        #expect(run.status == TerminationStatus(code: 0))
        #expect(run.statistics?.oomKills == 0)
        #expect((run.statistics?.peakMemoryBytes ?? 0) >= 32 * 1024 * 1024)
    }

    @Test func forkBombStopsAtThePidsLimit() async throws {
        let host = try TestHost()
        let run = try await host.run(host.spec(["/bin/probe", "forkbomb"], pids: 50))
        await host.finish()
        // pid 1 itself counts: 49 children, then EAGAIN; the host never saw more than the limit.
        #expect(run.stdout == "forks 49 stopped EAGAIN\n")
    }

    @Test func commandPastItsTimeoutIsKilledWithAllDescendants() async throws {
        let host = try TestHost()
        var spec = host.spec(["/bin/sh", "-c", "sleep 300 & setsid sh -c 'sleep 300 & sleep 300' & (sleep 300 &) ; sleep 300"])
        let devNull = open("/dev/null", O_RDWR)
        defer { close(devNull) }
        spec.stdio = .fds(stdin: devNull, stdout: devNull, stderr: devNull)
        let sandbox = try host.host.spawn(spec)
        try await Task.sleep(nanoseconds: 300_000_000)
        let before = try sandbox.cgroup.processes()
        #expect(before.count >= 5, "processes: \(before)")
        sandbox.kill()
        let status = await sandbox.wait()
        #expect(status == TerminationStatus(signal: SIGKILL))
        #expect(try sandbox.cgroup.processes().isEmpty)
        for pid in before { #expect(await processEnds(pid), "pid \(pid) survived") }
        try await sandbox.destroy()
        await host.finish()
    }

    @Test func frozenSandboxAccruesNoCPUTimeAndResumesOnThaw() async throws {
        let host = try TestHost()
        var spec = host.spec(["/bin/probe", "spin"], cpus: 0.5)
        spec.stdio = .null
        let sandbox = try host.host.spawn(spec)
        try await Task.sleep(nanoseconds: 200_000_000)
        try sandbox.freeze()
        let frozenAt = try sandbox.statistics().cpuTimeNanoseconds
        try await Task.sleep(nanoseconds: 500_000_000)
        let stillFrozen = try sandbox.statistics().cpuTimeNanoseconds
        try sandbox.thaw()
        try await Task.sleep(nanoseconds: 300_000_000)
        let thawed = try sandbox.statistics().cpuTimeNanoseconds
        try await sandbox.destroy()
        await host.finish()
        #expect(frozenAt > 0)
        #expect(stillFrozen == frozenAt)
        #expect(thawed > stillFrozen + 50_000_000, "only \(thawed - stillFrozen) ns after thaw")
    }

    @Test func cpuQuotaFollowsTheCPUShare() async throws {
        let host = try TestHost()
        var spec = host.spec(["/bin/probe", "spin"], cpus: 0.25)
        spec.stdio = .null
        let sandbox = try host.host.spawn(spec)
        try await Task.sleep(nanoseconds: 1_000_000_000)
        let used = try sandbox.statistics().cpuTimeNanoseconds
        try await sandbox.destroy()
        await host.finish()
        // A quarter of a CPU for a second is ~250 ms; allow for scheduling slack, never a full CPU.
        #expect(used < 450_000_000, "used \(used / 1_000_000) ms of CPU in 1 s at 0.25 CPU")
        #expect(used > 100_000_000)
    }

    @Test func peakMemoryResetsBetweenMeasurements() async throws {
        let host = try TestHost()
        var spec = host.spec(["/bin/sh", "-c", "/bin/probe alloc 48; sleep 300"], memoryMB: 256)
        spec.stdio = .null
        let sandbox = try host.host.spawn(spec)
        // Wait for the allocation to finish (the probe exits, the shell sleeps).
        var peak: Int64 = 0
        for _ in 0..<100 {
            try await Task.sleep(nanoseconds: 50_000_000)
            peak = try sandbox.statistics().peakMemoryBytes
            if peak > 48 * 1024 * 1024, try sandbox.cgroup.processes().count == 2 { break }
        }
        try await Task.sleep(nanoseconds: 100_000_000)
        try sandbox.resetPeakMemory()
        let afterReset = try sandbox.statistics().peakMemoryBytes
        try await sandbox.destroy()
        await host.finish()
        #expect(peak > 48 * 1024 * 1024)
        #expect(afterReset < peak / 2, "peak after reset \(afterReset), before \(peak)")
    }
}
