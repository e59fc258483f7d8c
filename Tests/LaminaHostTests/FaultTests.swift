#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LaminaBilling
import LaminaHost
import Testing

/// Timeouts, out-of-memory kills and crashes: Lambda's exact errors, and nothing left behind.
@Suite("Faults", .serialized)
struct FaultTests {
    @Test func timeoutIsSandboxTimedoutAndKillsEveryProcess() async throws {
        let host = try TestInvoker()
        let result = try await host.invoke(try host.function(handler: "app.sleep", timeout: 1))
        let environments = host.invoker.environments.count
        await host.finish()
        #expect(result.functionError == "Unhandled")
        let document = json(result.payload)
        #expect(document["errorType"] as? String == "Sandbox.Timedout")
        let message = document["errorMessage"] as? String ?? ""
        #expect(message.hasPrefix("RequestId: \(result.requestId) Error: Task timed out after 1.0"), "\(message)")
        #expect(result.logLines.contains { $0.hasSuffix(" \(result.requestId) Task timed out after 1.00 seconds") || $0.contains("Task timed out after 1.0") })
        let report = try #require(result.logLines.last)
        #expect(report.hasSuffix("\tStatus: timeout\t"), "\(report)")
        #expect(milliseconds(reportFields(report)["Duration"]) >= 1000)
        #expect(host.meters.records.first?.outcome == .timeout)
        #expect(environments == 0, "a timed-out environment is destroyed")
    }

    @Test func timeoutOfAHandlerWithBackgroundChildrenKillsThemToo() async throws {
        let host = try TestInvoker()
        let function = try host.function(handler: "app.children", timeout: 2)
        let before = Set(shell(["/usr/bin/pgrep", "-x", "sleep"]).output.split(separator: "\n"))
        let result = try await host.invoke(function)
        #expect(json(result.payload)["errorType"] as? String == "Sandbox.Timedout")
        // Give the kernel a moment to reap, then no sleep of ours may remain.
        try await Task.sleep(nanoseconds: 300_000_000)
        let after = Set(shell(["/usr/bin/pgrep", "-x", "sleep"]).output.split(separator: "\n"))
        let survivors = after.subtracting(before).filter { pid in
            (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8))?.contains("\t297000\t") == true
        }
        await host.finish()
        #expect(survivors.isEmpty, "background children survived the timeout: \(survivors)")
    }

    @Test func outOfMemoryIsRuntimeOutOfMemory() async throws {
        let host = try TestInvoker()
        let result = try await host.invoke(try host.function(handler: "app.oom", memoryMB: 128, timeout: 60))
        await host.finish()
        #expect(result.functionError == "Unhandled")
        let document = json(result.payload)
        #expect(document["errorType"] as? String == "Runtime.OutOfMemory")
        #expect(document["errorMessage"] as? String == "RequestId: \(result.requestId) Error: Runtime exited with error: signal: killed")
        let report = try #require(result.logLines.last)
        #expect(report.contains("\tStatus: error\tError Type: Runtime.OutOfMemory\t"), "\(report)")
        #expect(result.meter.outcome == .outOfMemory)
        #expect(result.meter.maxMemoryUsedMB >= 120)
    }

    @Test func runtimeExitingMidInvocationIsRuntimeExitError() async throws {
        let host = try TestInvoker()
        let function = try host.function(handler: "app.exit")
        let result = try await host.invoke(function, #"{"code": 7}"#)
        let next = try await host.invoke(try host.function(handler: "app.handler"))
        await host.finish()
        #expect(result.functionError == "Unhandled")
        #expect(text(result.payload) == #"{"errorMessage":"RequestId: \#(result.requestId) Error: Runtime exited with error: exit status 7","errorType":"Runtime.ExitError"}"#)
        #expect(result.logLines.contains("Runtime.ExitError"))
        #expect(result.meter.outcome == .runtimeExit)
        #expect(next.functionError == nil)
    }

    @Test func slowInitIsRetriedWithinTheInvocation() async throws {
        let host = try TestInvoker { $0.initTimeoutSeconds = 1 }
        // Init sleeps 3 s: over the 1 s init limit, under the 10 s function timeout.
        let result = try await host.invoke(try host.function(code: "python-slow-init", timeout: 10))
        await host.finish()
        #expect(text(result.payload) == "\"initialized\"")
        let messages = host.logs.messages(group: "/aws/lambda/fn")
        #expect(messages.contains { $0.hasPrefix("INIT_REPORT Init Duration: ") && $0.hasSuffix("\tPhase: init\tStatus: timeout") })
    }

    @Test func initThatNeverFinishesTimesOut() async throws {
        let host = try TestInvoker { $0.initTimeoutSeconds = 1 }
        let result = try await host.invoke(try host.function(code: "python-slow-init", timeout: 1))
        await host.finish()
        #expect(json(result.payload)["errorType"] as? String == "Sandbox.Timedout")
        #expect(host.logs.messages(group: "/aws/lambda/fn").contains { $0.hasSuffix("\tPhase: invoke\tStatus: timeout") })
    }
}
