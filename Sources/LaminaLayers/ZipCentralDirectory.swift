#if canImport(Glibc)
import Glibc
#endif

/// The central directory of a ZIP archive, read without trusting it.
///
/// ZIPFoundation does the decompression, but it does not expose an entry's raw Unix mode (the type
/// bits that mark device files, FIFOs and sockets), so this small reader walks the central
/// directory itself to see every entry exactly as the archive declares it, before anything is
/// written to disk.
struct ZipCentralDirectory {
    struct Entry {
        var name: [UInt8]
        var compressedSize: UInt64
        var uncompressedSize: UInt64
        /// Upper 16 bits of the external attributes when the archive was made on Unix, else nil.
        var unixMode: UInt32?
    }

    var entries: [Entry]

    enum Failure: Error {
        case notAZip
        case truncated
    }

    /// Reads the central directory of the archive at `path` (at most `maxEntries` + 1 entries).
    static func read(path: String, maxEntries: Int) throws -> ZipCentralDirectory {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure.notAZip }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw Failure.notAZip }
        let size = Int64(st.st_size)
        guard size >= 22 else { throw Failure.notAZip }

        // The end-of-central-directory record is in the last 64 KiB + 22 bytes (comment <= 65535).
        let tailLength = Int(min(size, 65557))
        let tail = try pread(fd, count: tailLength, at: size - Int64(tailLength))
        guard let eocd = stride(from: tail.count - 22, through: 0, by: -1).first(where: { tail.u32($0) == 0x0605_4b50 }) else {
            throw Failure.notAZip
        }
        var count = UInt64(tail.u16(eocd + 10))
        var directorySize = UInt64(tail.u32(eocd + 12))
        var directoryOffset = UInt64(tail.u32(eocd + 16))

        // ZIP64: the locator sits right before the classic record.
        if eocd >= 20, tail.u32(eocd - 20) == 0x0706_4b50 {
            let recordOffset = Int64(tail.u64(eocd - 20 + 8))
            let record = try pread(fd, count: 56, at: recordOffset)
            guard record.u32(0) == 0x0606_4b50 else { throw Failure.notAZip }
            count = record.u64(32)
            directorySize = record.u64(40)
            directoryOffset = record.u64(48)
        }
        guard count <= UInt64(maxEntries) + 1 else {
            return ZipCentralDirectory(entries: Array(repeating: Entry(name: [], compressedSize: 0, uncompressedSize: 0, unixMode: nil), count: maxEntries + 1))
        }
        guard directoryOffset + directorySize <= UInt64(size), directorySize < 1 << 30 else { throw Failure.truncated }
        let directory = try pread(fd, count: Int(directorySize), at: Int64(directoryOffset))

        var entries: [Entry] = []
        var position = 0
        for _ in 0..<count {
            guard position + 46 <= directory.count, directory.u32(position) == 0x0201_4b50 else { throw Failure.truncated }
            let madeBy = directory.u16(position + 4) >> 8
            var compressed = UInt64(directory.u32(position + 20))
            var uncompressed = UInt64(directory.u32(position + 24))
            let nameLength = Int(directory.u16(position + 28))
            let extraLength = Int(directory.u16(position + 30))
            let commentLength = Int(directory.u16(position + 32))
            let external = directory.u32(position + 38)
            let nameStart = position + 46
            guard nameStart + nameLength + extraLength + commentLength <= directory.count else { throw Failure.truncated }
            let name = Array(directory[nameStart..<(nameStart + nameLength)])
            // ZIP64 extended information replaces sizes that are 0xFFFFFFFF.
            var extra = nameStart + nameLength
            let extraEnd = extra + extraLength
            while extra + 4 <= extraEnd {
                let tag = directory.u16(extra), length = Int(directory.u16(extra + 2))
                if tag == 0x0001 {
                    var field = extra + 4
                    if uncompressed == 0xFFFF_FFFF, field + 8 <= extraEnd { uncompressed = directory.u64(field); field += 8 }
                    if compressed == 0xFFFF_FFFF, field + 8 <= extraEnd { compressed = directory.u64(field) }
                }
                extra += 4 + length
            }
            let unix = madeBy == 3 || madeBy == 19 // Unix, OS X
            entries.append(Entry(name: name, compressedSize: compressed, uncompressedSize: uncompressed,
                                 unixMode: unix ? external >> 16 : nil))
            position = extraEnd + commentLength
        }
        return ZipCentralDirectory(entries: entries)
    }

    private static func pread(_ fd: Int32, count: Int, at offset: Int64) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = buffer.withUnsafeMutableBytes { Glibc.pread(fd, $0.baseAddress! + done, count - done, off_t(offset) + off_t(done)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw Failure.truncated }
            done += n
        }
        return buffer
    }
}

extension Array where Element == UInt8 {
    func u16(_ at: Int) -> UInt16 { UInt16(self[at]) | UInt16(self[at + 1]) << 8 }
    func u32(_ at: Int) -> UInt32 { UInt32(u16(at)) | UInt32(u16(at + 2)) << 16 }
    func u64(_ at: Int) -> UInt64 { UInt64(u32(at)) | UInt64(u32(at + 4)) << 32 }
}
