// lamina-bench: benchmark programs (not tests). Each prints a table and the command that made it.
import ArgumentParser

struct LaminaBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lamina-bench",
        abstract: "Lamina's benchmarks.",
        subcommands: [SandboxBench.self, InvokeBench.self, LedgerBench.self]
    )
}

do {
    var command = try LaminaBench.parseAsRoot()
    if var asyncCommand = command as? AsyncParsableCommand {
        try await asyncCommand.runAsynchronously()
    } else {
        try command.run()
    }
} catch {
    LaminaBench.exit(withError: error)
}

extension AsyncParsableCommand {
    mutating func runAsynchronously() async throws { try await run() }
}
