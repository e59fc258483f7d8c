#if canImport(Glibc)
import Glibc
#endif

/// Small, exact file helpers for kernel interfaces (cgroupfs, procfs) where Foundation's
/// buffering and encoding guesses only get in the way.
enum FileIO {
    static func read(_ path: String, limit: Int = 1 << 20) throws(SystemError) -> String {
        String(decoding: try readBytes(path, limit: limit), as: UTF8.self)
    }

    static func readBytes(_ path: String, limit: Int = 1 << 20) throws(SystemError) -> [UInt8] {
        let fd = retryingEINTR { open(path, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else { throw SystemError("open", path: path) }
        defer { close(fd) }
        return try readBytes(fd: fd, path: path, limit: limit)
    }

    static func read(fd: Int32, path: String, limit: Int = 1 << 20, offset: Int? = nil) throws(SystemError) -> String {
        String(decoding: try readBytes(fd: fd, path: path, limit: limit, offset: offset), as: UTF8.self)
    }

    /// Reads to the end (kernel files report size 0, so the size is never trusted), from `offset`
    /// with pread when given.
    static func readBytes(fd: Int32, path: String, limit: Int = 1 << 20, offset: Int? = nil) throws(SystemError) -> [UInt8] {
        var bytes = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        var position = offset ?? 0
        while bytes.count < limit {
            let n = chunk.withUnsafeMutableBytes { buffer in
                retryingEINTR {
                    offset == nil
                        ? Glibc.read(fd, buffer.baseAddress, buffer.count)
                        : pread(fd, buffer.baseAddress, buffer.count, off_t(position))
                }
            }
            if n < 0 { throw SystemError("read", path: path) }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
            position += n
        }
        return bytes
    }

    static func write(_ path: String, _ text: String) throws(SystemError) {
        let fd = retryingEINTR { open(path, O_WRONLY | O_CLOEXEC) }
        guard fd >= 0 else { throw SystemError("open", path: path) }
        defer { close(fd) }
        try write(fd: fd, path: path, text)
    }

    static func write(fd: Int32, path: String, _ text: String) throws(SystemError) {
        var text = text
        let n = text.withUTF8 { buffer in retryingEINTR { Glibc.write(fd, buffer.baseAddress, buffer.count) } }
        if n < 0 { throw SystemError("write `\(text)` to", path: path) }
    }

    /// Writes a whole file atomically (temporary file + rename), for state the host must not half-write.
    static func writeAtomically(_ path: String, _ text: String, mode: mode_t = 0o644) throws(SystemError) {
        try writeAtomically(path, bytes: Array(text.utf8), mode: mode)
    }

    static func writeAtomically(_ path: String, bytes: [UInt8], mode: mode_t = 0o644) throws(SystemError) {
        let temporary = path + ".tmp-\(getpid())"
        let fd = retryingEINTR { open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode) }
        guard fd >= 0 else { throw SystemError("create", path: temporary) }
        let written = bytes.withUnsafeBytes { buffer in retryingEINTR { Glibc.write(fd, buffer.baseAddress, buffer.count) } }
        close(fd)
        guard written == bytes.count else {
            let error = SystemError("write", path: temporary)
            unlink(temporary)
            throw error
        }
        guard rename(temporary, path) == 0 else {
            let error = SystemError("rename", path: path)
            unlink(temporary)
            throw error
        }
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// mkdir -p.
    static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(SystemError) {
        if isDirectory(path) { return }
        var prefix = ""
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += "/" + component
            if mkdir(prefix, mode) != 0 && errno != EEXIST {
                throw SystemError("mkdir", path: prefix)
            }
        }
    }

    /// Names in a directory, without `.` and `..`; a missing directory is empty.
    static func list(_ path: String) throws(SystemError) -> [String] {
        guard let dir = opendir(path) else {
            if errno == ENOENT { return [] }
            throw SystemError("opendir", path: path)
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// rm -rf without following symlinks; refuses to cross into a mount point.
    static func removeTree(_ path: String) throws(SystemError) {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            if errno == ENOENT { return }
            throw SystemError("lstat", path: path)
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            for name in try list(path) {
                var child = stat()
                let childPath = path + "/" + name
                if lstat(childPath, &child) == 0 && (child.st_mode & S_IFMT) == S_IFDIR && child.st_dev != st.st_dev {
                    throw SystemError("refusing to remove a mount point", path: childPath, errno: EBUSY)
                }
                try removeTree(childPath)
            }
            if rmdir(path) != 0 && errno != ENOENT { throw SystemError("rmdir", path: path) }
        } else if unlink(path) != 0 && errno != ENOENT {
            throw SystemError("unlink", path: path)
        }
    }
}
