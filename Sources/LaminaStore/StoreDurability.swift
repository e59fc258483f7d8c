/// What a committed write survives. The store runs SQLite in WAL mode (DatabasePool's default),
/// where the two settings differ only in when the WAL is fsynced.
public enum StoreDurability: String, Sendable, CaseIterable {
    /// `synchronous=FULL`: every commit is fsynced before it returns, so it survives a power loss
    /// or kernel crash. Costs an fsync per transaction (the ledger's group commit shares it).
    case powerLoss = "power-loss"
    /// `synchronous=NORMAL`: a commit survives the daemon being killed (kill -9, a crash) because
    /// it is in the WAL in the page cache; the WAL is fsynced at checkpoints, so a power loss can
    /// drop the last commits (never corrupt the database).
    case processCrash = "process-crash"

    var synchronousPragma: String {
        switch self {
        case .powerLoss: "FULL"
        case .processCrash: "NORMAL"
        }
    }
}
