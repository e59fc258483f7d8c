import ArgumentParser
import LaminaCommandLine
import Foundation
import LaminaLayers
import LaminaStore

/// The content-addressed store of code and layer archives.
struct LayersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "layers",
        abstract: "Inspect the content-addressed layer store and remove what no function or layer uses.",
        subcommands: [LayersList.self, LayersGC.self]
    )
}

struct LayersList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List stored archives and extracted trees.")
    @OptionGroup var host: HostOptions

    func run() async throws {
        let store = try LayerStore(root: host.stateDir + "/layers")
        let inventory = store.inventory()
        print("archives (\(inventory.archives.count)):")
        for digest in inventory.archives { print("  sha256:\(digest)") }
        print("trees (\(inventory.trees.count)):")
        for tree in inventory.trees { print("  \(tree)") }
    }
}

struct LayersGC: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Remove archives and trees that no function version or layer version references (mark and sweep).",
        discussion: "Objects younger than --grace are kept, so an upload that is not committed yet is never collected."
    )
    @OptionGroup var host: HostOptions
    @Option(help: "Keep unreferenced objects younger than this many seconds.") var grace: Double = 3600

    func run() async throws {
        let layers = try LayerStore(root: host.stateDir + "/layers")
        let database = host.stateDir + "/lamina.db"
        var referenced = Set<String>()
        if FileManager.default.fileExists(atPath: database) {
            referenced = try await SQLiteStore(path: database).referencedDigests()
        }
        let report = layers.collectGarbage(referenced: referenced, graceSeconds: grace)
        for digest in report.removedArchives { print("removed archive sha256:\(digest)") }
        for tree in report.removedTrees { print("removed tree \(tree)") }
        for staging in report.removedStaging { print("removed staging leftover \(staging)") }
        print("freed \(report.freedBytes) bytes; \(referenced.count) archives still referenced")
    }
}
