#if canImport(Glibc)
import Glibc
#endif

/// An unprivileged uid/gid pair held exclusively by this process, for sandboxes not tied to a
/// tenant (`lamina sandbox run`). Each id in the range has a lock file; holding its flock is holding
/// the id, and the kernel releases it when the process ends, however it ends.
public final class UIDLease: Sendable {
    public let user: SandboxUser
    private let fd: Int32

    public static let defaultRange: ClosedRange<UInt32> = 200_000...299_999

    private init(user: SandboxUser, fd: Int32) {
        self.user = user
        self.fd = fd
    }

    deinit { close(fd) }

    public static func acquire(in range: ClosedRange<UInt32> = defaultRange, directory: String) throws(SandboxError) -> UIDLease {
        guard range.lowerBound > 0 else { throw .invalidSpec("the uid range must not include 0") }
        do { try FileIO.makeDirectories(directory, mode: 0o700) } catch { throw .system(error) }
        let count = UInt64(range.count)
        let start = UInt64.random(in: 0..<count)
        for offset in 0..<min(count, 4096) {
            let uid = range.lowerBound + UInt32((start + offset) % count)
            let path = "\(directory)/\(uid).lock"
            let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw .system(SystemError("open", path: path)) }
            if flock(fd, LOCK_EX | LOCK_NB) == 0 {
                return UIDLease(user: SandboxUser(uid: uid, gid: uid), fd: fd)
            }
            close(fd)
        }
        throw .unsupportedHost("no free uid in \(range.lowerBound)...\(range.upperBound)")
    }
}
