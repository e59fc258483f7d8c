#if canImport(Glibc)
import Glibc
#endif
import Crypto
import Foundation

/// A digest of a directory tree's content: every entry's relative path, type, permission bits, and
/// the SHA-256 of its bytes (or its symlink target), in sorted order. Two directories with the same
/// content get the same digest wherever they live and whatever their timestamps.
public enum DirectoryDigest {
    public struct Result: Sendable {
        public var digest: String
        public var files: Int
        public var bytes: Int64
    }

    public static func digest(of root: String) throws(LayerError) -> String {
        try measure(root).digest
    }

    /// Digest, file count and bytes. With `allowSpecialFiles`, device nodes (a built system's
    /// /dev, overlayfs whiteouts) are hashed by their device number instead of being refused.
    public static func measure(_ root: String, allowSpecialFiles: Bool = false) throws(LayerError) -> Result {
        var hasher = SHA256()
        var result = Result(digest: "", files: 0, bytes: 0)
        try walk(root, relative: "", allowSpecialFiles: allowSpecialFiles, into: &hasher, result: &result)
        result.digest = hasher.finalize().hexString
        return result
    }

    private static func walk(_ root: String, relative: String, allowSpecialFiles: Bool, into hasher: inout SHA256, result: inout Result) throws(LayerError) {
        let path = relative.isEmpty ? root : "\(root)/\(relative)"
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: path).sorted() } catch {
            throw .notFound("cannot read directory \(path)")
        }
        for name in names {
            let child = relative.isEmpty ? name : "\(relative)/\(name)"
            var st = stat()
            guard lstat("\(root)/\(child)", &st) == 0 else { throw .io("lstat \(root)/\(child): \(String(cString: strerror(errno)))") }
            let mode = UInt32(st.st_mode)
            switch mode & UInt32(S_IFMT) {
            case UInt32(S_IFDIR):
                hasher.update(data: Array("d\0\(child)\0\(mode & 0o7777)\0".utf8))
                try walk(root, relative: child, allowSpecialFiles: allowSpecialFiles, into: &hasher, result: &result)
            case UInt32(S_IFREG):
                hasher.update(data: Array("f\0\(child)\0\(mode & 0o7777)\0\(st.st_size)\0".utf8))
                try hashFile("\(root)/\(child)", into: &hasher)
                result.files += 1
                result.bytes += Int64(st.st_size)
            case UInt32(S_IFLNK):
                let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: "\(root)/\(child)")) ?? ""
                hasher.update(data: Array("l\0\(child)\0\(target)\0".utf8))
                result.files += 1
            default:
                guard allowSpecialFiles else { throw .invalidArchive("`\(child)` is a device file, FIFO or socket") }
                hasher.update(data: Array("s\0\(child)\0\(mode)\0\(st.st_rdev)\0".utf8))
                result.files += 1
            }
        }
    }

    private static func hashFile(_ path: String, into hasher: inout SHA256) throws(LayerError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { throw .io("open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw .io("read \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { return }
            hasher.update(data: buffer[0..<n])
        }
    }
}

/// Copies a local directory into a tree with the same rules as archive extraction: no device
/// files, no symlink pointing outside the mount, the size limit, sanitized permissions.
enum DirectoryCopier {
    static func copy(from source: String, into destination: String, mount: String, limits: ExtractionLimits) throws(LayerError) -> ExtractionSummary {
        let writer = try TreeWriter(root: destination, mount: mount)
        defer { writer.close() }
        var summary = ExtractionSummary(files: 0, directories: 0, symlinks: 0, unpackedBytes: 0)
        try copyDirectory(source, relative: [], writer: writer, mount: mount, limits: limits, summary: &summary)
        return summary
    }

    private static func copyDirectory(_ root: String, relative: [String], writer: TreeWriter, mount: String,
                                      limits: ExtractionLimits, summary: inout ExtractionSummary) throws(LayerError) {
        let path = ([root] + relative).joined(separator: "/")
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: path).sorted() } catch {
            throw .notFound("cannot read directory \(path)")
        }
        for name in names {
            let components = relative + [name]
            let child = "\(path)/\(name)"
            var st = stat()
            guard lstat(child, &st) == 0 else { throw .io("lstat \(child): \(String(cString: strerror(errno)))") }
            guard summary.files + summary.directories + summary.symlinks < limits.maxEntries else {
                throw .invalidArchive("the directory has more than \(limits.maxEntries) entries")
            }
            switch UInt32(st.st_mode) & UInt32(S_IFMT) {
            case UInt32(S_IFDIR):
                try writer.makeDirectory(components, mode: UInt32(st.st_mode))
                summary.directories += 1
                try copyDirectory(root, relative: components, writer: writer, mount: mount, limits: limits, summary: &summary)
            case UInt32(S_IFREG):
                summary.unpackedBytes += Int64(st.st_size)
                guard summary.unpackedBytes <= limits.maxUnpackedBytes else {
                    throw .tooLarge("`\(root)` is larger than \(limits.maxUnpackedBytes) bytes")
                }
                let file = try writer.createFile(components, mode: UInt32(st.st_mode))
                defer { file.close() }
                try copyContents(of: child, to: file.fd)
                summary.files += 1
            case UInt32(S_IFLNK):
                let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: child)) ?? ""
                guard SafeZipExtractor.pointsInside(link: components, target: target, mount: mount) else {
                    throw .invalidArchive("symlink `\(components.joined(separator: "/"))` -> `\(target)` points outside /\(mount)")
                }
                try writer.createSymlink(components, target: target)
                summary.symlinks += 1
            default:
                throw .invalidArchive("`\(components.joined(separator: "/"))` is a device file, FIFO or socket")
            }
        }
    }

    private static func copyContents(of path: String, to output: Int32) throws(LayerError) {
        let input = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard input >= 0 else { throw .io("open \(path): \(String(cString: strerror(errno)))") }
        defer { close(input) }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw .io("read \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { return }
            let written = buffer.withUnsafeBytes { write(output, $0.baseAddress, n) }
            guard written == n else { throw .io("copy \(path): \(String(cString: strerror(errno)))") }
        }
    }
}
