#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LaminaBilling
import LaminaHost
import Testing

/// Concurrency, throttling, freezing and idle reaping.
@Suite("Scaling and lifecycle", .serialized)
struct ScalingTests {
    @Test func concurrentInvocationsGetTheirOwnEnvironments() async throws {
        let host = try TestInvoker()
        let function = try host.function(runtime: "provided", handler: "echo", code: cBootstrapDirectory, memoryMB: 256)
        let slow = try host.function("slow", handler: "app.handler", memoryMB: 512)
        let results = try await withThrowingTaskGroup(of: InvocationResult.self) { group in
            for index in 0..<3 { group.addTask { try await host.invoke(slow, #"{"sleep": 0.7, "i": \#(index)}"#) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        _ = function
        await host.finish()
        #expect(Set(results.map(\.environmentId)).count == 3)
        #expect(results.allSatisfy { $0.functionError == nil && $0.coldStart })
    }

    @Test func reservedConcurrencyThrottlesTheInvocationOverIt() async throws {
        let host = try TestInvoker()
        let function = try host.function(concurrency: ConcurrencyLimits(reserved: 1))
        async let long = host.invoke(function, #"{"sleep": 1.0}"#)
        try await Task.sleep(nanoseconds: 400_000_000)
        await #expect(throws: InvokeError.throttled(reason: "ReservedFunctionConcurrentInvocationLimitExceeded")) {
            try await host.invoke(function)
        }
        let first = try await long
        let after = try await host.invoke(function)
        await host.finish()
        #expect(first.functionError == nil)
        #expect(after.functionError == nil && !after.coldStart)
        #expect(host.meters.records.count == 2, "a throttled request is not metered")
    }

    @Test func zeroReservedConcurrencyThrottlesEverything() async throws {
        let host = try TestInvoker()
        let function = try host.function(concurrency: ConcurrencyLimits(reserved: 0))
        await #expect(throws: InvokeError.throttled(reason: "ReservedFunctionConcurrentInvocationLimitExceeded")) {
            try await host.invoke(function)
        }
        await host.finish()
    }

    @Test func accountLimitThrottlesAcrossFunctions() async throws {
        let host = try TestInvoker()
        let limits = ConcurrencyLimits(account: 1)
        let a = try host.function("a", concurrency: limits), b = try host.function("b", concurrency: limits)
        async let long = host.invoke(a, #"{"sleep": 1.0}"#)
        try await Task.sleep(nanoseconds: 400_000_000)
        await #expect(throws: InvokeError.throttled(reason: "ConcurrentInvocationLimitExceeded")) {
            try await host.invoke(b)
        }
        _ = try await long
        await host.finish()
    }

    @Test func frozenEnvironmentUsesNoCPUBetweenInvocations() async throws {
        let host = try TestInvoker()
        let function = try host.function(handler: "app.spin_in_background", memoryMB: 1024)
        _ = try await host.invoke(function)
        let environment = try #require(host.invoker.environments.first)
        // The runtime returns to /next, then the environment is frozen.
        for _ in 0..<100 where !environment.isFrozen { try await Task.sleep(nanoseconds: 10_000_000) }
        #expect(environment.isFrozen)
        let before = try environment.cpuTimeNanoseconds()
        try await Task.sleep(nanoseconds: 500_000_000)
        let after = try environment.cpuTimeNanoseconds()
        #expect(before == after, "a frozen environment burned \(after - before) ns of CPU")
        // Thawed for the next invocation, it runs again (and its spinning thread with it).
        let second = try await host.invoke(function)
        #expect(!second.coldStart)
        await host.finish()
    }

    @Test func idleEnvironmentsAreReaped() async throws {
        let host = try TestInvoker { $0.idleTimeoutSeconds = 0.5 }
        let function = try host.function(runtime: "provided", handler: "echo", code: cBootstrapDirectory, memoryMB: 128)
        _ = try await host.invoke(function)
        #expect(host.invoker.environments.count == 1)
        for _ in 0..<40 where !host.invoker.environments.isEmpty { try await Task.sleep(nanoseconds: 100_000_000) }
        #expect(host.invoker.environments.isEmpty)
        let again = try await host.invoke(function)
        #expect(again.coldStart)
        await host.finish()
    }

    @Test func capacityEvictsTheLeastRecentlyUsedIdleEnvironment() async throws {
        let host = try TestInvoker { $0.capacityMB = 256 }
        let a = try host.function("a", runtime: "provided", handler: "echo", code: cBootstrapDirectory, memoryMB: 128)
        let b = try host.function("b", runtime: "provided", handler: "echo", code: cBootstrapDirectory, memoryMB: 128)
        let c = try host.function("c", runtime: "provided", handler: "echo", code: cBootstrapDirectory, memoryMB: 128)
        let first = try await host.invoke(a)
        _ = try await host.invoke(b)
        _ = try await host.invoke(c) // a is the least recently used: evicted
        let ids = Set(host.invoker.environments.map(\.id))
        await host.finish()
        #expect(ids.count == 2)
        #expect(!ids.contains(first.environmentId))
    }
}
