#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser

struct Lamina: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lamina",
        abstract: "A self-hosted, AWS Lambda compatible function host.",
        subcommands: [ServeCommand.self, TenantCommand.self, RunCommand.self, BillingCommand.self, SandboxCommand.self, RootfsCommand.self, LayersCommand.self]
    )
}

/// Bad input from the user: one line on stderr, exit status 2.
struct UsageError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A failure of the command itself (not of the user's program), with its exit status.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    let status: Int32
}

enum FileHandleOutput {
    static func standardError(_ line: String) {
        var line = line + "\n"
        line.withUTF8 { buffer in _ = write(2, buffer.baseAddress, buffer.count) }
    }

    static func standardOutput(_ line: String) {
        var line = line + "\n"
        line.withUTF8 { buffer in _ = write(1, buffer.baseAddress, buffer.count) }
    }
}

/// Options every command that touches host state shares.
struct HostOptions: ParsableArguments {
    @Option(name: .long, help: "Directory for Lamina's state (store, layers, sandbox mount points).")
    var stateDir: String = defaultStateDirectory

    @Option(name: .long, help: "Lamina's cgroup subtree, relative to each cgroup hierarchy.")
    var cgroupParent: String = defaultCgroupParent

    @Flag(name: .long, help: "Log what happens in detail.")
    var verbose = false

    static var defaultStateDirectory: String {
        environment("LAMINA_STATE_DIR") ?? "/var/lib/lamina"
    }

    static var defaultCgroupParent: String {
        environment("LAMINA_CGROUP_PARENT") ?? "lamina"
    }

    func validate() throws {
        guard stateDir.hasPrefix("/") else { throw ValidationError("--state-dir must be an absolute path") }
        guard !cgroupParent.isEmpty, !cgroupParent.hasPrefix("/"), !cgroupParent.split(separator: "/").contains("..") else {
            throw ValidationError("--cgroup-parent must be a relative path without `..`")
        }
    }
}

func environment(_ name: String) -> String? {
    guard let value = getenv(name) else { return nil }
    return String(cString: value)
}

extension AsyncParsableCommand {
    /// Calls the async `run()`; through an existential the synchronous default (which prints help) would win.
    mutating func runAsynchronously() async throws { try await run() }
}
