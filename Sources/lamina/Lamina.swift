#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import LaminaCommandLine

struct Lamina: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lamina",
        abstract: "A self-hosted, AWS Lambda compatible function host.",
        subcommands: [ServeCommand.self, TenantCommand.self, RunCommand.self, BillingCommand.self, SandboxCommand.self, RootfsCommand.self, LayersCommand.self]
    )
}
