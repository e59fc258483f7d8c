import Foundation
import LaminaHost
import LaminaStore

extension ControlAPI {
    /// Lambda's payload limits (LAMBDA.md §3.6, §5.4).
    static let maxSyncPayload = 6_291_456
    static let maxAsyncPayload = 1_048_576

    func invoke(_ call: Call, name: String) async throws -> APIResponse {
        let reference = try self.reference(call, name)
        let type = call.header("X-Amz-Invocation-Type") ?? "RequestResponse"
        guard ["RequestResponse", "Event", "DryRun"].contains(type) else {
            throw APIError.validation(value: type, field: "invocationType", constraint: "Member must satisfy enum value set: [Event, RequestResponse, DryRun]")
        }
        let limit = type == "Event" ? Self.maxAsyncPayload : Self.maxSyncPayload
        guard call.body.count <= limit else {
            throw APIError.tooLarge("\(call.body.count) byte payload is too large for the \(type) invocation type (limit \(limit) bytes)")
        }
        let logType = call.header("X-Amz-Log-Type") ?? "None"
        guard ["None", "Tail"].contains(logType) else {
            throw APIError.validation(value: logType, field: "logType", constraint: "Member must satisfy enum value set: [Tail, None]")
        }
        var clientContext: String?
        if let encoded = call.header("X-Amz-Client-Context"), type != "Event" {
            guard encoded.utf8.count <= 3583, let data = Data(base64Encoded: encoded),
                  (try? JSONSerialization.jsonObject(with: data)) is [String: Any] else {
                throw APIError.invalidParameter("Client context must be a valid Base64-encoded JSON object of at most 3583 bytes.")
            }
            clientContext = String(decoding: data, as: UTF8.self)
        }
        let target: InvocationTarget
        do {
            target = try await resolver.resolve(accountId: call.accountId, region: call.region, name: reference.name, qualifier: reference.qualifier)
        } catch ResolveError.notFound(let message) {
            throw APIError.notFound(message)
        } catch {
            throw APIError.service("\(error)")
        }
        let invokedArn = ARN.function(call.region, call.accountId, reference.name, qualifier: reference.qualifier)

        switch type {
        case "DryRun":
            return APIResponse(status: 204, headers: [("X-Amz-Executed-Version", target.executedVersion)])
        case "Event":
            return try await enqueue(call, reference: reference)
        default:
            break
        }

        let started = Date()
        let result: InvocationResult
        do {
            result = try await invoker.invoke(target.definition, InvocationRequest(
                requestId: call.requestId, payload: Self.event(call.body), invokedFunctionArn: invokedArn, clientContext: clientContext,
                traceId: call.header("X-Amzn-Trace-Id"), tenantId: call.header("X-Amz-Tenant-Id")))
        } catch InvokeError.throttled(let reason) {
            metrics.throttled(function: reference.name)
            throw APIError.throttled(reason: reason)
        } catch InvokeError.invalidConfiguration(let message) {
            throw APIError(code: "InvalidRuntimeException", status: 502, message: message)
        } catch {
            throw APIError.service("\(error)")
        }
        metrics.invoked(function: reference.name, result: result, seconds: Date().timeIntervalSince(started))
        var headers: [(String, String)] = [
            ("Content-Type", result.contentType ?? "application/json"),
            ("X-Amz-Executed-Version", result.executedVersion),
        ]
        if let functionError = result.functionError { headers.append(("X-Amz-Function-Error", functionError)) }
        if logType == "Tail" { headers.append(("X-Amz-Log-Result", Data(result.logTail()).base64EncodedString())) }
        return APIResponse(status: 200, headers: headers, body: result.payload)
    }

    /// `Event`: durable before the 202 (the worker runs it at least once).
    private func enqueue(_ call: Call, reference: FunctionReference) async throws -> APIResponse {
        guard let worker = asyncWorker else { throw APIError.service("asynchronous invocation is not enabled on this host") }
        let event = QueuedEvent(accountId: call.accountId, functionName: reference.name, qualifier: reference.qualifier,
                                region: call.region, requestId: call.requestId, payload: Self.event(call.body), enqueuedAt: Date())
        _ = try await mapped { try await store.enqueue(event) }
        worker.wake()
        metrics.queued(function: reference.name)
        return APIResponse(status: 202)
    }

    /// An Invoke without a payload hands the function `{}`, as Lambda does.
    static func event(_ body: [UInt8]) -> [UInt8] { body.isEmpty ? Array("{}".utf8) : body }

    /// InvokeAsync (deprecated): an Event invocation answered with `{"Status": 202}`.
    func invokeAsyncLegacy(_ call: Call, name: String) async throws -> APIResponse {
        let reference = try self.reference(call, name)
        guard call.body.count <= 262_144 else {
            throw APIError.tooLarge("\(call.body.count) byte payload is too large for the Event invocation type (limit 262144 bytes)")
        }
        _ = try await requireFunction(call, reference)
        _ = try await enqueue(call, reference: reference)
        return .json(["Status": 202], status: 202)
    }
}
