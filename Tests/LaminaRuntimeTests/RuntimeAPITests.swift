#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LaminaRuntime
import NIOCore
import NIOPosix
import Testing

/// A raw HTTP/1.1 exchange with the Runtime API, as a runtime would do it.
struct HTTPReply {
    var status: Int
    var headers: [String: String]
    var body: String
}

/// A Runtime API served on a host loopback socket (the sandbox is not needed to test the protocol).
final class RuntimeAPIHarness: @unchecked Sendable {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let server: RuntimeAPIServer
    let port: UInt16

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        listen(fd, 16)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        port = UInt16(bigEndian: address.sin_port)
        server = try RuntimeAPIServer.start(adopting: fd, on: group.next()).wait()
    }

    func shutdown() {
        server.close()
        try? group.syncShutdownGracefully()
    }

    func invocation(_ id: String, payload: String = #"{"x":1}"#, timeout: Double = 5, clientContext: String? = nil) -> RuntimeInvocation {
        RuntimeInvocation(requestId: id, payload: ByteBuffer(string: payload), timeoutNs: UInt64(timeout * 1e9),
                          invokedFunctionArn: "arn:aws:lambda:us-east-1:123456789012:function:f:live",
                          traceId: "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0",
                          clientContext: clientContext, cognitoIdentity: #"{"cognitoIdentityId":"id","cognitoIdentityPoolId":"pool"}"#)
    }

    /// One request on its own connection.
    func request(_ method: String, _ path: String, body: String = "", headers: [String: String] = [:]) -> HTTPReply {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = port.bigEndian
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var text = "\(method) \(path) HTTP/1.1\r\nHost: runtime\r\nConnection: close\r\nContent-Length: \(body.utf8.count)\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        text += "\r\n" + body
        let bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            sent += n
        }
        var response = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { break }
            response += buffer[0..<n]
        }
        let raw = String(decoding: response, as: UTF8.self)
        guard let split = raw.range(of: "\r\n\r\n") else { return HTTPReply(status: 0, headers: [:], body: raw) }
        let lines = raw[..<split.lowerBound].components(separatedBy: "\r\n")
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            if let colon = line.firstIndex(of: ":") {
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        let status = Int(lines.first?.split(separator: " ")[1] ?? "") ?? 0
        return HTTPReply(status: status, headers: headers, body: String(raw[split.upperBound...]))
    }

    func next() async -> HTTPReply {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: self.request("GET", "/2018-06-01/runtime/invocation/next")) }
        }
    }
}

@Suite("Runtime API", .serialized)
struct RuntimeAPITests {
    @Test func nextDeliversTheEventWithLambdasHeaders() async throws {
        let api = try RuntimeAPIHarness()
        defer { api.shutdown() }
        let initialized = api.server.session.initialization(timeout: .seconds(5))
        async let next = api.next()
        guard case .ready = try await initialized.get() else { Issue.record("init did not complete"); return }
        let before = Int64(Date().timeIntervalSince1970 * 1000)
        let outcome = api.server.session.invoke(api.invocation("req-1", clientContext: #"{"custom":{"k":"v"}}"#))
        let reply = await next
        #expect(reply.status == 200)
        #expect(reply.body == #"{"x":1}"#)
        #expect(reply.headers["lambda-runtime-aws-request-id"] == "req-1")
        #expect(reply.headers["lambda-runtime-invoked-function-arn"] == "arn:aws:lambda:us-east-1:123456789012:function:f:live")
        #expect(reply.headers["lambda-runtime-trace-id"]?.hasPrefix("Root=1-") == true)
        #expect(reply.headers["lambda-runtime-client-context"] == #"{"custom":{"k":"v"}}"#)
        #expect(reply.headers["lambda-runtime-cognito-identity"] == #"{"cognitoIdentityId":"id","cognitoIdentityPoolId":"pool"}"#)
        #expect(reply.headers["content-type"] == "application/json")
        let deadline = Int64(reply.headers["lambda-runtime-deadline-ms"] ?? "") ?? 0
        #expect(deadline >= before + 4900 && deadline <= before + 6000)

        let posted = api.request("POST", "/2018-06-01/runtime/invocation/req-1/response", body: #"{"ok":true}"#, headers: ["Content-Type": "application/json"])
        #expect(posted.status == 202)
        #expect(posted.body.contains(#""status":"OK""#))
        guard case .response(let body, let type, _, _) = try await outcome.get() else { Issue.record("no response"); return }
        #expect(String(buffer: body) == #"{"ok":true}"#)
        #expect(type == "application/json")
    }

    @Test func responsesForUnknownOrFinishedRequestsAreRefused() async throws {
        let api = try RuntimeAPIHarness()
        defer { api.shutdown() }
        _ = api.server.session.initialization(timeout: .seconds(5))
        async let next = api.next()
        try await Task.sleep(nanoseconds: 100_000_000)
        let outcome = api.server.session.invoke(api.invocation("req-2"))
        _ = await next
        let unknown = api.request("POST", "/2018-06-01/runtime/invocation/nope/response", body: "{}")
        #expect(unknown.status == 400)
        #expect(unknown.body.contains(#""errorType":"InvalidRequestID""#))
        #expect(api.request("POST", "/2018-06-01/runtime/invocation/req-2/response", body: "1").status == 202)
        let twice = api.request("POST", "/2018-06-01/runtime/invocation/req-2/response", body: "2")
        #expect(twice.status == 403)
        #expect(twice.body.contains(#""errorType":"InvalidStateTransition""#))
        let errorAfter = api.request("POST", "/2018-06-01/runtime/invocation/req-2/error", body: "{}")
        #expect(errorAfter.status == 403)
        guard case .response(let body, _, _, _) = try await outcome.get() else { Issue.record("no response"); return }
        #expect(String(buffer: body) == "1")
    }

    @Test func oversizedResponseGets413AndTheInvocationFails() async throws {
        let api = try RuntimeAPIHarness()
        defer { api.shutdown() }
        _ = api.server.session.initialization(timeout: .seconds(5))
        async let next = api.next()
        try await Task.sleep(nanoseconds: 100_000_000)
        let outcome = api.server.session.invoke(api.invocation("req-3"))
        _ = await next
        let big = String(repeating: "x", count: RuntimeSession.maxResponseBytes + 1)
        let reply = api.request("POST", "/2018-06-01/runtime/invocation/req-3/response", body: big)
        #expect(reply.status == 413)
        #expect(reply.body.contains(#""errorType":"RequestEntityTooLarge""#))
        guard case .responseTooLarge = try await outcome.get() else { Issue.record("expected responseTooLarge"); return }
    }

    @Test func errorPostCarriesTheErrorTypeHeader() async throws {
        let api = try RuntimeAPIHarness()
        defer { api.shutdown() }
        _ = api.server.session.initialization(timeout: .seconds(5))
        async let next = api.next()
        try await Task.sleep(nanoseconds: 100_000_000)
        let outcome = api.server.session.invoke(api.invocation("req-4"))
        _ = await next
        let reply = api.request("POST", "/2018-06-01/runtime/invocation/req-4/error", body: #"{"errorMessage":"m","errorType":"E"}"#,
                                headers: ["Lambda-Runtime-Function-Error-Type": "Function.E"])
        #expect(reply.status == 202)
        guard case .functionError(let body, let type, _, _) = try await outcome.get() else { Issue.record("expected an error"); return }
        #expect(type == "Function.E")
        #expect(String(buffer: body) == #"{"errorMessage":"m","errorType":"E"}"#)
    }

    @Test func initErrorIsAcceptedOnlyDuringInit() async throws {
        let api = try RuntimeAPIHarness()
        defer { api.shutdown() }
        let initialized = api.server.session.initialization(timeout: .seconds(5))
        let reply = api.request("POST", "/2018-06-01/runtime/init/error", body: #"{"errorMessage":"bad","errorType":"Runtime.ImportModuleError"}"#,
                                headers: ["Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"])
        #expect(reply.status == 202)
        api.server.session.abort(.exited(code: 1, signal: nil, outOfMemory: false))
        guard case .error(let type, let body, _) = try await initialized.get() else { Issue.record("expected an init error"); return }
        #expect(type == "Runtime.ImportModuleError")
        #expect(String(buffer: body).contains("bad"))
    }

    @Test func secondWaitingNextIsRefusedAndUnknownPathsAre404() async throws {
        let api = try RuntimeAPIHarness()
        defer { api.shutdown() }
        _ = api.server.session.initialization(timeout: .seconds(5))
        async let first = api.next()
        try await Task.sleep(nanoseconds: 200_000_000)
        let second = api.request("GET", "/2018-06-01/runtime/invocation/next")
        #expect(second.status == 403)
        #expect(api.request("GET", "/2018-06-01/runtime/nothing").status == 404)
        #expect(api.request("DELETE", "/2018-06-01/runtime/invocation/next").status == 405)
        let outcome = api.server.session.invoke(api.invocation("req-5"))
        _ = await first
        _ = api.request("POST", "/2018-06-01/runtime/invocation/req-5/response", body: "{}")
        _ = try await outcome.get()
    }

    @Test func deadlinePassingEndsTheInvocation() async throws {
        let api = try RuntimeAPIHarness()
        defer { api.shutdown() }
        _ = api.server.session.initialization(timeout: .seconds(5))
        async let next = api.next()
        try await Task.sleep(nanoseconds: 100_000_000)
        let outcome = api.server.session.invoke(api.invocation("req-6", timeout: 0.2))
        _ = await next
        guard case .timedOut(let delivered, let at) = try await outcome.get() else { Issue.record("expected a timeout"); return }
        #expect(at - (delivered ?? 0) >= 200_000_000)
    }
}
