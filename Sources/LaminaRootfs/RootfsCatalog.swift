import Foundation

/// A built root filesystem layer.
public struct RootfsLayer: Sendable, Equatable, Codable {
    public var name: String
    /// SHA-256 of the tree's content (paths, types, modes, bytes).
    public var digest: String
    /// What built it: the recipe and its parents.
    public var recipeDigest: String
    public var parent: String?
    public var bytes: Int64
    public var files: Int
    public var builtAt: Date
    public var buildSeconds: Double
    /// The directory to use as an overlay lower layer.
    public var path: String
}

/// The built layers under a directory: `<name>.json` manifests naming `<name>@<digest>/` trees.
public struct RootfsCatalog: Sendable {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    public func layer(named name: String) -> RootfsLayer? {
        guard let data = FileManager.default.contents(atPath: "\(directory)/\(name).json"),
              let layer = try? Self.decoder.decode(RootfsLayer.self, from: data),
              FileManager.default.fileExists(atPath: layer.path) else { return nil }
        return layer
    }

    public func all() -> [RootfsLayer] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
        return names.compactMap(layer(named:))
    }

    /// The lower directory of a built layer, for `FunctionRootPlan`.
    public func path(of name: String) -> String? { layer(named: name)?.path }

    func save(_ layer: RootfsLayer) throws {
        let data = try Self.encoder.encode(layer)
        try data.write(to: URL(fileURLWithPath: "\(directory)/\(layer.name).json"), options: .atomic)
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return encoder
    }()

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()
}
