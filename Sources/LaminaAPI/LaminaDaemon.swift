#if canImport(Glibc)
import Glibc
#endif
import Foundation
import HTTPTypes
import Hummingbird
import LaminaBilling
import LaminaHost
import LaminaLayers
import LaminaRootfs
import LaminaSandbox
import LaminaStore
import Logging
import NIOCore
import ServiceLifecycle

public struct DaemonConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 9000
    public var stateDirectory = "/var/lib/lamina"
    public var rootfsDirectory: String?
    public var cgroupParent = "lamina"
    public var invoker = InvokerConfiguration()
    public var api = ControlAPIConfiguration()
    public var asyncConcurrency = 4
    /// How long in-flight invocations may take to finish on SIGTERM.
    public var gracePeriodSeconds: Double = 30
    /// Bearer token for the operator endpoints under /admin (none: they are off).
    public var adminToken: String?
    /// Prices for exports (and whether init is billed, which the invoker meters accordingly).
    public var pricing = Pricing.aws
    /// Ledger entries older than this many days are rolled up into hourly aggregates (nil: never).
    public var ledgerRetentionDays: Double?
    /// What a committed write (a ledger record, a deployment) survives.
    public var durability: StoreDurability = .powerLoss

    public init() {}

    public var databasePath: String { "\(stateDirectory)/lamina.db" }
    public var resolvedRootfsDirectory: String { rootfsDirectory ?? "\(stateDirectory)/rootfs" }
}

/// `lamina serve`: the store, the sandboxes, the invoker, the asynchronous queue and the HTTP API,
/// wired together, until SIGTERM or SIGINT; then in-flight invocations finish (up to the grace
/// period) and every environment is destroyed.
public final class LaminaDaemon: Sendable {
    public let configuration: DaemonConfiguration
    let logger: Logger
    let store: SQLiteStore
    let layers: LayerStore
    let sandboxes: SandboxHost
    let invoker: Invoker
    let resolver: FunctionResolver
    let worker: AsyncInvocationWorker
    let api: ControlAPI
    let metrics: LaminaMetrics
    let meterSink: any MeterSink

    public init(configuration: DaemonConfiguration, meterSink: (any MeterSink)? = nil, logger: Logger = Logger(label: "lamina")) throws {
        self.configuration = configuration
        self.logger = logger
        try FileManager.default.createDirectory(atPath: configuration.stateDirectory, withIntermediateDirectories: true)
        store = try SQLiteStore(path: configuration.databasePath, durability: configuration.durability)
        layers = try LayerStore(root: "\(configuration.stateDirectory)/layers")
        sandboxes = try SandboxHost(configuration: SandboxHostConfiguration(stateDirectory: configuration.stateDirectory,
                                                                             cgroupParent: configuration.cgroupParent))
        // A crashed predecessor's environments: gone before anything new starts.
        let orphans = sandboxes.collectOrphans()
        if !orphans.isEmpty {
            logger.notice("removed what a previous daemon left behind", metadata: [
                "processes": "\(orphans.killedProcesses.count)", "cgroups": "\(orphans.removedCgroups.count)",
                "mounts": "\(orphans.unmounted.count)", "directories": "\(orphans.removedDirectories.count)"])
        }
        try sandboxes.warmUp()
        let rootfs = RootfsCatalog(directory: configuration.resolvedRootfsDirectory)
        if rootfs.layer(named: "base") == nil {
            logger.warning("no root filesystem layers are built: run `lamina rootfs build`", metadata: ["directory": "\(rootfs.directory)"])
        }
        let meters = meterSink ?? LedgerWriter(store: store)
        self.meterSink = meters
        var invokerConfiguration = configuration.invoker
        invokerConfiguration.initBilled = configuration.pricing.billInit
        metrics = LaminaMetrics()
        invoker = Invoker(configuration: invokerConfiguration, sandboxes: sandboxes, layers: layers, rootfs: rootfs,
                          logSink: FileLogSink(root: "\(configuration.stateDirectory)/logs"), meterSink: meters, logger: logger)
        resolver = FunctionResolver(functions: store, tenants: store, layers: layers)
        var workerConfiguration = AsyncInvocationWorker.Configuration()
        workerConfiguration.concurrency = configuration.asyncConcurrency
        worker = AsyncInvocationWorker(queue: store, resolver: resolver, invoker: invoker, configuration: workerConfiguration, logger: logger)
        api = ControlAPI(configuration: configuration.api, store: store, layers: layers, invoker: invoker, resolver: resolver,
                         asyncWorker: worker, metrics: metrics, logger: logger)
    }

    /// Serves until SIGTERM/SIGINT.
    public func run() async throws {
        let responder = DaemonResponder(api: api, daemon: self)
        var services: [any Service] = [WorkerService(worker: worker)]
        if let days = configuration.ledgerRetentionDays { services.append(RetentionService(store: store, days: days, logger: logger)) }
        let address = "\(configuration.host):\(configuration.port)"
        let app = Application(
            responder: responder,
            configuration: ApplicationConfiguration(address: .hostname(configuration.host, port: configuration.port), serverName: "lamina"),
            services: services,
            onServerRunning: { [logger] channel in
                logger.notice("lamina is serving the Lambda API", metadata: ["address": "http://\(channel.localAddress?.description ?? address)"])
            },
            logger: logger)
        try await app.runService(gracefulShutdownSignals: [.sigterm, .sigint])
        logger.notice("shutting down: finishing in-flight invocations", metadata: ["grace": "\(configuration.gracePeriodSeconds)s"])
        await invoker.shutdown(graceSeconds: configuration.gracePeriodSeconds)
        await sandboxes.shutdown()
        // Every invocation awaited its record, so nothing is waiting; close so the writer's thread ends.
        (meterSink as? LedgerWriter)?.close()
        logger.notice("stopped")
    }

    func health() async -> [String: Any] {
        let counts = invoker.environmentCounts
        return [
            "status": "ok",
            "environments": Dictionary(uniqueKeysWithValues: counts.map { ($0.key.rawValue, $0.value) }),
            "inFlight": invoker.inFlight,
            "pendingAsyncEvents": (try? await store.pendingEventCount()) ?? -1,
        ]
    }

    /// Operator endpoints, with `Authorization: Bearer <admin token>`:
    /// `GET /admin/billing/export?from=&to=&tenant=&function=&groupBy=day,function&format=csv|jsonl`.
    func admin(_ request: Request) async -> Response {
        func failure(_ status: HTTPResponse.Status, _ message: String) -> Response {
            let body = (try? JSONSerialization.data(withJSONObject: ["message": message])) ?? Data()
            return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
        guard let token = configuration.adminToken else { return failure(.notFound, "the admin endpoints are off: start the daemon with --admin-token") }
        guard let given = request.headers[.authorization], given == "Bearer \(token)" else {
            return failure(.unauthorized, "admin endpoints need Authorization: Bearer <admin token>")
        }
        guard request.method == .get, request.uri.path == "/admin/billing/export" else { return failure(.notFound, "no such admin endpoint") }
        let query = Dictionary(SigV4Verifier.queryPairs(request.uri.query), uniquingKeysWith: { first, _ in first })
        guard let from = query["from"].flatMap(UTC.parse), let to = query["to"].flatMap(UTC.parse), from < to else {
            return failure(.badRequest, "from and to are required UTC times (2026-11-26 or 2026-11-26T13:00:00Z), from before to")
        }
        guard let grouping = Grouping(query["groupBy"] ?? "day,function") else {
            return failure(.badRequest, "groupBy must be hour|day|month and/or function|tenant, e.g. day,function")
        }
        let format = query["format"] ?? "csv"
        guard format == "csv" || format == "jsonl" else { return failure(.badRequest, "format must be csv or jsonl") }
        do {
            let report = try await BillingReport.build(store: store, fromMs: from, toMs: to, accountId: query["tenant"],
                                                       functionName: query["function"], grouping: grouping, pricing: configuration.pricing)
            let text = format == "csv" ? report.csv() : report.jsonLines()
            return Response(status: .ok, headers: [.contentType: format == "csv" ? "text/csv" : "application/x-ndjson"],
                            body: .init(byteBuffer: ByteBuffer(string: text)))
        } catch {
            return failure(.internalServerError, "\(error)")
        }
    }

    func metricsText() async -> String {
        metrics.render(environments: invoker.environmentCounts, pendingEvents: try? await store.pendingEventCount())
    }
}

/// Rolls old ledger entries up into hourly aggregates, once an hour.
struct RetentionService: Service {
    let store: SQLiteStore
    let days: Double
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let cutoff = Int64((Date().timeIntervalSince1970 - days * 86_400) * 1000)
                do {
                    let moved = try await store.rollUpLedger(beforeMs: cutoff)
                    if moved > 0 { logger.info("rolled ledger entries up into hourly aggregates", metadata: ["entries": "\(moved)"]) }
                } catch {
                    logger.error("ledger roll-up failed", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(nanoseconds: 3_600_000_000_000)
            }
        }
    }
}

/// Runs the asynchronous invocation worker as a service of the application.
struct WorkerService: Service {
    let worker: AsyncInvocationWorker

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await worker.run()
        }
    }
}

/// Hummingbird's side: collects the request, hands it to `ControlAPI.handle`, and serves the
/// health and metrics endpoints.
struct DaemonResponder: HTTPResponder {
    typealias Context = BasicRequestContext
    let api: ControlAPI
    let daemon: LaminaDaemon

    func respond(to request: Request, context: Context) async throws -> Response {
        let path = request.uri.path
        if request.method == .get && (path == "/health" || path == "/healthz") {
            let data = (try? JSONSerialization.data(withJSONObject: await daemon.health(), options: [.sortedKeys])) ?? Data()
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
        if request.method == .get && path == "/metrics" {
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                            body: .init(byteBuffer: ByteBuffer(string: await daemon.metricsText())))
        }
        if path.hasPrefix("/admin/") {
            return await daemon.admin(request)
        }
        var request = request
        let limit = api.configuration.maxRequestBytes
        let body: ByteBuffer
        do { body = try await request.collectBody(upTo: limit) } catch {
            return Self.response(ControlAPI.errorResponse(.tooLarge("Request must be smaller than \(limit) bytes")))
        }
        var headers: [(name: String, value: String)] = request.headers.map { (name: $0.name.rawName, value: $0.value) }
        let authority = request.head.authority ?? "\(daemon.configuration.host):\(daemon.configuration.port)"
        headers.append((name: "host", value: authority))
        let response = await api.handle(method: request.method.rawValue, rawPath: path, rawQuery: request.uri.query,
                                        authority: authority, headers: headers, body: Array(body.readableBytesView))
        return Self.response(response)
    }

    static func response(_ response: APIResponse) -> Response {
        var fields = HTTPFields()
        for (name, value) in response.headers {
            if let field = HTTPField.Name(name) { fields.append(HTTPField(name: field, value: value)) }
        }
        return Response(status: .init(code: response.status), headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: response.body)))
    }
}
