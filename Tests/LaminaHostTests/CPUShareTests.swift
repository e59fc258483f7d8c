#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LaminaHost
import Testing

/// CPU follows memory (1,769 MB = one vCPU), except during init, which runs with more, as on Lambda.
@Suite("CPU share")
struct CPUShareTests {
    @Test func initRunsWithTheBoostAndTheHandlerWithItsOwnShare() async throws {
        let host = try TestInvoker()
        let function = try host.function(code: "python-gated-init", memoryMB: 128)
        let (result, duringInit, afterInit) = try await Self.cpuLimits(of: function, on: host)
        await host.finish()

        #expect(text(result.payload) == #""initialized""#)
        #expect(duringInit == 2.0, "init's CPU share: \(String(describing: duringInit))")
        // 128 MB / 1769 MB per vCPU of a 100 ms period: 7236 µs.
        #expect(afterInit == 0.07236, "the handler's CPU share: \(String(describing: afterInit))")
    }

    @Test func withoutTheBoostInitRunsWithTheFunctionsShare() async throws {
        let host = try TestInvoker { $0.initCPUs = nil }
        let function = try host.function(code: "python-gated-init", memoryMB: 128)
        let (_, duringInit, afterInit) = try await Self.cpuLimits(of: function, on: host)
        await host.finish()
        #expect(duringInit == 0.07236 && afterInit == 0.07236, "\(String(describing: duringInit)) then \(String(describing: afterInit))")
    }

    /// Invokes a python-gated-init function and reads its environment's CPU share during init and
    /// after. The init waits for /tmp/go, so whatever is read before creating it is the init phase.
    static func cpuLimits(of function: FunctionDefinition, on host: TestInvoker) async throws -> (InvocationResult, Double?, Double?) {
        let invocation = Task { try await host.invoke(function) }
        var environment = host.invoker.environments.first
        while environment == nil {
            try await Task.sleep(nanoseconds: 5_000_000)
            environment = host.invoker.environments.first
        }
        let initializing = try #require(environment)
        let duringInit = try initializing.cpuLimit()
        // Through the sandbox's own root: its /tmp is a tmpfs only its mount namespace sees.
        #expect(FileManager.default.createFile(atPath: "/proc/\(initializing.pid)/root/tmp/go", contents: Data()))
        let result = try await invocation.value
        return (result, duringInit, try initializing.cpuLimit())
    }
}
