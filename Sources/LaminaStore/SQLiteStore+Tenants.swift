import Foundation
import GRDB

extension SQLiteStore: TenantStore {
    public func createTenant(name: String, concurrencyLimit: Int, uidRange: ClosedRange<UInt32>) async throws -> (Tenant, AccessKey) {
        try await write { db in
            if try Row.fetchOne(db, sql: "SELECT 1 FROM tenants WHERE name = ?", arguments: [name]) != nil {
                throw StoreError.conflict("a tenant named `\(name)` already exists")
            }
            // A fresh 12-digit account id and the next free uid of the range.
            var accountId: String
            repeat {
                accountId = String(UInt64.random(in: 100_000_000_000...999_999_999_999))
            } while try Row.fetchOne(db, sql: "SELECT 1 FROM tenants WHERE account_id = ?", arguments: [accountId]) != nil
            let highest = try Int64.fetchOne(db, sql: "SELECT MAX(uid) FROM tenants") ?? Int64(uidRange.lowerBound) - 1
            let uid = UInt32(max(Int64(uidRange.lowerBound), highest + 1))
            guard uidRange.contains(uid) else { throw StoreError.invalid("no uid left in \(uidRange) for a new tenant") }
            let tenant = Tenant(accountId: accountId, name: name, uid: uid, concurrencyLimit: concurrencyLimit, createdAt: Date())
            try db.execute(sql: "INSERT INTO tenants (account_id, name, uid, concurrency_limit, created_at) VALUES (?, ?, ?, ?, ?)",
                           arguments: [accountId, name, Int64(uid), concurrencyLimit, tenant.createdAt.timeIntervalSince1970])
            let key = try Self.insertKey(db, accountId: accountId)
            return (tenant, key)
        }
    }

    public func tenants() async throws -> [Tenant] {
        try await read { db in try Row.fetchAll(db, sql: "SELECT * FROM tenants ORDER BY name").map(Self.tenant) }
    }

    public func tenant(named name: String) async throws -> Tenant? {
        try await read { db in try Row.fetchOne(db, sql: "SELECT * FROM tenants WHERE name = ?", arguments: [name]).map(Self.tenant) }
    }

    public func tenant(accountId: String) async throws -> Tenant? {
        try await read { db in try Row.fetchOne(db, sql: "SELECT * FROM tenants WHERE account_id = ?", arguments: [accountId]).map(Self.tenant) }
    }

    public func createAccessKey(accountId: String) async throws -> AccessKey {
        try await write { db in
            guard try Row.fetchOne(db, sql: "SELECT 1 FROM tenants WHERE account_id = ?", arguments: [accountId]) != nil else {
                throw StoreError.notFound("no tenant with account id \(accountId)")
            }
            return try Self.insertKey(db, accountId: accountId)
        }
    }

    public func accessKeys(accountId: String) async throws -> [AccessKey] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM access_keys WHERE account_id = ? ORDER BY created_at", arguments: [accountId]).map(Self.key)
        }
    }

    public func accessKey(id: String) async throws -> AccessKey? {
        try await read { db in try Row.fetchOne(db, sql: "SELECT * FROM access_keys WHERE access_key_id = ?", arguments: [id]).map(Self.key) }
    }

    public func setAccessKeyStatus(id: String, status: AccessKey.Status) async throws {
        try await write { db in
            try db.execute(sql: "UPDATE access_keys SET status = ? WHERE access_key_id = ?", arguments: [status.rawValue, id])
            guard db.changesCount == 1 else { throw StoreError.notFound("no access key \(id)") }
        }
    }

    public func deleteAccessKey(id: String) async throws {
        try await write { db in
            try db.execute(sql: "DELETE FROM access_keys WHERE access_key_id = ?", arguments: [id])
            guard db.changesCount == 1 else { throw StoreError.notFound("no access key \(id)") }
        }
    }

    /// AWS-shaped keys: `AKIA` + 16 base32 characters, and a 40-character secret.
    static func insertKey(_ db: Database, accountId: String) throws -> AccessKey {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        let secretAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        var generator = SystemRandomNumberGenerator()
        let id = "AKIA" + String((0..<16).map { _ in alphabet.randomElement(using: &generator)! })
        let secret = String((0..<40).map { _ in secretAlphabet.randomElement(using: &generator)! })
        let key = AccessKey(accessKeyId: id, secretAccessKey: secret, accountId: accountId, status: .active, createdAt: Date())
        try db.execute(sql: "INSERT INTO access_keys (access_key_id, account_id, secret, status, created_at) VALUES (?, ?, ?, ?, ?)",
                       arguments: [id, accountId, secret, key.status.rawValue, key.createdAt.timeIntervalSince1970])
        return key
    }

    static func tenant(_ row: Row) -> Tenant {
        Tenant(accountId: row["account_id"], name: row["name"], uid: UInt32(row["uid"] as Int64),
               concurrencyLimit: row["concurrency_limit"], createdAt: Date(timeIntervalSince1970: row["created_at"]))
    }

    static func key(_ row: Row) -> AccessKey {
        AccessKey(accessKeyId: row["access_key_id"], secretAccessKey: row["secret"], accountId: row["account_id"],
                  status: AccessKey.Status(rawValue: row["status"]) ?? .inactive, createdAt: Date(timeIntervalSince1970: row["created_at"]))
    }
}
