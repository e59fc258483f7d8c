// lamina: the command line. `lamina --help` lists the commands.
#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser

// Usage errors exit with 2 and one line, like other Unix tools, not ArgumentParser's 64 and a page.
do {
    var command = try Lamina.parseAsRoot()
    if var asyncCommand = command as? AsyncParsableCommand {
        try await asyncCommand.runAsynchronously()
    } else {
        try command.run()
    }
} catch let failure as CommandFailure {
    FileHandleOutput.standardError("lamina: error: \(failure.description)")
    exit(failure.status)
} catch {
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
