#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LaminaBilling
import LaminaHost
import Testing

/// Invocations through the official awslambdaric and a shell+curl custom runtime, for real.
@Suite("Invocations", .serialized)
struct InvocationTests {
    @Test func pythonColdThenWarmReusesTheEnvironment() async throws {
        let host = try TestInvoker()
        let function = try host.function(environment: ["GREETING": "hello"])
        let first = try await host.invoke(function, #"{"n": 1}"#)
        let second = try await host.invoke(function, #"{"n": 2}"#)
        await host.finish()

        #expect(first.functionError == nil && second.functionError == nil)
        let one = json(first.payload), two = json(second.payload)
        #expect(one["count"] as? Int == 1)
        #expect(two["count"] as? Int == 2, "the module-level counter survives: the environment was reused")
        #expect((two["event"] as? [String: Any])?["n"] as? Int == 2)
        #expect(first.coldStart && !second.coldStart)
        #expect(first.environmentId == second.environmentId)
        let env = try #require(one["env"] as? [String: Any])
        #expect(env["GREETING"] as? String == "hello")
        #expect(env["AWS_EXECUTION_ENV"] as? String == "AWS_Lambda_python3.11")
        #expect(env["AWS_LAMBDA_RUNTIME_API"] as? String == "127.0.0.1:9001")
        #expect((env["_X_AMZN_TRACE_ID"] as? String)?.hasPrefix("Root=1-") == true)
        #expect(one["invoked_function_arn"] as? String == function.functionArn)
        #expect((one["remaining_ms"] as? Int ?? 0) > 8000)
        #expect((one["uid"] as? Int) == 297_000)

        // Init Duration only on the cold start's REPORT.
        let firstReport = try #require(first.logLines.last)
        let secondReport = try #require(second.logLines.last)
        #expect(firstReport.contains("\tInit Duration: "))
        #expect(!secondReport.contains("Init Duration"))
        // The runtime's own output sits between START and END.
        #expect(first.logLines.first?.hasPrefix("START RequestId: \(first.requestId) Version: $LATEST") == true)
        #expect(first.logLines.contains("handling \(first.requestId) #1"))
        #expect(first.logLines.contains("to stderr"))
        #expect(first.logLines[first.logLines.count - 2] == "END RequestId: \(first.requestId)")
        #expect(host.meters.records.count == 2)
    }

    @Test func shellBootstrapColdThenWarm() async throws {
        let host = try TestInvoker()
        let function = try host.function(runtime: "provided.al2023", handler: "echo", code: "shell", memoryMB: 512)
        let first = try await host.invoke(function, #"{"a":1}"#)
        let second = try await host.invoke(function, #"{"a":2}"#)
        await host.finish()
        #expect(text(first.payload) == #"{"count":1,"event":{"a":1}}"#)
        #expect(text(second.payload) == #"{"count":2,"event":{"a":2}}"#)
        #expect(first.coldStart && !second.coldStart)
        #expect(first.logLines.contains("invocation 1: \(first.requestId)"))
        #expect(host.logs.messages(group: "/aws/lambda/fn").contains("shell runtime starting, handler echo"))
    }

    @Test func handlerErrorIsUnhandledWithTheRuntimesDocumentAndKeepsTheEnvironment() async throws {
        let host = try TestInvoker()
        let failing = try host.function(handler: "app.fail")
        let result = try await host.invoke(failing)
        let again = try await host.invoke(failing)
        await host.finish()
        #expect(result.functionError == "Unhandled")
        let document = json(result.payload)
        #expect(document["errorType"] as? String == "Exception")
        #expect(document["errorMessage"] as? String == "Handler fails")
        #expect(document["requestId"] as? String == result.requestId)
        #expect((document["stackTrace"] as? [String])?.isEmpty == false)
        #expect(!again.coldStart, "a handler error does not cost the environment")
        #expect(host.meters.records.map(\.outcome) == [.functionError, .functionError])
        #expect(result.logLines.contains { $0.hasPrefix("[ERROR] Exception: Handler fails") })
    }

    @Test func initErrorIsReportedAsLambdaDoes() async throws {
        let host = try TestInvoker()
        let result = try await host.invoke(try host.function(code: "python-broken"))
        await host.finish()
        #expect(result.functionError == "Unhandled")
        let document = json(result.payload)
        #expect(document["errorType"] as? String == "Runtime.ImportModuleError")
        #expect(document["errorMessage"] as? String == "Unable to import module 'app': No module named 'module_that_does_not_exist'")
        #expect(document["requestId"] as? String == "")
        let messages = host.logs.messages(group: "/aws/lambda/fn")
        #expect(messages.contains { $0.hasPrefix("INIT_REPORT Init Duration: ") && $0.hasSuffix("\tPhase: init\tStatus: error\tError Type: Runtime.ImportModuleError") })
        let report = try #require(result.logLines.last)
        #expect(report.contains("\tStatus: error\tError Type: Runtime.ImportModuleError\t"))
        #expect(host.meters.records.first?.outcome == .initError)
        #expect(host.invoker.environments.isEmpty)
    }

    @Test func customRuntimeWithoutBootstrapIsAnInvalidEntrypoint() async throws {
        let host = try TestInvoker()
        let result = try await host.invoke(try host.function(runtime: "provided", code: "python"))
        await host.finish()
        #expect(result.functionError == "Unhandled")
        #expect(json(result.payload)["errorType"] as? String == "Runtime.InvalidEntrypoint")
        #expect((json(result.payload)["errorMessage"] as? String)?.contains("Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]") == true)
    }

    @Test func reportAgreesWithTheMeterRecordAndTheHandlersOwnClock() async throws {
        let host = try TestInvoker()
        let function = try host.function()
        let cold = try await host.invoke(function, #"{"sleep": 0.25}"#)
        let warm = try await host.invoke(function, #"{"sleep": 0.05}"#)
        await host.finish()
        for (result, sleep) in [(cold, 250.0), (warm, 50.0)] {
            let fields = reportFields(try #require(result.logLines.last))
            let duration = milliseconds(fields["Duration"])
            let billed = milliseconds(fields["Billed Duration"])
            let handlerMs = json(result.payload)["handler_ms"] as? Double ?? 0
            #expect(handlerMs >= sleep)
            #expect(duration >= handlerMs, "REPORT Duration \(duration) ms < the handler's own \(handlerMs) ms")
            let initMs = result.coldStart ? milliseconds(fields["Init Duration"]) : 0
            #expect(billed == (Double(result.meter.durationMicros + (result.coldStart ? result.meter.initMicros : 0)) / 1000).rounded(.up))
            #expect(abs(duration - Double(result.meter.durationMicros) / 1000) < 0.01)
            #expect(billed >= (duration + initMs).rounded(.down))
            #expect(fields["Memory Size"] == "1024 MB")
            #expect(Int(fields["Max Memory Used"]?.split(separator: " ").first ?? "") == result.meter.maxMemoryUsedMB)
            #expect(result.meter.maxMemoryUsedMB > 0)
            #expect(result.meter.cpuMicros > 0)
            #expect(result.meter.billedMs == Int64(billed))
        }
        #expect(cold.meter.initMicros > 0 && cold.meter.initBilled)
        #expect(warm.meter.initMicros == 0 && !warm.meter.initBilled)
    }

    @Test func oversizedResponseIsFunctionResponseSizeTooLarge() async throws {
        let host = try TestInvoker()
        let result = try await host.invoke(try host.function(handler: "app.big"))
        await host.finish()
        #expect(result.functionError == "Unhandled")
        #expect(text(result.payload) == #"{"errorMessage":"Response payload size exceeded maximum allowed payload size (6291556 bytes).","errorType":"Function.ResponseSizeTooLarge"}"#)
    }

    @Test func logStreamIsNamedAsOnLambda() async throws {
        let host = try TestInvoker()
        let result = try await host.invoke(try host.function())
        await host.finish()
        let stream = (json(result.payload)["log_stream"] as? String) ?? ""
        #expect(stream.range(of: #"^\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}$"#, options: .regularExpression) != nil, "\(stream)")
        #expect(host.logs.streams(group: "/aws/lambda/fn") == [stream])
    }
}
