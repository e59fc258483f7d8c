#if canImport(Glibc)
import Glibc
#endif
import Foundation
@testable import LaminaSandbox
import Testing

/// The host's cgroup2 mount, if it has one with v2's core interface files.
let unifiedCgroupMount: String? = {
    guard let layout = try? CgroupLayout.probe(), let mount = layout.unifiedMount,
          FileManager.default.fileExists(atPath: mount + "/cgroup.procs")
    else { return nil }
    return mount
}()

/// The cgroup v2 backend, driven for real as far as this host allows.
///
/// On a hybrid host (v1 controllers plus a cgroup2 mount without controllers, like this development
/// machine) the unified hierarchy still offers v2's core: cgroup.procs, cgroup.freeze,
/// cgroup.events, cgroup.kill and cpu.stat. These tests run sandboxes whose cgroup lives there.
/// memory.max, memory.peak, cpu.max and pids.max need their controllers and are not exercised here.
@Suite("cgroup v2 backend", .serialized, .enabled(if: unifiedCgroupMount != nil))
struct CgroupV2Tests {
    static func makeHost() throws -> TestHost {
        let layout = try CgroupLayout.probe()
        return try TestHost(backend: { parent in
            CgroupV2Backend(mount: unifiedCgroupMount!, parent: parent, controllers: layout.unifiedControllers)
        })
    }

    @Test func sandboxJoinsItsV2CgroupAndSeesItAsTheRoot() async throws {
        let host = try Self.makeHost()
        #expect(host.host.cgroups.version == 2)
        let run = try await host.run(host.spec(["/bin/cat", "/proc/self/cgroup"]))
        await host.finish()
        // The cgroup namespace makes the sandbox's own cgroup its "/".
        #expect(run.stdout.split(separator: "\n").contains("0::/"), "\(run.stdout)")
    }

    @Test func freezeStopsCPUAndThawResumesIt() async throws {
        let host = try Self.makeHost()
        var spec = host.spec(["/bin/probe", "spin"])
        spec.stdio = .null
        let sandbox = try host.host.spawn(spec)
        try await Task.sleep(nanoseconds: 200_000_000)
        try sandbox.freeze()
        let frozen = try sandbox.statistics().cpuTimeNanoseconds
        try await Task.sleep(nanoseconds: 400_000_000)
        let later = try sandbox.statistics().cpuTimeNanoseconds
        try sandbox.thaw()
        try await Task.sleep(nanoseconds: 200_000_000)
        let thawed = try sandbox.statistics().cpuTimeNanoseconds
        try await sandbox.destroy()
        await host.finish()
        #expect(frozen > 0)
        #expect(later == frozen)
        #expect(thawed > later)
    }

    @Test func cgroupKillEndsDoubleForkedAndSetsidProcesses() async throws {
        let host = try Self.makeHost()
        var spec = host.spec(["/bin/sh", "-c", "(setsid sleep 300 &) ; (sleep 300 &) ; sleep 300"])
        spec.stdio = .null
        let sandbox = try host.host.spawn(spec)
        try await Task.sleep(nanoseconds: 300_000_000)
        let processes = try sandbox.cgroup.processes()
        #expect(processes.count >= 3)
        #expect(try sandbox.cgroup.killAll(timeoutMilliseconds: 2000))
        #expect(try sandbox.cgroup.processes().isEmpty)
        #expect(await sandbox.wait() == TerminationStatus(signal: SIGKILL))
        try await sandbox.destroy()
        await host.finish()
    }

    @Test func cpuShareIsReadBackOrAbsentWithoutTheCPUController() async throws {
        let host = try Self.makeHost()
        var spec = host.spec(["/bin/sleep", "5"])
        spec.stdio = .null
        let sandbox = try host.host.spawn(spec)
        let hasCPUController = FileManager.default.fileExists(atPath: "\(unifiedCgroupMount!)/\(host.host.cgroups.parent)/\(sandbox.cgroup.name)/cpu.max")
        let initial = try sandbox.cgroup.cpuLimit()
        try sandbox.cgroup.limitCPU(0.5)
        let lowered = try sandbox.cgroup.cpuLimit()
        sandbox.kill()
        try await sandbox.destroy()
        await host.finish()
        if hasCPUController {
            #expect(initial == spec.limits.initialCPUs)
            #expect(lowered == 0.5)
        } else {
            // This host's unified hierarchy delegates no cpu controller: nothing to set, nothing to read.
            #expect(initial == nil && lowered == nil)
        }
    }
}

/// cpu.max and cpu.cfs_quota_us as the kernel prints them.
@Suite("CPU share parsing")
struct CPUShareParsingTests {
    @Test func quotaOverPeriodOrUnlimited() {
        #expect(cpuShare(quota: "7236", period: "100000") == 0.07236)
        #expect(cpuShare(quota: "200000", period: "100000") == 2)
        #expect(cpuShare(quota: "max", period: "100000") == nil)
        #expect(cpuShare(quota: "-1", period: "100000") == nil)
    }
}
