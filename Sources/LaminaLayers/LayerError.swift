/// What can go wrong with archives, trees and plans, as sentences a user can act on.
public enum LayerError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The archive a tenant uploaded is unsafe or unreadable; nothing was stored.
    case invalidArchive(String)
    /// The function and its layers together exceed the unzipped size limit.
    case tooLarge(String)
    case notFound(String)
    case invalidPlan(String)
    /// No executable runtime bootstrap at any of these paths (Lambda: Runtime.InvalidEntrypoint).
    case missingBootstrap([String])
    case io(String)

    public var description: String {
        switch self {
        case .invalidArchive(let reason): return "Could not unzip uploaded file: \(reason)."
        case .tooLarge(let message), .notFound(let message), .invalidPlan(let message), .io(let message): return message
        case .missingBootstrap(let paths):
            return "Couldn't find valid bootstrap(s): [\(paths.joined(separator: " "))]"
        }
    }
}
