import Foundation
import GRDB

extension SQLiteStore: LayerRegistryStore {
    public func publishLayerVersion(_ layer: LayerVersion) async throws -> LayerVersion {
        try await write { db in
            // Version numbers are never reused, even after a version is deleted.
            let last = try Int.fetchOne(db, sql: "SELECT last_version FROM layer_names WHERE account_id = ? AND name = ?",
                                        arguments: [layer.accountId, layer.name]) ?? 0
            var published = layer
            published.version = last + 1
            try db.execute(sql: """
                INSERT INTO layer_names (account_id, name, last_version) VALUES (?, ?, ?)
                ON CONFLICT(account_id, name) DO UPDATE SET last_version = excluded.last_version
                """, arguments: [layer.accountId, layer.name, published.version])
            try db.execute(sql: """
                INSERT INTO layer_versions (account_id, name, version, description, compatible_runtimes, compatible_architectures,
                                            license_info, code_sha256, code_digest, code_size, unpacked_bytes, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [published.accountId, published.name, published.version, published.description,
                                 try Self.json(published.compatibleRuntimes), try Self.json(published.compatibleArchitectures),
                                 published.licenseInfo, published.codeSha256, published.codeDigest, published.codeSize,
                                 published.unpackedBytes, published.createdAt.timeIntervalSince1970])
            return published
        }
    }

    public func layerVersion(accountId: String, name: String, version: Int) async throws -> LayerVersion? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM layer_versions WHERE account_id = ? AND name = ? AND version = ?",
                             arguments: [accountId, name, version]).map(Self.layer)
        }
    }

    public func layerVersions(accountId: String, name: String) async throws -> [LayerVersion] {
        try await read { db in
            // Newest first, as ListLayerVersions returns them.
            try Row.fetchAll(db, sql: "SELECT * FROM layer_versions WHERE account_id = ? AND name = ? ORDER BY version DESC",
                             arguments: [accountId, name]).map(Self.layer)
        }
    }

    public func latestLayerVersions(accountId: String) async throws -> [LayerVersion] {
        try await read { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM layer_versions v WHERE account_id = ?
                AND version = (SELECT MAX(version) FROM layer_versions w WHERE w.account_id = v.account_id AND w.name = v.name)
                ORDER BY name
                """, arguments: [accountId]).map(Self.layer)
        }
    }

    public func deleteLayerVersion(accountId: String, name: String, version: Int) async throws {
        try await write { db in
            try db.execute(sql: "DELETE FROM layer_versions WHERE account_id = ? AND name = ? AND version = ?", arguments: [accountId, name, version])
        }
    }

    static func layer(_ row: Row) throws -> LayerVersion {
        LayerVersion(accountId: row["account_id"], name: row["name"], version: row["version"], description: row["description"],
                     compatibleRuntimes: try decode([String].self, row["compatible_runtimes"]),
                     compatibleArchitectures: try decode([String].self, row["compatible_architectures"]),
                     licenseInfo: row["license_info"], codeSha256: row["code_sha256"], codeDigest: row["code_digest"],
                     codeSize: row["code_size"], unpackedBytes: row["unpacked_bytes"], createdAt: Date(timeIntervalSince1970: row["created_at"]))
    }
}

extension SQLiteStore: AsyncQueueStore {
    public func enqueue(_ event: QueuedEvent) async throws -> Int64 {
        try await write { db in
            try db.execute(sql: """
                INSERT INTO async_events (account_id, function_name, qualifier, region, request_id, payload, enqueued_at, attempts, not_before)
                VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)
                """, arguments: [event.accountId, event.functionName, event.qualifier, event.region, event.requestId, Data(event.payload),
                                 event.enqueuedAt.timeIntervalSince1970, event.enqueuedAt.timeIntervalSince1970])
            return db.lastInsertedRowID
        }
    }

    public func leaseEvents(limit: Int, leaseSeconds: Double, now: Date) async throws -> [QueuedEvent] {
        try await write { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT * FROM async_events WHERE not_before <= ? AND lease_until <= ? ORDER BY id LIMIT ?
                """, arguments: [now.timeIntervalSince1970, now.timeIntervalSince1970, limit])
            let lease = now.timeIntervalSince1970 + leaseSeconds
            return try rows.map { row in
                try db.execute(sql: "UPDATE async_events SET lease_until = ? WHERE id = ?", arguments: [lease, row["id"] as Int64])
                return QueuedEvent(id: row["id"], accountId: row["account_id"], functionName: row["function_name"], qualifier: row["qualifier"],
                                   region: row["region"], requestId: row["request_id"], payload: Array(row["payload"] as Data),
                                   enqueuedAt: Date(timeIntervalSince1970: row["enqueued_at"]), attempts: row["attempts"])
            }
        }
    }

    public func complete(eventId: Int64) async throws {
        try await write { db in try db.execute(sql: "DELETE FROM async_events WHERE id = ?", arguments: [eventId]) }
    }

    public func retry(eventId: Int64, notBefore: Date) async throws {
        try await write { db in
            try db.execute(sql: "UPDATE async_events SET attempts = attempts + 1, not_before = ?, lease_until = 0 WHERE id = ?",
                           arguments: [notBefore.timeIntervalSince1970, eventId])
        }
    }

    public func pendingEventCount() async throws -> Int {
        try await read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM async_events") ?? 0 }
    }
}
