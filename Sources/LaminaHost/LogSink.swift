#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// One line of a function's log, as CloudWatch Logs would store it.
public struct LogEvent: Sendable, Equatable {
    /// Unix epoch milliseconds.
    public var timestampMs: Int64
    public var message: String

    public init(timestampMs: Int64, message: String) {
        self.timestampMs = timestampMs
        self.message = message
    }
}

/// Where function logs go: platform lines and the runtime's stdout and stderr, by account, log
/// group and stream (two tenants may both have a function called `api`).
public protocol LogSink: Sendable {
    func write(_ events: [LogEvent], account: String, group: String, stream: String)
}

/// Keeps everything in memory (tests, `lamina run`).
public final class InMemoryLogSink: LogSink {
    private let storage = Mutex<[String: [LogEvent]]>([:])

    public init() {}

    public func write(_ events: [LogEvent], account: String, group: String, stream: String) {
        storage.withLock { $0["\(group)|\(stream)", default: []].append(contentsOf: events) }
    }

    /// Every line of a log group, stream by stream in order of first write.
    public func messages(group: String) -> [String] {
        storage.withLock { streams in
            streams.filter { $0.key.hasPrefix(group + "|") }.sorted { $0.key < $1.key }.flatMap { $0.value.map(\.message) }
        }
    }

    public func streams(group: String) -> [String] {
        storage.withLock { streams in streams.keys.filter { $0.hasPrefix(group + "|") }.map { String($0.dropFirst(group.count + 1)) }.sorted() }
    }
}

/// Writes each line to a file descriptor (stderr for `lamina run`), as it arrives.
public struct FileDescriptorLogSink: LogSink {
    let fd: Int32

    public init(fd: Int32 = 2) { self.fd = fd }

    public func write(_ events: [LogEvent], account: String, group: String, stream: String) {
        for event in events {
            var line = event.message.hasSuffix("\n") ? event.message : event.message + "\n"
            line.withUTF8 { buffer in _ = Glibc.write(fd, buffer.baseAddress, buffer.count) }
        }
    }
}

/// Sends every line to several sinks.
public struct FanOutLogSink: LogSink {
    let sinks: [any LogSink]

    public init(_ sinks: [any LogSink]) { self.sinks = sinks }

    public func write(_ events: [LogEvent], account: String, group: String, stream: String) {
        for sink in sinks { sink.write(events, account: account, group: group, stream: stream) }
    }
}

func epochMilliseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}
