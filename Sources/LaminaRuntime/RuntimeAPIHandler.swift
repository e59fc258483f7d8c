import NIOCore
import NIOHTTP1

/// Serves the Runtime API on one connection from the runtime (HTTP/1.1, keep-alive).
///
/// Routes (prefix `/2018-06-01`): `GET /runtime/invocation/next`,
/// `POST /runtime/invocation/{id}/response`, `POST /runtime/invocation/{id}/error`,
/// `POST /runtime/init/error`. Bodies beyond the limit are counted, not kept.
final class RuntimeAPIHandler: ChannelInboundHandler, RuntimeResponder {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let session: RuntimeSession
    private var context: ChannelHandlerContext?
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    private var bodyBytes = 0
    private var keepAlive = true
    private var awaitingResponse = false

    init(session: RuntimeSession) { self.session = session }

    var isActive: Bool { context?.channel.isActive ?? false }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        session.disconnected(self)
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        session.disconnected(self)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            self.body = nil
            self.bodyBytes = 0
            self.keepAlive = head.isKeepAlive
        case .body(var chunk):
            bodyBytes += chunk.readableBytes
            guard bodyBytes <= RuntimeSession.maxResponseBytes else { return }
            if body == nil {
                body = chunk
            } else {
                body!.writeBuffer(&chunk)
            }
        case .end:
            guard let head else { return }
            self.head = nil
            route(head, body: body ?? context.channel.allocator.buffer(capacity: 0), tooLarge: bodyBytes > RuntimeSession.maxResponseBytes)
            body = nil
        }
    }

    private static let prefix = "/2018-06-01/runtime/"

    private func route(_ head: HTTPRequestHead, body: ByteBuffer, tooLarge: Bool) {
        awaitingResponse = true
        let uri = head.uri
        guard uri.hasPrefix(Self.prefix) else {
            return respond(status: .notFound, headers: ["Content-Type": "application/json"],
                           body: session.errorBody("Unknown Runtime API path \(uri)", "NotFound"))
        }
        let path = uri.dropFirst(Self.prefix.count).split(separator: "?", maxSplits: 1).first.map(String.init) ?? ""
        if path == "invocation/next" {
            guard head.method == .GET else { return methodNotAllowed() }
            return session.next(self)
        }
        if path == "init/error" {
            guard head.method == .POST else { return methodNotAllowed() }
            return session.initError(errorType: head.headers.first(name: "Lambda-Runtime-Function-Error-Type"), body: body, self)
        }
        let parts = path.split(separator: "/")
        if parts.count == 3, parts[0] == "invocation" {
            guard head.method == .POST else { return methodNotAllowed() }
            let requestId = String(parts[1])
            switch parts[2] {
            case "response":
                return session.response(requestId: requestId, body: body, contentType: head.headers.first(name: "Content-Type"),
                                        tooLarge: tooLarge, self)
            case "error":
                return session.error(requestId: requestId, body: body,
                                     errorType: head.headers.first(name: "Lambda-Runtime-Function-Error-Type"), self)
            default:
                break
            }
        }
        respond(status: .notFound, headers: ["Content-Type": "application/json"],
                body: session.errorBody("Unknown Runtime API path \(uri)", "NotFound"))
    }

    private func methodNotAllowed() {
        respond(status: .methodNotAllowed, headers: ["Content-Type": "application/json"],
                body: session.errorBody("Method not allowed", "MethodNotAllowed"))
    }

    func respond(status: HTTPResponseStatus, headers: HTTPHeaders, body: ByteBuffer?) {
        guard let context, awaitingResponse else { return }
        awaitingResponse = false
        var headers = headers
        headers.add(name: "Content-Length", value: String(body?.readableBytes ?? 0))
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if let body, body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        let channel = context.channel
        let keepAlive = self.keepAlive
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if !keepAlive { channel.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
