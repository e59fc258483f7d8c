#if canImport(Glibc)
import Glibc
#endif
import Crypto
import Foundation
import LaminaLayers
import LaminaSandbox

/// Builds root filesystem layers from recipes, parents first, each only when its recipe changed.
///
/// A layer with an `install` script is built as a real layer: the script runs in a sandbox whose
/// root is the parent layers plus an empty writable upper directory, and that upper directory,
/// holding exactly what the install changed, becomes the layer.
public final class RootfsBuilder {
    public let recipes: [String: Recipe]
    public let catalog: RootfsCatalog
    let sandboxes: SandboxHost
    let progress: (String) -> Void

    /// Bumped when the way layers are built changes, so everything is rebuilt once.
    static let builderRevision = "1"

    public init(recipes: [String: Recipe], catalog: RootfsCatalog, sandboxes: SandboxHost, progress: @escaping (String) -> Void) {
        self.recipes = recipes
        self.catalog = catalog
        self.sandboxes = sandboxes
        self.progress = progress
    }

    /// Builds `names` (every recipe when empty) and their parents; returns the layers, built or cached.
    public func build(_ names: [String], force: Bool = false) throws(RootfsError) -> [RootfsLayer] {
        let wanted = names.isEmpty ? recipes.keys.sorted() : names
        for name in wanted where recipes[name] == nil { throw .unknownLayer(name, known: recipes.keys.sorted()) }
        do { try FileManager.default.createDirectory(atPath: catalog.directory, withIntermediateDirectories: true) } catch {
            throw .failed("create \(catalog.directory): \(error.localizedDescription)")
        }
        // One build at a time per directory; a second `rootfs build` waits for the first.
        let lock = open("\(catalog.directory)/.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lock >= 0 else { throw .failed("open \(catalog.directory)/.lock: \(String(cString: strerror(errno)))") }
        defer { close(lock) }
        if flock(lock, LOCK_EX | LOCK_NB) != 0 {
            progress("waiting for another build in \(catalog.directory)")
            flock(lock, LOCK_EX)
        }
        var built: [RootfsLayer] = []
        var done = Set<String>()
        for name in wanted { try build(name, force: force, done: &done, built: &built) }
        return built.filter { wanted.contains($0.name) }
    }

    private func build(_ name: String, force: Bool, done: inout Set<String>, built: inout [RootfsLayer]) throws(RootfsError) {
        guard !done.contains(name) else { return }
        guard let recipe = recipes[name] else { throw .unknownLayer(name, known: recipes.keys.sorted()) }
        if let parent = recipe.parent {
            // Parents are always brought up to date; `force` applies to the named layers only.
            try build(parent, force: false, done: &done, built: &built)
        }
        done.insert(name)
        let digest = try recipeDigest(name)
        if !force, let existing = catalog.layer(named: name), existing.recipeDigest == digest {
            progress("\(name): up to date (\(existing.digest.prefix(12)), \(formatBytes(existing.bytes)))")
            built.append(existing)
            return
        }
        built.append(try buildLayer(recipe, recipeDigest: digest))
    }

    /// A recipe's identity: its files, its parent's identity and the builder revision.
    func recipeDigest(_ name: String) throws(RootfsError) -> String {
        guard let recipe = recipes[name] else { throw .unknownLayer(name, known: recipes.keys.sorted()) }
        var text = "\(Self.builderRevision)|\(recipe.contentDigest())"
        if let parent = recipe.parent { text += "|" + (try recipeDigest(parent)) }
        return SHA256.hash(data: Array(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    private func buildLayer(_ recipe: Recipe, recipeDigest: String) throws(RootfsError) -> RootfsLayer {
        let started = Date()
        let work = "\(catalog.directory)/.build-\(recipe.name)"
        let layer = "\(work)/layer", scratch = "\(work)/work", inputs = "\(work)/inputs"
        try? FileManager.default.removeItem(atPath: work)
        do {
            for directory in [layer, scratch, inputs] {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
        } catch {
            throw .failed("create \(work): \(error.localizedDescription)")
        }
        defer { try? FileManager.default.removeItem(atPath: work) }
        chmod(layer, 0o755)

        let steps = [recipe.hostPrepare.map { ("host-prepare", $0) }, recipe.install.map { ("install", $0) }, recipe.finish.map { ("finish", $0) }]
            .compactMap { $0 }
        let environment = ["LAYER": layer, "INPUTS": inputs, "RECIPE": recipe.directory]
        for (index, (step, script)) in steps.enumerated() {
            progress("\(recipe.name) [\(index + 1)/\(steps.count + 1)] \(step)" + (step == "install" ? " (in a build sandbox on \(recipe.parent ?? "nothing"))" : ""))
            let status: Int32
            if step == "install" {
                status = try runInstall(recipe, layer: layer, scratch: scratch, inputs: inputs)
            } else {
                status = runOnHost(script, environment: environment)
            }
            guard status == 0 else { throw .stepFailed(layer: recipe.name, step: step, status: status) }
        }

        progress("\(recipe.name) [\(steps.count + 1)/\(steps.count + 1)] measuring and publishing")
        let measured: DirectoryDigest.Result
        do { measured = try DirectoryDigest.measure(layer, allowSpecialFiles: true) } catch {
            throw .failed("measure \(layer): \(error)")
        }
        let final = "\(catalog.directory)/\(recipe.name)@\(measured.digest.prefix(16))"
        if FileManager.default.fileExists(atPath: final) {
            try? FileManager.default.removeItem(atPath: layer) // identical content is already there
        } else if rename(layer, final) != 0 {
            throw .failed("publish \(final): \(String(cString: strerror(errno)))")
        }
        let result = RootfsLayer(name: recipe.name, digest: measured.digest, recipeDigest: recipeDigest, parent: recipe.parent,
                                 bytes: measured.bytes, files: measured.files, builtAt: Date(),
                                 buildSeconds: Date().timeIntervalSince(started), path: final)
        do { try catalog.save(result) } catch { throw .failed("save the manifest of \(recipe.name): \(error.localizedDescription)") }
        removeOldVersions(of: recipe.name, keeping: final)
        progress("\(recipe.name): built \(measured.digest.prefix(12)), \(formatBytes(measured.bytes)) in \(measured.files) files, \(Int(result.buildSeconds)) s")
        return result
    }

    /// Earlier builds of a layer. Environments running on them should be restarted first.
    private func removeOldVersions(of name: String, keeping current: String) {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: catalog.directory)) ?? []
        for entry in entries where entry.hasPrefix("\(name)@") && "\(catalog.directory)/\(entry)" != current {
            try? FileManager.default.removeItem(atPath: "\(catalog.directory)/\(entry)")
        }
    }

    private func runOnHost(_ script: String, environment: [String: String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: script)
        var variables = ProcessInfo.processInfo.environment
        variables.merge(environment) { _, new in new }
        process.environment = variables
        do { try process.run() } catch {
            progress("cannot start \(script): \(error.localizedDescription)")
            return 127
        }
        process.waitUntilExit()
        return process.terminationReason == .exit ? process.terminationStatus : 128 + process.terminationStatus
    }

    private func runInstall(_ recipe: Recipe, layer: String, scratch: String, inputs: String) throws(RootfsError) -> Int32 {
        var parents: [String] = []
        var next = recipe.parent
        while let name = next {
            guard let built = catalog.layer(named: name) else { throw .failed("parent layer `\(name)` is not built") }
            parents.append(built.path)
            next = recipes[name]?.parent
        }
        let spec = SandboxSpec(
            command: ["/bin/sh", "-e", "/tmp/recipe/install"],
            root: RootFilesystem(layers: parents, writable: WritableLayer(upper: layer, work: scratch)),
            environment: ["PATH": SandboxSpec.defaultPath, "HOME": "/root", "DEBIAN_FRONTEND": "noninteractive", "LANG": "C.UTF-8"],
            binds: [BindMount(source: recipe.directory, target: "/tmp/recipe", createTarget: true),
                    BindMount(source: inputs, target: "/tmp/inputs", createTarget: true)],
            limits: ResourceLimits(memoryMB: 4096, cpus: 2, pids: 4096, tmpMB: 2048, openFiles: 65536),
            user: SandboxUser(uid: 0, gid: 0),
            hostname: "lamina-build",
            network: .host,
            seccomp: .unconfined,
            stdio: .fds(stdin: 0, stdout: 1, stderr: 2),
            privileges: .buildRoot
        )
        do {
            let sandbox = try sandboxes.spawn(spec)
            let status = sandbox.waitBlocking() ?? TerminationStatus(signal: SIGKILL)
            try sandbox.destroyBlocking()
            return status.shellStatus
        } catch {
            throw .failed("the build sandbox for \(recipe.name) failed: \(error)")
        }
    }
}

public func formatBytes(_ bytes: Int64) -> String {
    let mb = Double(bytes) / 1_000_000
    return mb >= 10 ? "\(Int(mb.rounded())) MB" : "\(Double(Int(mb * 10)) / 10) MB"
}
