#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Synchronization

/// Collects a runtime's stdout and stderr (one pipe) into the function's log stream, line by line,
/// and keeps the lines of the invocation in progress for `X-Amz-Log-Type: Tail`.
///
/// Lines are read as they come (Dispatch watches the pipe) and once more, synchronously, when an
/// invocation ends: whatever the runtime printed before posting its response is then in the
/// pipe, so it lands before END, as on Lambda.
final class LogCollector: Sendable {
    let account: String
    let group: String
    let stream: String
    private let fd: Int32
    private let sink: any LogSink
    private struct State {
        var partial: [UInt8] = []
        var current: [String]?
        var closed = false
    }
    private let state = Mutex(State())
    private nonisolated(unsafe) let source: (any DispatchSourceRead)?

    /// Maximum length of one log line; longer output is split, as CloudWatch would.
    static let maxLineBytes = 256 * 1024

    /// `fd` < 0: no runtime output, platform lines only.
    init(fd: Int32, account: String, group: String, stream: String, sink: any LogSink, queue: DispatchQueue) {
        self.fd = fd
        self.account = account
        self.group = group
        self.stream = stream
        self.sink = sink
        guard fd >= 0 else {
            source = nil
            state.withLock { $0.closed = true }
            return
        }
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        let source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
        self.source = source
        source.setEventHandler { [weak self] in self?.drain() }
        source.setCancelHandler { close(fd) }
        source.resume()
    }

    deinit { source?.cancel() }

    /// Reads everything available now.
    func drain() {
        var buffer = [UInt8](repeating: 0, count: 65536)
        var events: [LogEvent] = []
        state.withLock { state in
            guard !state.closed else { return }
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 {
                    if n == 0 { // every writer is gone
                        state.closed = true
                        if !state.partial.isEmpty { events.append(flushLine(&state)) }
                    }
                    break
                }
                var start = 0
                for index in 0..<n where buffer[index] == UInt8(ascii: "\n") {
                    state.partial.append(contentsOf: buffer[start..<index])
                    events.append(flushLine(&state))
                    start = index + 1
                }
                state.partial.append(contentsOf: buffer[start..<n])
                while state.partial.count >= Self.maxLineBytes {
                    let head = Array(state.partial.prefix(Self.maxLineBytes))
                    state.partial.removeFirst(Self.maxLineBytes)
                    let line = String(decoding: head, as: UTF8.self)
                    state.current?.append(line)
                    events.append(LogEvent(timestampMs: epochMilliseconds(), message: line))
                }
            }
        }
        if !events.isEmpty { sink.write(events, account: account, group: group, stream: stream) }
    }

    private func flushLine(_ state: inout State) -> LogEvent {
        let line = String(decoding: state.partial, as: UTF8.self)
        state.partial.removeAll(keepingCapacity: true)
        state.current?.append(line)
        return LogEvent(timestampMs: epochMilliseconds(), message: line)
    }

    /// Writes a platform line (START, REPORT, ...) into the stream and the invocation's lines.
    func platform(_ line: String) {
        state.withLock { $0.current?.append(line) }
        sink.write([LogEvent(timestampMs: epochMilliseconds(), message: line)], account: account, group: group, stream: stream)
    }

    /// Starts keeping lines for an invocation.
    func beginInvocation() { state.withLock { $0.current = [] } }

    /// Stops keeping lines and returns those of the invocation.
    func endInvocation() -> [String] {
        state.withLock { state in
            defer { state.current = nil }
            return state.current ?? []
        }
    }
}
