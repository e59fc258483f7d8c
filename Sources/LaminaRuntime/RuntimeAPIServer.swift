#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOHTTP1
import NIOPosix

/// Serves one environment's Runtime API on a listening socket the sandbox created for it.
public final class RuntimeAPIServer: Sendable {
    public let session: RuntimeSession
    private let channel: Channel

    private init(session: RuntimeSession, channel: Channel) {
        self.session = session
        self.channel = channel
    }

    /// Adopts `socket` (already bound and listening; ownership passes to the server) and serves it
    /// on `eventLoop`; the server channel and every connection stay on that one loop.
    public static func start(adopting socket: Int32, on eventLoop: EventLoop) -> EventLoopFuture<RuntimeAPIServer> {
        let session = RuntimeSession(eventLoop: eventLoop)
        let bootstrap = ServerBootstrap(group: eventLoop, childGroup: eventLoop)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                // The initializer runs on the channel's (the session's) event loop.
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(RuntimeAPIHandler(session: session))
                }
            }
        return bootstrap.withBoundSocket(socket).map { RuntimeAPIServer(session: session, channel: $0) }
    }

    /// Stops listening and closes every connection.
    public func close() {
        session.abort(.shutdown)
        channel.close(promise: nil)
    }
}
