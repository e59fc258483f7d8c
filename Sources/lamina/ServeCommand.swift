#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import LaminaCommandLine
import Foundation
import LaminaAPI
import LaminaBilling
import LaminaHost
import LaminaStore
import Logging

/// `lamina serve`: the daemon.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the Lamina daemon: the Lambda API on loopback, with the embedded SQLite store.",
        discussion: """
        Point the AWS tools at it: aws lambda ... --endpoint-url http://HOST:PORT, or boto3's endpoint_url,
        with a tenant's keys (lamina tenant create). Stops cleanly on SIGTERM: in-flight invocations finish
        (up to --grace-period), then every environment is destroyed. Settings come from flags, or from a
        JSON file (--config) with the same names in camelCase (e.g. {"port": 9000, "gracePeriod": 30}).
        """
    )

    @OptionGroup var host: HostOptions
    @OptionGroup var rootfs: RootfsOptions

    @Option(name: [.customLong("host"), .customLong("listen")], help: "Address to listen on (loopback by default).") var listen: String?
    @Option(help: "Port to listen on.") var port: Int?
    @Option(help: "A JSON file with settings (flags win).") var config: String?
    @Option(help: "Seconds in-flight invocations get to finish on SIGTERM.") var gracePeriod: Double?
    @Option(help: "Seconds an idle environment is kept warm.") var idleTimeout: Double?
    @Option(help: "Memory all environments together may use, in MB.") var capacityMb: Int?
    @Option(help: "Asynchronous (Event) invocations run at once.") var asyncConcurrency: Int?
    @Option(help: "CPUs a function's init may use when its memory buys less (Lambda's init runs faster than its handler); 0: no boost.") var initCpus: Double?
    @Option(help: "Bearer token for the operator endpoints under /admin (or $LAMINA_ADMIN_TOKEN).") var adminToken: String?
    @Option(help: "A pricing file (JSON); AWS's us-east-1 prices by default.") var pricing: String?
    @Option(help: "Roll ledger entries older than this many days up into hourly aggregates.") var ledgerRetentionDays: Double?
    @Option(help: ArgumentHelp(
        "What a committed ledger record survives: power-loss (fsync per commit) or process-crash (faster; a power loss can drop the last commits).",
        valueName: "power-loss|process-crash")) var durability: StoreDurability?

    struct FileSettings: Decodable {
        var listen: String?
        var port: Int?
        var stateDir: String?
        var rootfsDir: String?
        var cgroupParent: String?
        var gracePeriod: Double?
        var idleTimeout: Double?
        var capacityMB: Int?
        var asyncConcurrency: Int?
        var initCPUs: Double?
        var adminToken: String?
        var initTimeout: Double?
        var pricing: String?
        var ledgerRetentionDays: Double?
        var durability: String?
    }

    func validate() throws {
        if let port, !(1...65535).contains(port) { throw ValidationError("--port must be 1 to 65535") }
        if let gracePeriod, gracePeriod < 0 { throw ValidationError("--grace-period must not be negative") }
        if let idleTimeout, idleTimeout <= 0 { throw ValidationError("--idle-timeout must be positive") }
        if let capacityMb, capacityMb < 128 { throw ValidationError("--capacity-mb must be at least 128") }
        if let asyncConcurrency, asyncConcurrency < 1 { throw ValidationError("--async-concurrency must be at least 1") }
        if let initCpus, !(initCpus == 0 || (0.01...64).contains(initCpus)) { throw ValidationError("--init-cpus must be 0 (no boost) or 0.01 to 64") }
    }

    func run() async throws {
        bootstrapLogging(verbose: host.verbose, level: .info)
        var file = FileSettings()
        if let config {
            guard let data = FileManager.default.contents(atPath: config) else { throw UsageError("cannot read the config file `\(config)`") }
            do { file = try JSONDecoder().decode(FileSettings.self, from: data) } catch {
                throw UsageError("the config file `\(config)` is not valid: \(error)")
            }
        }
        var settings = DaemonConfiguration()
        settings.host = listen ?? file.listen ?? "127.0.0.1"
        settings.port = port ?? file.port ?? 9000
        settings.stateDirectory = host.stateDir != HostOptions.defaultStateDirectory ? host.stateDir : (file.stateDir ?? host.stateDir)
        settings.rootfsDirectory = rootfs.rootfsDir ?? file.rootfsDir ?? environment("LAMINA_ROOTFS_DIR")
        settings.cgroupParent = host.cgroupParent != HostOptions.defaultCgroupParent ? host.cgroupParent : (file.cgroupParent ?? host.cgroupParent)
        settings.gracePeriodSeconds = gracePeriod ?? file.gracePeriod ?? 30
        if let idle = idleTimeout ?? file.idleTimeout { settings.invoker.idleTimeoutSeconds = idle }
        if let capacity = capacityMb ?? file.capacityMB { settings.invoker.capacityMB = capacity }
        if let initTimeout = file.initTimeout { settings.invoker.initTimeoutSeconds = initTimeout }
        if let cpus = initCpus ?? file.initCPUs { settings.invoker.initCPUs = cpus > 0 ? cpus : nil }
        settings.asyncConcurrency = asyncConcurrency ?? file.asyncConcurrency ?? 4
        settings.adminToken = adminToken ?? file.adminToken ?? environment("LAMINA_ADMIN_TOKEN")
        if let path = pricing ?? file.pricing {
            do { settings.pricing = try Pricing.load(path: path) } catch { throw UsageError("\(error)") }
        }
        settings.ledgerRetentionDays = ledgerRetentionDays ?? file.ledgerRetentionDays
        if let durability { settings.durability = durability } else if let name = file.durability {
            guard let parsed = StoreDurability(rawValue: name) else { throw UsageError("durability in `\(config ?? "")` must be power-loss or process-crash") }
            settings.durability = parsed
        }

        let logger = Logger(label: "lamina")
        let daemon: LaminaDaemon
        do { daemon = try LaminaDaemon(configuration: settings, logger: logger) } catch {
            throw CommandFailure(description: "cannot start: \(error)", status: 1)
        }
        do { try await daemon.run() } catch {
            throw CommandFailure(description: "\(error)", status: 1)
        }
    }
}

/// Tenants (accounts) and their access keys.
struct TenantCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tenant",
        abstract: "Create and list tenants, and manage their access keys.",
        subcommands: [TenantCreate.self, TenantList.self, TenantKeys.self]
    )

    /// Tenants' sandboxes run as uids from this range, one per tenant; `lamina sandbox run` uses
    /// 200000-299999, so the two never meet.
    static let uidRange: ClosedRange<UInt32> = 300_000...399_999

    static func openStore(_ host: HostOptions) throws -> SQLiteStore {
        try FileManager.default.createDirectory(atPath: host.stateDir, withIntermediateDirectories: true)
        return try SQLiteStore(path: "\(host.stateDir)/lamina.db")
    }
}

struct TenantCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a tenant: an account id and its first access key.")

    @OptionGroup var host: HostOptions
    @Argument(help: "The tenant's name.") var name: String
    @Option(help: "Concurrent executions the account may use.") var concurrency: Int = 1000
    @Flag(help: "Print one JSON object (accountId, accessKeyId, secretAccessKey).") var json = false

    func validate() throws {
        guard !name.isEmpty, name.count <= 64, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
            throw ValidationError("the tenant name must be 1 to 64 letters, digits, '-', '_' or '.'")
        }
        guard (1...100_000).contains(concurrency) else { throw ValidationError("--concurrency must be 1 to 100000") }
    }

    func run() async throws {
        let store = try TenantCommand.openStore(host)
        let (tenant, key): (Tenant, AccessKey)
        do { (tenant, key) = try await store.createTenant(name: name, concurrencyLimit: concurrency, uidRange: TenantCommand.uidRange) } catch {
            throw CommandFailure(description: "\(error)", status: 1)
        }
        if json {
            print("{\"accountId\":\"\(tenant.accountId)\",\"accessKeyId\":\"\(key.accessKeyId)\",\"secretAccessKey\":\"\(key.secretAccessKey)\",\"name\":\"\(tenant.name)\"}")
        } else {
            print("tenant \(tenant.name): account \(tenant.accountId), sandbox uid \(tenant.uid)")
            print("access key id:     \(key.accessKeyId)")
            print("secret access key: \(key.secretAccessKey)")
        }
    }
}

struct TenantList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List tenants.")

    @OptionGroup var host: HostOptions

    func run() async throws {
        let store = try TenantCommand.openStore(host)
        let tenants = try await store.tenants()
        var rows = [["NAME", "ACCOUNT", "UID", "CONCURRENCY", "KEYS", "CREATED"]]
        for tenant in tenants {
            let keys = try await store.accessKeys(accountId: tenant.accountId)
            rows.append([tenant.name, tenant.accountId, String(tenant.uid), String(tenant.concurrencyLimit),
                         "\(keys.filter { $0.status == .active }.count) active", ISO8601DateFormatter().string(from: tenant.createdAt)])
        }
        printTable(rows)
    }
}

struct TenantKeys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "List, create, rotate, revoke or delete a tenant's access keys.",
        subcommands: [KeysList.self, KeysCreate.self, KeysRotate.self, KeysRevoke.self, KeysDelete.self]
    )

    static func tenant(_ store: SQLiteStore, _ name: String) async throws -> Tenant {
        guard let tenant = try await store.tenant(named: name) else { throw UsageError("no tenant named `\(name)`") }
        return tenant
    }

    static func printKey(_ key: AccessKey, json: Bool) {
        if json {
            print("{\"accountId\":\"\(key.accountId)\",\"accessKeyId\":\"\(key.accessKeyId)\",\"secretAccessKey\":\"\(key.secretAccessKey)\"}")
        } else {
            print("access key id:     \(key.accessKeyId)")
            print("secret access key: \(key.secretAccessKey)")
        }
    }
}

struct KeysList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List a tenant's keys (secrets are not shown).")
    @OptionGroup var host: HostOptions
    @Argument(help: "The tenant's name.") var tenant: String

    func run() async throws {
        let store = try TenantCommand.openStore(host)
        let found = try await TenantKeys.tenant(store, tenant)
        var rows = [["ACCESS KEY ID", "STATUS", "CREATED"]]
        for key in try await store.accessKeys(accountId: found.accountId) {
            rows.append([key.accessKeyId, key.status.rawValue, ISO8601DateFormatter().string(from: key.createdAt)])
        }
        printTable(rows)
    }
}

struct KeysCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create another access key.")
    @OptionGroup var host: HostOptions
    @Argument(help: "The tenant's name.") var tenant: String
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let store = try TenantCommand.openStore(host)
        let found = try await TenantKeys.tenant(store, tenant)
        TenantKeys.printKey(try await store.createAccessKey(accountId: found.accountId), json: json)
    }
}

struct KeysRotate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate", abstract: "Create a new key and deactivate the tenant's other active keys.")
    @OptionGroup var host: HostOptions
    @Argument(help: "The tenant's name.") var tenant: String
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let store = try TenantCommand.openStore(host)
        let found = try await TenantKeys.tenant(store, tenant)
        let fresh = try await store.createAccessKey(accountId: found.accountId)
        for key in try await store.accessKeys(accountId: found.accountId) where key.accessKeyId != fresh.accessKeyId && key.status == .active {
            try await store.setAccessKeyStatus(id: key.accessKeyId, status: .inactive)
        }
        TenantKeys.printKey(fresh, json: json)
    }
}

struct KeysRevoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Deactivate an access key (requests signed with it fail).")
    @OptionGroup var host: HostOptions
    @Argument(help: "The access key id.") var accessKeyId: String

    func run() async throws {
        let store = try TenantCommand.openStore(host)
        do { try await store.setAccessKeyStatus(id: accessKeyId, status: .inactive) } catch { throw UsageError("\(error)") }
        print("revoked \(accessKeyId)")
    }
}

struct KeysDelete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete an access key.")
    @OptionGroup var host: HostOptions
    @Argument(help: "The access key id.") var accessKeyId: String

    func run() async throws {
        let store = try TenantCommand.openStore(host)
        do { try await store.deleteAccessKey(id: accessKeyId) } catch { throw UsageError("\(error)") }
        print("deleted \(accessKeyId)")
    }
}

extension StoreDurability: ExpressibleByArgument {}
