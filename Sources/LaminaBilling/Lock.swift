import Synchronization

/// A plain lock for small critical sections.
final class NSLockLike: @unchecked Sendable {
    private let mutex = Mutex(())

    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        try mutex.withLock { _ in try body() }
    }
}
