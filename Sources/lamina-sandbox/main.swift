// lamina-sandbox: `lamina sandbox` as a program of its own, for callers that start a sandbox per
// command. It links only the sandbox library, so it starts in a fraction of the time of `lamina`,
// whose daemon, store and HTTP stack make every start pay for their relocations and protocol
// conformance tables (measured by scripts/bench/sandbox).
import ArgumentParser
import LaminaCommandLine

struct LaminaSandboxTool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lamina-sandbox",
        abstract: "Run commands in isolated sandboxes, and clean up after crashed hosts (the same as `lamina sandbox`).",
        subcommands: [SandboxRun.self, SandboxGC.self, SandboxSeccompProfile.self]
    )
}

runCommandLine(LaminaSandboxTool.self)
