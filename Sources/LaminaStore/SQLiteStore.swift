import Foundation
import GRDB

/// The embedded store: one SQLite database (WAL) through GRDB.
public final class SQLiteStore: Sendable {
    let pool: DatabasePool
    public let path: String

    /// Opens (creating if needed) the database at `path` and migrates it to the current schema.
    public init(path: String, durability: StoreDurability = .powerLoss) throws {
        self.path = path
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(durability.synchronousPragma)")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            try Migrations.migrator.migrate(pool)
        } catch {
            throw StoreError.database("cannot open the store at \(path): \(error)")
        }
    }

    /// Runs a read in a snapshot.
    func read<T: Sendable>(_ body: @Sendable @escaping (Database) throws -> T) async throws -> T {
        do { return try await pool.read(body) } catch let error as StoreError { throw error } catch {
            throw StoreError.database("\(error)")
        }
    }

    /// Runs a write in one transaction.
    func write<T: Sendable>(_ body: @Sendable @escaping (Database) throws -> T) async throws -> T {
        do { return try await pool.write(body) } catch let error as StoreError { throw error } catch {
            throw StoreError.database("\(error)")
        }
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()

    static func json<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        try JSONDecoder().decode(type, from: Data(text.utf8))
    }

    /// A random identifier like Lambda's RevisionId (a UUID).
    static func revisionId() -> String { UUID().uuidString.lowercased() }
}

enum Migrations {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: tenants, functions, layers, async queue") { db in
            try db.execute(sql: """
                CREATE TABLE tenants (
                    account_id TEXT PRIMARY KEY,
                    name TEXT NOT NULL UNIQUE,
                    uid INTEGER NOT NULL UNIQUE,
                    concurrency_limit INTEGER NOT NULL,
                    created_at REAL NOT NULL
                );
                CREATE TABLE access_keys (
                    access_key_id TEXT PRIMARY KEY,
                    account_id TEXT NOT NULL REFERENCES tenants(account_id) ON DELETE CASCADE,
                    secret TEXT NOT NULL,
                    status TEXT NOT NULL,
                    created_at REAL NOT NULL
                );
                CREATE INDEX access_keys_by_account ON access_keys(account_id);
                CREATE TABLE functions (
                    account_id TEXT NOT NULL REFERENCES tenants(account_id) ON DELETE CASCADE,
                    name TEXT NOT NULL,
                    created_at REAL NOT NULL,
                    reserved_concurrency INTEGER,
                    tags TEXT NOT NULL DEFAULT '{}',
                    last_version INTEGER NOT NULL DEFAULT 0,
                    PRIMARY KEY (account_id, name)
                );
                CREATE TABLE function_versions (
                    account_id TEXT NOT NULL,
                    function_name TEXT NOT NULL,
                    version TEXT NOT NULL,
                    config TEXT NOT NULL,
                    last_modified REAL NOT NULL,
                    revision_id TEXT NOT NULL,
                    version_description TEXT,
                    PRIMARY KEY (account_id, function_name, version),
                    FOREIGN KEY (account_id, function_name) REFERENCES functions(account_id, name) ON DELETE CASCADE
                );
                CREATE TABLE aliases (
                    account_id TEXT NOT NULL,
                    function_name TEXT NOT NULL,
                    name TEXT NOT NULL,
                    function_version TEXT NOT NULL,
                    description TEXT NOT NULL,
                    routing TEXT NOT NULL DEFAULT '{}',
                    revision_id TEXT NOT NULL,
                    PRIMARY KEY (account_id, function_name, name),
                    FOREIGN KEY (account_id, function_name) REFERENCES functions(account_id, name) ON DELETE CASCADE
                );
                CREATE TABLE layer_names (
                    account_id TEXT NOT NULL REFERENCES tenants(account_id) ON DELETE CASCADE,
                    name TEXT NOT NULL,
                    last_version INTEGER NOT NULL,
                    PRIMARY KEY (account_id, name)
                );
                CREATE TABLE layer_versions (
                    account_id TEXT NOT NULL,
                    name TEXT NOT NULL,
                    version INTEGER NOT NULL,
                    description TEXT NOT NULL,
                    compatible_runtimes TEXT NOT NULL,
                    compatible_architectures TEXT NOT NULL,
                    license_info TEXT,
                    code_sha256 TEXT NOT NULL,
                    code_digest TEXT NOT NULL,
                    code_size INTEGER NOT NULL,
                    unpacked_bytes INTEGER NOT NULL,
                    created_at REAL NOT NULL,
                    PRIMARY KEY (account_id, name, version)
                );
                CREATE TABLE async_events (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    account_id TEXT NOT NULL,
                    function_name TEXT NOT NULL,
                    qualifier TEXT,
                    region TEXT NOT NULL,
                    request_id TEXT NOT NULL,
                    payload BLOB NOT NULL,
                    enqueued_at REAL NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    not_before REAL NOT NULL,
                    lease_until REAL NOT NULL DEFAULT 0
                );
                CREATE INDEX async_events_due ON async_events(not_before, lease_until);
                """)
        }
        migrator.registerMigration("v2: billing ledger") { db in
            try db.execute(sql: """
                CREATE TABLE ledger (
                    request_id TEXT NOT NULL,
                    attempt INTEGER NOT NULL,
                    account_id TEXT NOT NULL,
                    function_arn TEXT NOT NULL,
                    function_name TEXT NOT NULL,
                    executed_version TEXT NOT NULL,
                    architecture TEXT NOT NULL,
                    start_time_ms INTEGER NOT NULL,
                    duration_us INTEGER NOT NULL,
                    billed_ms INTEGER NOT NULL,
                    memory_mb INTEGER NOT NULL,
                    init_us INTEGER NOT NULL,
                    init_billed INTEGER NOT NULL,
                    max_memory_used_mb INTEGER NOT NULL,
                    cpu_us INTEGER NOT NULL,
                    outcome TEXT NOT NULL,
                    requests INTEGER NOT NULL,
                    PRIMARY KEY (request_id, attempt)
                ) WITHOUT ROWID;
                CREATE INDEX ledger_by_start ON ledger(start_time_ms);
                CREATE TABLE ledger_hourly (
                    hour_start_ms INTEGER NOT NULL,
                    account_id TEXT NOT NULL,
                    function_arn TEXT NOT NULL,
                    function_name TEXT NOT NULL,
                    architecture TEXT NOT NULL,
                    requests INTEGER NOT NULL,
                    billed_ms INTEGER NOT NULL,
                    mb_ms INTEGER NOT NULL,
                    duration_us INTEGER NOT NULL,
                    init_us INTEGER NOT NULL,
                    cpu_us INTEGER NOT NULL,
                    PRIMARY KEY (hour_start_ms, account_id, function_arn, architecture)
                );
                """)
        }
        return migrator
    }
}
