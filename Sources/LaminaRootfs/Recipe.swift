import Crypto
import Foundation

/// A root filesystem recipe: a directory under `rootfs/` (see rootfs/README.md).
public struct Recipe: Sendable, Equatable {
    public let name: String
    public let directory: String
    public let description: String
    public let parent: String?

    public var hostPrepare: String? { script("host-prepare") }
    public var install: String? { script("install") }
    public var finish: String? { script("finish") }

    private func script(_ name: String) -> String? {
        let path = "\(directory)/\(name)"
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }

    /// Loads every recipe in `directory`.
    public static func loadAll(from directory: String) throws(RootfsError) -> [String: Recipe] {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: directory) } catch {
            throw .noRecipes("no root filesystem recipes in \(directory): pass --recipes DIR (the repository's rootfs/ directory)")
        }
        var recipes: [String: Recipe] = [:]
        for name in names.sorted() where FileManager.default.fileExists(atPath: "\(directory)/\(name)/recipe.conf") {
            recipes[name] = try load(name: name, directory: "\(directory)/\(name)")
        }
        guard !recipes.isEmpty else { throw .noRecipes("no root filesystem recipes in \(directory)") }
        return recipes
    }

    static func load(name: String, directory: String) throws(RootfsError) -> Recipe {
        guard let text = try? String(contentsOfFile: "\(directory)/recipe.conf", encoding: .utf8) else {
            throw .invalidRecipe(name, "cannot read recipe.conf")
        }
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            guard let equals = trimmed.firstIndex(of: "=") else { throw .invalidRecipe(name, "`\(trimmed)` is not `key = value`") }
            let key = trimmed[..<equals].trimmingCharacters(in: .whitespaces)
            let value = trimmed[trimmed.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            guard ["description", "parent"].contains(key) else { throw .invalidRecipe(name, "unknown key `\(key)`") }
            values[key] = value
        }
        let recipe = Recipe(name: name, directory: directory, description: values["description"] ?? name,
                            parent: values["parent"].flatMap { $0.isEmpty ? nil : $0 })
        guard recipe.hostPrepare != nil || recipe.install != nil else {
            throw .invalidRecipe(name, "it has neither a host-prepare nor an install script")
        }
        if recipe.parent == nil && recipe.install != nil && recipe.hostPrepare == nil {
            throw .invalidRecipe(name, "an install script needs a parent layer to run on")
        }
        return recipe
    }

    /// SHA-256 over the recipe's files (names and contents), sorted.
    func contentDigest() -> String {
        var hasher = SHA256()
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
        for name in names {
            hasher.update(data: Array("\(name)\0".utf8))
            if let data = FileManager.default.contents(atPath: "\(directory)/\(name)") { hasher.update(data: data) }
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}

public enum RootfsError: Error, CustomStringConvertible, Sendable {
    case noRecipes(String)
    case invalidRecipe(String, String)
    case unknownLayer(String, known: [String])
    case stepFailed(layer: String, step: String, status: Int32)
    case failed(String)

    public var description: String {
        switch self {
        case .noRecipes(let message): return message
        case .invalidRecipe(let name, let reason): return "recipe `\(name)` is invalid: \(reason)"
        case .unknownLayer(let name, let known): return "no recipe for `\(name)`; known: \(known.joined(separator: ", "))"
        case .stepFailed(let layer, let step, let status): return "building `\(layer)`: \(step) failed with exit status \(status)"
        case .failed(let message): return message
        }
    }
}
