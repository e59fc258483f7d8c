#if canImport(Glibc)
import Glibc
#endif
import Foundation
import ZIPFoundation

/// Limits that keep a hostile archive from hurting the host.
public struct ExtractionLimits: Sendable {
    /// Lambda: 250 MB unzipped for a function with its layers.
    public var maxUnpackedBytes: Int64
    public var maxEntries: Int
    /// An entry bigger than `ratioCheckMinimumBytes` may not expand more than this (zip bombs).
    public var maxEntryCompressionRatio: Double
    public var ratioCheckMinimumBytes: Int64
    public var maxPathBytes: Int

    public init(maxUnpackedBytes: Int64 = 262_144_000, maxEntries: Int = 100_000,
                maxEntryCompressionRatio: Double = 500, ratioCheckMinimumBytes: Int64 = 1 << 20, maxPathBytes: Int = 4096) {
        self.maxUnpackedBytes = maxUnpackedBytes
        self.maxEntries = maxEntries
        self.maxEntryCompressionRatio = maxEntryCompressionRatio
        self.ratioCheckMinimumBytes = ratioCheckMinimumBytes
        self.maxPathBytes = maxPathBytes
    }
}

/// What an extraction produced.
public struct ExtractionSummary: Sendable, Equatable, Codable {
    public var files: Int
    public var directories: Int
    public var symlinks: Int
    public var unpackedBytes: Int64
}

/// Extracts a ZIP archive a tenant uploaded into a directory, trusting nothing in it.
///
/// Rejected, with a sentence saying which entry and why: paths that are absolute or climb out with
/// `..`; symlinks whose target leaves the directory the tree is mounted at; device files, FIFOs and
/// sockets; duplicate entries; more entries, more bytes or a higher compression ratio than the
/// limits; encrypted or corrupt data (CRC). Every file is created with openat(O_NOFOLLOW|O_EXCL)
/// relative to its parent, so nothing can be written through a symlink. Permissions survive, minus
/// setuid/setgid/sticky; everything is made readable by all (and executable by all when its owner
/// may execute it), because the sandbox user is never the owner.
public enum SafeZipExtractor {
    /// Extracts `archive` into `destination/<mount>` (destination must be an empty directory the caller
    /// owns and removes on failure). `mount` is where the tree appears in the sandbox, e.g. "var/task".
    public static func extract(archive: String, into destination: String, mount: String,
                               limits: ExtractionLimits = ExtractionLimits()) throws(LayerError) -> ExtractionSummary {
        let declared: ZipCentralDirectory
        do { declared = try ZipCentralDirectory.read(path: archive, maxEntries: limits.maxEntries) } catch {
            throw .invalidArchive("the file is not a readable ZIP archive")
        }
        guard declared.entries.count <= limits.maxEntries else {
            throw .invalidArchive("the archive has more than \(limits.maxEntries) entries")
        }
        var total: Int64 = 0
        for entry in declared.entries {
            let name = String(decoding: entry.name, as: UTF8.self)
            if let mode = entry.unixMode {
                let type = mode & UInt32(S_IFMT)
                if type != 0 && type != UInt32(S_IFREG) && type != UInt32(S_IFDIR) && type != UInt32(S_IFLNK) {
                    throw .invalidArchive("entry `\(name)` is a device file, FIFO or socket")
                }
            }
            total += Int64(clamping: entry.uncompressedSize)
            guard total <= limits.maxUnpackedBytes else {
                throw .invalidArchive("unzipped size must be smaller than \(limits.maxUnpackedBytes) bytes")
            }
            if Int64(clamping: entry.uncompressedSize) > limits.ratioCheckMinimumBytes {
                let ratio = Double(entry.uncompressedSize) / Double(max(entry.compressedSize, 1))
                guard ratio <= limits.maxEntryCompressionRatio else {
                    throw .invalidArchive("entry `\(name)` expands \(Int(ratio)) times (limit \(Int(limits.maxEntryCompressionRatio))): refusing a likely zip bomb")
                }
            }
        }

        let zip: Archive
        do { zip = try Archive(url: URL(fileURLWithPath: archive), accessMode: .read) } catch {
            throw .invalidArchive("the file is not a readable ZIP archive")
        }
        let entries = Array(zip)
        guard entries.count == declared.entries.count else {
            throw .invalidArchive("the archive's central directory is inconsistent")
        }

        let root = try TreeWriter(root: destination, mount: mount)
        defer { root.close() }
        var summary = ExtractionSummary(files: 0, directories: 0, symlinks: 0, unpackedBytes: 0)
        var links: [(path: [String], target: String)] = []
        for entry in entries {
            let components = try normalize(entry.path, limits: limits)
            if components.isEmpty { continue } // "./" and the like
            let mode = UInt32((entry.fileAttributes[.posixPermissions] as? NSNumber)?.uint16Value ?? 0o644)
            let modified = entry.fileAttributes[.modificationDate] as? Date
            switch entry.type {
            case .directory:
                try root.makeDirectory(components, mode: mode)
                summary.directories += 1
            case .symlink:
                var target = Data()
                do {
                    // ZIPFoundation hands over a symlink's stored bytes as they are; archivers may
                    // deflate a long target, so inflate it here when needed.
                    var raw = Data()
                    _ = try zip.extract(entry, consumer: { raw.append($0) })
                    if entry.isCompressed {
                        let source = raw
                        _ = try Data.decompress(size: Int64(source.count), bufferSize: 4096, skipCRC32: true,
                                                provider: { position, size in
                                                    let start = min(Int(position), source.count)
                                                    return source.subdata(in: start..<min(start + size, source.count))
                                                },
                                                consumer: { target.append($0) })
                    } else {
                        target = raw
                    }
                } catch {
                    throw .invalidArchive("entry `\(entry.path)` is corrupt")
                }
                guard target.count < 4096 else { throw .invalidArchive("symlink `\(entry.path)` has an overlong target") }
                links.append((components, String(decoding: target, as: UTF8.self)))
            case .file:
                let file = try root.createFile(components, mode: mode)
                var written: Int64 = 0
                var overflow = false
                let checksum: CRC32
                do {
                    checksum = try zip.extract(entry, skipCRC32: false, consumer: { data in
                        written += Int64(data.count)
                        // Never trust the declared sizes: count what actually comes out.
                        if written > Int64(clamping: entry.uncompressedSize) || total - Int64(clamping: entry.uncompressedSize) + written > limits.maxUnpackedBytes {
                            overflow = true
                            throw LayerError.invalidArchive("entry `\(entry.path)` is larger than declared")
                        }
                        try file.write(data)
                    })
                } catch {
                    file.close()
                    if overflow { throw .invalidArchive("entry `\(entry.path)` is larger than it declares: refusing a likely zip bomb") }
                    throw .invalidArchive("entry `\(entry.path)` is corrupt or encrypted")
                }
                if checksum != entry.checksum {
                    file.close()
                    throw .invalidArchive("entry `\(entry.path)` fails its CRC check: the archive is corrupt")
                }
                if let modified { file.setModificationTime(modified) }
                file.close()
                summary.files += 1
                summary.unpackedBytes += written
            }
        }
        // Symlinks last, so no entry of this archive can be written through one of them.
        for link in links {
            guard pointsInside(link: link.path, target: link.target, mount: mount) else {
                throw .invalidArchive("symlink `\(link.path.joined(separator: "/"))` -> `\(link.target)` points outside /\(mount)")
            }
            try root.createSymlink(link.path, target: link.target)
            summary.symlinks += 1
        }
        return summary
    }

    /// Splits an entry name into safe components, or says why it is not safe.
    static func normalize(_ path: String, limits: ExtractionLimits) throws(LayerError) -> [String] {
        guard path.utf8.count <= limits.maxPathBytes, !path.utf8.contains(0) else {
            throw .invalidArchive("entry name `\(path.prefix(80))…` is too long or contains NUL")
        }
        guard !path.hasPrefix("/") else { throw .invalidArchive("entry `\(path)` has an absolute path") }
        var components: [String] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            guard part != ".." else { throw .invalidArchive("entry `\(path)` escapes the archive's directory with `..`") }
            components.append(String(part))
        }
        return components
    }

    /// Whether a symlink at `link` (components below the mount) with `target` resolves inside the mount,
    /// read lexically as the sandbox would resolve it. Absolute targets must name a path under the
    /// mount (e.g. `/opt/lib/libx.so` in a layer).
    static func pointsInside(link: [String], target: String, mount: String) -> Bool {
        guard !target.isEmpty, !target.utf8.contains(0) else { return false }
        var resolved = Array(link.dropLast())
        var rest = Substring(target)
        if target.hasPrefix("/") {
            let prefix = "/" + mount + "/"
            guard target.hasPrefix(prefix) else { return false }
            resolved = []
            rest = target.dropFirst(prefix.count)
        }
        for part in rest.split(separator: "/", omittingEmptySubsequences: true) {
            switch part {
            case ".": continue
            case "..":
                if resolved.isEmpty { return false }
                resolved.removeLast()
            default: resolved.append(String(part))
            }
        }
        return true
    }
}

/// Writes a tree under `root/mount` through directory file descriptors and *at() calls with
/// O_NOFOLLOW, so no path component can be a symlink planted by the archive.
final class TreeWriter {
    private let base: Int32
    private var directories: [String: Int32] = [:]

    init(root: String, mount: String) throws(LayerError) {
        var fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw .io("open \(root): \(String(cString: strerror(errno)))") }
        for part in mount.split(separator: "/") {
            mkdirat(fd, String(part), 0o755)
            let next = openat(fd, String(part), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            Glibc.close(fd)
            guard next >= 0 else { throw .io("create \(root)/\(mount): \(String(cString: strerror(errno)))") }
            fd = next
        }
        base = fd
    }

    func close() {
        for fd in directories.values { Glibc.close(fd) }
        directories = [:]
        Glibc.close(base)
    }

    /// The directory holding `components` (all but the last), created as needed.
    private func parent(of components: [String]) throws(LayerError) -> Int32 {
        var fd = base
        var key = ""
        for part in components.dropLast() {
            key += "/" + part
            if let known = directories[key] {
                fd = known
                continue
            }
            if mkdirat(fd, part, 0o755) != 0 && errno != EEXIST {
                throw .io("create directory \(key): \(String(cString: strerror(errno)))")
            }
            let next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard next >= 0 else {
                throw .invalidArchive("entry path `\(components.joined(separator: "/"))` goes through a symlink or a file")
            }
            directories[key] = next
            fd = next
        }
        return fd
    }

    func makeDirectory(_ components: [String], mode: UInt32) throws(LayerError) {
        let parent = try parent(of: components)
        let name = components.last!
        if mkdirat(parent, name, 0o755) != 0 && errno != EEXIST {
            throw .io("create directory \(components.joined(separator: "/")): \(String(cString: strerror(errno)))")
        }
        let fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw .invalidArchive("entry `\(components.joined(separator: "/"))/` collides with a file or symlink") }
        fchmod(fd, mode_t(Self.sanitized(mode, directory: true)))
        Glibc.close(fd)
    }

    func createFile(_ components: [String], mode: UInt32) throws(LayerError) -> OutputFile {
        let parent = try parent(of: components)
        let fd = openat(parent, components.last!, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            if errno == EEXIST { throw .invalidArchive("entry `\(components.joined(separator: "/"))` appears twice") }
            throw .io("create \(components.joined(separator: "/")): \(String(cString: strerror(errno)))")
        }
        fchmod(fd, mode_t(Self.sanitized(mode, directory: false)))
        return OutputFile(fd: fd)
    }

    func createSymlink(_ components: [String], target: String) throws(LayerError) {
        let parent = try parent(of: components)
        guard symlinkat(target, parent, components.last!) == 0 else {
            if errno == EEXIST { throw .invalidArchive("entry `\(components.joined(separator: "/"))` appears twice") }
            throw .io("create symlink \(components.joined(separator: "/")): \(String(cString: strerror(errno)))")
        }
    }

    /// Drops setuid/setgid/sticky; readable by all; executable by all where the owner may execute.
    static func sanitized(_ mode: UInt32, directory: Bool) -> UInt32 {
        if directory { return 0o755 }
        var bits = (mode & 0o777) | 0o444
        if bits & 0o100 != 0 { bits |= 0o111 }
        return bits
    }
}

final class OutputFile {
    let fd: Int32
    private var closed = false

    init(fd: Int32) { self.fd = fd }

    func write(_ data: Data) throws {
        try data.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) in
            var offset = 0
            while offset < buffer.count {
                let n = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw LayerError.io("write: \(String(cString: strerror(errno)))")
                }
                offset += n
            }
        }
    }

    func setModificationTime(_ date: Date) {
        let seconds = date.timeIntervalSince1970
        var times = [timespec(tv_sec: Int(seconds), tv_nsec: 0), timespec(tv_sec: Int(seconds), tv_nsec: 0)]
        futimens(fd, &times)
    }

    func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(fd)
    }
}
