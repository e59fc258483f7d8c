#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser

/// Bad input from the user: one line on stderr, exit status 2.
public struct UsageError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A failure of the command itself (not of the user's program), with its exit status.
public struct CommandFailure: Error, CustomStringConvertible {
    public let description: String
    public let status: Int32

    public init(description: String, status: Int32) {
        self.description = description
        self.status = status
    }
}

public enum FileHandleOutput {
    public static func standardError(_ line: String) {
        var line = line + "\n"
        line.withUTF8 { buffer in _ = write(2, buffer.baseAddress, buffer.count) }
    }

    public static func standardOutput(_ line: String) {
        var line = line + "\n"
        line.withUTF8 { buffer in _ = write(1, buffer.baseAddress, buffer.count) }
    }
}

/// Options every command that touches host state shares.
public struct HostOptions: ParsableArguments {
    public init() {}

    @Option(name: .long, help: "Directory for Lamina's state (store, layers, sandbox mount points).")
    public var stateDir: String = defaultStateDirectory

    @Option(name: .long, help: "Lamina's cgroup subtree, relative to each cgroup hierarchy.")
    public var cgroupParent: String = defaultCgroupParent

    @Flag(name: .long, help: "Log what happens in detail.")
    public var verbose = false

    public static var defaultStateDirectory: String {
        environment("LAMINA_STATE_DIR") ?? "/var/lib/lamina"
    }

    public static var defaultCgroupParent: String {
        environment("LAMINA_CGROUP_PARENT") ?? "lamina"
    }

    public func validate() throws {
        guard stateDir.hasPrefix("/") else { throw ValidationError("--state-dir must be an absolute path") }
        guard !cgroupParent.isEmpty, !cgroupParent.hasPrefix("/"), !cgroupParent.split(separator: "/").contains("..") else {
            throw ValidationError("--cgroup-parent must be a relative path without `..`")
        }
    }
}

public func environment(_ name: String) -> String? {
    guard let value = getenv(name) else { return nil }
    return String(cString: value)
}

extension AsyncParsableCommand {
    /// Calls the async `run()`; through an existential the synchronous default (which prints help) would win.
    public mutating func runAsynchronously() async throws { try await run() }
}
