#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import LaminaCommandLine
import Foundation
import LaminaLayers
import LaminaRootfs
import LaminaSandbox

struct RootfsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rootfs",
        abstract: "Build and list the root filesystem layers environments run on (base, runtimes).",
        subcommands: [RootfsBuild.self, RootfsList.self]
    )
}

/// Where the root filesystem layers are: options shared by every command that uses them.
struct RootfsOptions: ParsableArguments {
    @Option(help: "Directory of built root filesystem layers (default: <state-dir>/rootfs).")
    var rootfsDir: String?

    @Option(help: "Directory of recipes (default: the rootfs/ directory next to this program's sources).")
    var recipes: String?

    func directory(stateDirectory: String) -> String {
        rootfsDir ?? environment("LAMINA_ROOTFS_DIR") ?? "\(stateDirectory)/rootfs"
    }

    var recipeDirectory: String {
        if let recipes { return recipes }
        if let preset = environment("LAMINA_RECIPES") { return preset }
        // Running from a build of the repository: .build/<config>/lamina -> <repo>/rootfs.
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = executable.deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("rootfs").path
            if FileManager.default.fileExists(atPath: candidate + "/base/recipe.conf") { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return "/usr/share/lamina/rootfs"
    }
}

struct RootfsBuild: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Build root filesystem layers (all when none is named), parents first; cached until a recipe changes."
    )

    @OptionGroup var host: HostOptions
    @OptionGroup var rootfs: RootfsOptions

    @Flag(help: "Rebuild the named layers even when they are up to date.")
    var force = false

    @Argument(help: "Layers to build, e.g. base python3.11.")
    var names: [String] = []

    func run() throws {
        bootstrapLogging(verbose: host.verbose)
        let recipes: [String: Recipe]
        do { recipes = try Recipe.loadAll(from: rootfs.recipeDirectory) } catch { throw UsageError(error.description) }
        for name in names where recipes[name] == nil {
            throw UsageError("no recipe for `\(name)`; known: \(recipes.keys.sorted().joined(separator: ", "))")
        }
        let sandboxes: SandboxHost
        do {
            sandboxes = try SandboxHost(configuration: SandboxHostConfiguration(stateDirectory: host.stateDir, cgroupParent: host.cgroupParent))
        } catch {
            throw CommandFailure(description: error.description, status: 1)
        }
        defer { sandboxes.shutdownBlocking() }
        let builder = RootfsBuilder(
            recipes: recipes, catalog: RootfsCatalog(directory: rootfs.directory(stateDirectory: host.stateDir)),
            sandboxes: sandboxes, progress: { FileHandleOutput.standardError("==> rootfs \($0)") })
        do { _ = try builder.build(names, force: force) } catch {
            throw CommandFailure(description: error.description, status: 1)
        }
    }
}

struct RootfsList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Show the built root filesystem layers.")

    @OptionGroup var host: HostOptions
    @OptionGroup var rootfs: RootfsOptions

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() throws {
        let catalog = RootfsCatalog(directory: rootfs.directory(stateDirectory: host.stateDir))
        let layers = catalog.all()
        if json {
            let encoder = JSONEncoder()
            encoder.dateEncodingStrategy = .iso8601
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let data = (try? encoder.encode(layers)) ?? Data("[]".utf8)
            print(String(decoding: data, as: UTF8.self))
            return
        }
        guard !layers.isEmpty else {
            print("no root filesystem layers built in \(catalog.directory): run `lamina rootfs build`")
            return
        }
        let formatter = ISO8601DateFormatter()
        let rows = [["NAME", "DIGEST", "SIZE", "FILES", "BUILT", "PARENT"]] + layers.map {
            [$0.name, "sha256:" + $0.digest.prefix(12), formatBytes($0.bytes), String($0.files), formatter.string(from: $0.builtAt), $0.parent ?? "-"]
        }
        printTable(rows)
    }
}

/// Prints rows as aligned columns.
func printTable(_ rows: [[String]]) {
    guard let first = rows.first else { return }
    var widths = first.map(\.count)
    for row in rows { for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) } }
    for row in rows {
        print(row.enumerated().map { index, cell in
            index == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[index] - cell.count)
        }.joined(separator: "  "))
    }
}
