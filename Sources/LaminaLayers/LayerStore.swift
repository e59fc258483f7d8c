#if canImport(Glibc)
import Glibc
#endif
import Crypto
import Foundation
import Logging

/// Where a tree appears inside the sandbox.
public enum TreeMount: String, Sendable, Codable, CaseIterable {
    /// A function's code.
    case task = "var/task"
    /// A layer's content, merged with the function's other layers.
    case opt = "opt"

    var suffix: String { self == .task ? "task" : "opt" }
}

/// An archive in the store, named by the SHA-256 of its bytes.
public struct StoredArchive: Sendable, Equatable, Codable {
    /// Lowercase hex SHA-256: the name on disk and the key everywhere else.
    public var digest: String
    public var size: Int64
    /// base64 of the SHA-256, as Lambda's `CodeSha256`.
    public var codeSha256: String
}

/// An extracted tree, ready to be an overlay lower directory.
public struct Tree: Sendable, Equatable, Codable {
    /// Content digest of what it was made from (archive digest, or digest of an imported directory).
    public var digest: String
    public var mount: TreeMount
    /// The lower directory: contains `var/task/...` or `opt/...`.
    public var path: String
    public var summary: ExtractionSummary
}

/// A content-addressed store of archives and the trees extracted from them, shared by every
/// function and tenant: importing the same bytes twice stores them once, and each archive is
/// extracted once per mount point however many functions use it.
///
/// Layout under `root`: `archives/<sha256>.zip`, `trees/<sha256>.<task|opt>/` with a manifest
/// `trees/<sha256>.<task|opt>.json` beside it, `identity/<uid>.<gid>/`, and `staging/` where new
/// objects are assembled before an atomic rename, so a crash never leaves a half object in place.
public final class LayerStore: Sendable {
    public let root: String
    let logger: Logger

    public init(root: String, logger: Logger = Logger(label: "lamina.layers")) throws(LayerError) {
        self.root = root
        self.logger = logger
        for directory in ["archives", "trees", "staging", "identity"] {
            try Self.makeDirectories("\(root)/\(directory)")
        }
    }

    public func archivePath(_ digest: String) -> String { "\(root)/archives/\(digest).zip" }
    func treeKey(_ digest: String, _ mount: TreeMount) -> String { "\(digest).\(mount.suffix)" }
    func treePath(_ digest: String, _ mount: TreeMount) -> String { "\(root)/trees/\(treeKey(digest, mount))" }

    // MARK: Archives

    /// Stores archive bytes (once) and returns their digest.
    public func importArchive(bytes: [UInt8]) throws(LayerError) -> StoredArchive {
        let digest = SHA256.hash(data: bytes)
        let hex = digest.hexString
        let record = StoredArchive(digest: hex, size: Int64(bytes.count), codeSha256: Data(digest).base64EncodedString())
        let path = archivePath(hex)
        if FileManager.default.fileExists(atPath: path) { return record }
        let staging = stagingPath()
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: staging))
        } catch {
            throw .io("store archive: \(error.localizedDescription)")
        }
        try publish(staging, as: path)
        return record
    }

    /// Stores the archive at `file` (once), hashing it while copying.
    public func importArchive(file: String) throws(LayerError) -> StoredArchive {
        let input = open(file, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw .notFound("cannot read \(file): \(String(cString: strerror(errno)))") }
        defer { close(input) }
        let staging = stagingPath()
        let output = open(staging, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard output >= 0 else { throw .io("create \(staging): \(String(cString: strerror(errno)))") }
        var hasher = SHA256()
        var size: Int64 = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 {
                close(output)
                unlink(staging)
                throw .io("read \(file): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            hasher.update(data: buffer[0..<n])
            let written = buffer.withUnsafeBytes { write(output, $0.baseAddress, n) }
            guard written == n else {
                close(output)
                unlink(staging)
                throw .io("write \(staging): \(String(cString: strerror(errno)))")
            }
            size += Int64(n)
        }
        close(output)
        let digest = hasher.finalize()
        let hex = digest.hexString
        let path = archivePath(hex)
        if FileManager.default.fileExists(atPath: path) {
            unlink(staging)
        } else {
            try publish(staging, as: path)
        }
        return StoredArchive(digest: hex, size: size, codeSha256: Data(digest).base64EncodedString())
    }

    /// Stores an uploaded archive and extracts its tree, or, if the archive is unsafe or corrupt,
    /// keeps nothing of it (unless the same bytes were already stored before this call).
    public func importArchive(bytes: [UInt8], mount: TreeMount, limits: ExtractionLimits = ExtractionLimits()) throws(LayerError) -> (StoredArchive, Tree) {
        let digest = SHA256.hash(data: bytes).hexString
        let existed = hasArchive(digest)
        let archive = try importArchive(bytes: bytes)
        do {
            return (archive, try tree(archive: archive.digest, mount: mount, limits: limits))
        } catch {
            if !existed { unlink(archivePath(archive.digest)) }
            throw error
        }
    }

    public func hasArchive(_ digest: String) -> Bool { FileManager.default.fileExists(atPath: archivePath(digest)) }

    // MARK: Trees

    /// The tree of a stored archive at `mount`, extracted on first use.
    public func tree(archive digest: String, mount: TreeMount, limits: ExtractionLimits = ExtractionLimits()) throws(LayerError) -> Tree {
        if let existing = existingTree(digest, mount) { return existing }
        guard hasArchive(digest) else { throw .notFound("archive \(digest) is not in the layer store") }
        let staging = stagingPath()
        guard mkdir(staging, 0o755) == 0 else { throw .io("mkdir \(staging): \(String(cString: strerror(errno)))") }
        do {
            let summary = try SafeZipExtractor.extract(archive: archivePath(digest), into: staging, mount: mount.rawValue, limits: limits)
            return try publishTree(staging: staging, digest: digest, mount: mount, summary: summary)
        } catch {
            try? FileManager.default.removeItem(atPath: staging)
            throw error
        }
    }

    /// Extracts an archive's tree without keeping the archive in use: validates an upload fully
    /// before anything refers to it.
    public func validate(archive digest: String, mount: TreeMount, limits: ExtractionLimits = ExtractionLimits()) throws(LayerError) -> Tree {
        try tree(archive: digest, mount: mount, limits: limits)
    }

    /// Imports a local directory (for `lamina run --code DIR`) as a tree, named by its content.
    public func importDirectory(_ path: String, mount: TreeMount, limits: ExtractionLimits = ExtractionLimits()) throws(LayerError) -> Tree {
        let digest = try DirectoryDigest.digest(of: path)
        if let existing = existingTree(digest, mount) { return existing }
        let staging = stagingPath()
        guard mkdir(staging, 0o755) == 0 else { throw .io("mkdir \(staging): \(String(cString: strerror(errno)))") }
        do {
            let summary = try DirectoryCopier.copy(from: path, into: staging, mount: mount.rawValue, limits: limits)
            return try publishTree(staging: staging, digest: digest, mount: mount, summary: summary)
        } catch {
            try? FileManager.default.removeItem(atPath: staging)
            throw error
        }
    }

    func existingTree(_ digest: String, _ mount: TreeMount) -> Tree? {
        let path = treePath(digest, mount)
        guard let data = FileManager.default.contents(atPath: path + ".json"),
              let summary = try? JSONDecoder().decode(ExtractionSummary.self, from: data),
              FileManager.default.fileExists(atPath: path) else { return nil }
        return Tree(digest: digest, mount: mount, path: path, summary: summary)
    }

    private func publishTree(staging: String, digest: String, mount: TreeMount, summary: ExtractionSummary) throws(LayerError) -> Tree {
        let path = treePath(digest, mount)
        do {
            let manifest = try JSONEncoder().encode(summary)
            try manifest.write(to: URL(fileURLWithPath: path + ".json"), options: .atomic)
        } catch {
            throw .io("write manifest for \(path): \(error.localizedDescription)")
        }
        if rename(staging, path) != 0 {
            // Another import of the same content won the race: use its tree.
            let raced = errno == EEXIST || errno == ENOTEMPTY
            try? FileManager.default.removeItem(atPath: staging)
            guard raced else { throw .io("publish \(path): \(String(cString: strerror(errno)))") }
        }
        return Tree(digest: digest, mount: mount, path: path, summary: summary)
    }

    // MARK: Identity

    /// A tiny layer with /etc/passwd and /etc/group naming `uid`/`gid` as Lambda's sandbox user
    /// (`sbx_user1051`), so `whoami` and getpwuid() work for every tenant's own uid.
    public func identityLayer(uid: UInt32, gid: UInt32) throws(LayerError) -> String {
        let path = "\(root)/identity/\(uid).\(gid)"
        if FileManager.default.fileExists(atPath: path + "/etc/passwd") { return path }
        let staging = stagingPath()
        do {
            try FileManager.default.createDirectory(atPath: staging + "/etc", withIntermediateDirectories: true)
            let passwd = """
                root:x:0:0:root:/root:/usr/sbin/nologin
                sbx_user1051:x:\(uid):\(gid)::/tmp:/usr/sbin/nologin
                nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin

                """
            let group = """
                root:x:0:
                sbx_user1051:x:\(gid):
                nogroup:x:65534:

                """
            try passwd.write(toFile: staging + "/etc/passwd", atomically: false, encoding: .utf8)
            try group.write(toFile: staging + "/etc/group", atomically: false, encoding: .utf8)
            chmod(staging, 0o755)
            chmod(staging + "/etc", 0o755)
        } catch {
            try? FileManager.default.removeItem(atPath: staging)
            throw .io("create identity layer: \(error.localizedDescription)")
        }
        if rename(staging, path) != 0 { try? FileManager.default.removeItem(atPath: staging) }
        return path
    }

    // MARK: Garbage collection

    /// Removes archives and trees whose digest is not in `referenced` and that are older than
    /// `graceSeconds` (so an import whose reference is not yet committed is never collected), and
    /// staging leftovers of crashed imports.
    public func collectGarbage(referenced: Set<String>, graceSeconds: Double = 3600) -> LayerGarbageReport {
        var report = LayerGarbageReport()
        let now = Date()
        func old(_ path: String) -> Bool {
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                  let modified = attributes[.modificationDate] as? Date else { return false }
            return now.timeIntervalSince(modified) >= graceSeconds
        }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "\(root)/archives")) ?? [] {
            let digest = String(name.prefix(while: { $0 != "." }))
            let path = "\(root)/archives/\(name)"
            guard !referenced.contains(digest), old(path) else { continue }
            let size = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? 0
            if (try? FileManager.default.removeItem(atPath: path)) != nil {
                report.removedArchives.append(digest)
                report.freedBytes += size
            }
        }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "\(root)/trees")) ?? [] where !name.hasSuffix(".json") {
            let digest = String(name.prefix(while: { $0 != "." }))
            let path = "\(root)/trees/\(name)"
            guard !referenced.contains(digest), old(path) else { continue }
            if let data = FileManager.default.contents(atPath: path + ".json"),
               let summary = try? JSONDecoder().decode(ExtractionSummary.self, from: data) {
                report.freedBytes += summary.unpackedBytes
            }
            try? FileManager.default.removeItem(atPath: path + ".json")
            if (try? FileManager.default.removeItem(atPath: path)) != nil { report.removedTrees.append(name) }
        }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "\(root)/staging")) ?? [] {
            let path = "\(root)/staging/\(name)"
            if old(path), (try? FileManager.default.removeItem(atPath: path)) != nil { report.removedStaging.append(name) }
        }
        return report
    }

    /// What the store holds.
    public func inventory() -> (archives: [String], trees: [String]) {
        let archives = ((try? FileManager.default.contentsOfDirectory(atPath: "\(root)/archives")) ?? [])
            .map { String($0.prefix(while: { $0 != "." })) }.sorted()
        let trees = ((try? FileManager.default.contentsOfDirectory(atPath: "\(root)/trees")) ?? [])
            .filter { !$0.hasSuffix(".json") }.sorted()
        return (archives, trees)
    }

    // MARK: Helpers

    func stagingPath() -> String {
        "\(root)/staging/\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
    }

    private func publish(_ staging: String, as path: String) throws(LayerError) {
        guard rename(staging, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(staging)
            throw .io("store \(path): \(reason)")
        }
    }

    static func makeDirectories(_ path: String) throws(LayerError) {
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw .io("create \(path): \(error.localizedDescription)")
        }
    }
}

public struct LayerGarbageReport: Sendable, Equatable {
    public var removedArchives: [String] = []
    public var removedTrees: [String] = []
    public var removedStaging: [String] = []
    public var freedBytes: Int64 = 0

    public init() {}
}

extension Digest {
    var hexString: String { map { String(format: "%02x", $0) }.joined() }
}
