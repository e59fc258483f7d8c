#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Dispatch

/// Parses the command line with `root` and runs the chosen command, then exits.
///
/// Synchronous commands (`sandbox run`, the hot path) run without starting Swift's concurrency
/// runtime, which costs a millisecond and a half of start-up; async commands (the daemon) get it.
/// Usage errors exit with 2 and one line, like other Unix tools, not ArgumentParser's 64 and a page.
public func runCommandLine<Root: ParsableCommand>(_ root: Root.Type) -> Never {
    do {
        var command = try root.parseAsRoot()
        if let asyncCommand = command as? AsyncParsableCommand {
            runAsyncCommandAndExit(asyncCommand, root: root)
        }
        try command.run()
        exit(0)
    } catch {
        exitReporting(error, root: root)
    }
}

func runAsyncCommandAndExit<Root: ParsableCommand>(_ command: some AsyncParsableCommand, root: Root.Type) -> Never {
    nonisolated(unsafe) var command = command
    Task {
        do {
            try await command.runAsynchronously()
            exit(0)
        } catch {
            exitReporting(error, root: root)
        }
    }
    dispatchMain()
}

func exitReporting<Root: ParsableCommand>(_ error: any Error, root: Root.Type) -> Never {
    let name = Root.configuration.commandName ?? "lamina"
    if let failure = error as? CommandFailure {
        FileHandleOutput.standardError("\(name): error: \(failure.description)")
        exit(failure.status)
    }
    let code = Root.exitCode(for: error)
    let message = Root.message(for: error)
    if code == .success {
        print(Root.fullMessage(for: error))
        exit(0)
    }
    if code == .validationFailure || error is UsageError {
        FileHandleOutput.standardError("\(name): error: \(message)")
        exit(2)
    }
    if !message.isEmpty { FileHandleOutput.standardError("\(name): error: \(message)") }
    exit(code.rawValue)
}
