#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LaminaHost
import Synchronization

/// Function logs on disk: one file per log stream, `<root>/<account>/<log group>/<stream>.log`
/// (slashes of the group and stream kept as directories), one event per line with its timestamp,
/// like `aws logs` prints them. Open files are kept for the streams in use.
public final class FileLogSink: LogSink {
    let root: String
    private struct Open {
        var files: [String: (fd: Int32, used: UInt64)] = [:]
        var clock: UInt64 = 0
    }
    private let open = Mutex(Open())
    static let maxOpenFiles = 256

    public init(root: String) { self.root = root }

    public func write(_ events: [LogEvent], account: String, group: String, stream: String) {
        var text = ""
        for event in events {
            let message = event.message.hasSuffix("\n") ? String(event.message.dropLast()) : event.message
            text += "\(iso8601(event.timestampMs))\t\(message)\n"
        }
        let path = "\(root)/\(account)\(group)/\(stream).log"
        open.withLock { state in
            state.clock += 1
            var fd = state.files[path]?.fd ?? -1
            if fd < 0 {
                try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                fd = Glibc.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
                guard fd >= 0 else { return }
                if state.files.count >= Self.maxOpenFiles, let oldest = state.files.min(by: { $0.value.used < $1.value.used }) {
                    close(oldest.value.fd)
                    state.files.removeValue(forKey: oldest.key)
                }
            }
            state.files[path] = (fd, state.clock)
            text.withUTF8 { buffer in _ = Glibc.write(fd, buffer.baseAddress, buffer.count) }
        }
    }

    func iso8601(_ epochMs: Int64) -> String {
        var seconds = time_t(epochMs / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int, _ width: Int = 2) -> String { let t = String(value); return String(repeating: "0", count: max(0, width - t.count)) + t }
        return "\(parts.tm_year + 1900)-\(pad(Int(parts.tm_mon) + 1))-\(pad(Int(parts.tm_mday)))T\(pad(Int(parts.tm_hour))):\(pad(Int(parts.tm_min))):\(pad(Int(parts.tm_sec))).\(pad(Int(epochMs % 1000), 3))Z"
    }
}
