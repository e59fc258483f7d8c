// lamina: the command line. `lamina --help` lists the commands.
#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Dispatch

// Synchronous commands (`sandbox run`, the hot path) run without starting Swift's concurrency
// runtime, which costs a millisecond and a half of start-up; async commands (the daemon) get it.
do {
    var command = try Lamina.parseAsRoot()
    if let asyncCommand = command as? AsyncParsableCommand {
        runAsyncCommandAndExit(asyncCommand)
    }
    try command.run()
    exit(0)
} catch {
    exitReporting(error)
}

func runAsyncCommandAndExit(_ command: some AsyncParsableCommand) -> Never {
    nonisolated(unsafe) var command = command
    Task {
        do {
            try await command.runAsynchronously()
            exit(0)
        } catch {
            exitReporting(error)
        }
    }
    dispatchMain()
}

/// Usage errors exit with 2 and one line, like other Unix tools, not ArgumentParser's 64 and a page.
func exitReporting(_ error: any Error) -> Never {
    if let failure = error as? CommandFailure {
        FileHandleOutput.standardError("lamina: error: \(failure.description)")
        exit(failure.status)
    }
    let code = Lamina.exitCode(for: error)
    let message = Lamina.message(for: error)
    if code == .success {
        print(Lamina.fullMessage(for: error))
        exit(0)
    }
    if code == .validationFailure || error is UsageError {
        FileHandleOutput.standardError("lamina: error: \(message)")
        exit(2)
    }
    if !message.isEmpty { FileHandleOutput.standardError("lamina: error: \(message)") }
    exit(code.rawValue)
}
