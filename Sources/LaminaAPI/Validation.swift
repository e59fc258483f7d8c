import Foundation
import LaminaHost
import LaminaLayers
import LaminaStore

/// Checks of request members, with AWS's messages and exception classes.
enum Validate {
    static func string(_ body: [String: Any], _ key: String, required: Bool = false, maxLength: Int? = nil) throws(APIError) -> String? {
        guard let value = body[key], !(value is NSNull) else {
            if required { throw APIError.validation(value: "null", field: lowerFirst(key), constraint: "Member must not be null") }
            return nil
        }
        guard let text = value as? String else {
            throw APIError.invalidContent("Could not parse request body into json: \(key) must be a string")
        }
        if let maxLength, text.count > maxLength {
            throw APIError.validation(value: text, field: lowerFirst(key), constraint: "Member must have length less than or equal to \(maxLength)")
        }
        return text
    }

    static func int(_ body: [String: Any], _ key: String) throws(APIError) -> Int? {
        guard let value = body[key], !(value is NSNull) else { return nil }
        guard !isJSONBoolean(value), let number = value as? NSNumber, let integer = Int(exactly: number.doubleValue) else {
            throw APIError.invalidContent("Could not parse request body into json: \(key) must be an integer")
        }
        return integer
    }

    static func maxItems(_ text: String?, range: ClosedRange<Int>, default value: Int) throws(APIError) -> Int {
        guard let text else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw APIError.validation(value: text, field: "maxItems", constraint: "Member must have value between \(range.lowerBound) and \(range.upperBound)")
        }
        return number
    }

    static func tags(_ value: Any) throws(APIError) -> [String: String] {
        guard let tags = value as? [String: Any] else { throw APIError.invalidContent("Could not parse request body into json: Tags must be a map") }
        var result: [String: String] = [:]
        for (key, value) in tags {
            guard let text = value as? String else { throw APIError.invalidParameter("Tag values must be strings") }
            guard (1...128).contains(key.count) else { throw APIError.validation(value: key, field: "tags", constraint: "Map keys must have length between 1 and 128") }
            guard text.count <= 256 else { throw APIError.validation(value: text, field: "tags", constraint: "Map values must have length less than or equal to 256") }
            guard !key.lowercased().hasPrefix("aws:") else { throw APIError.invalidParameter("Tag keys starting with aws: are reserved") }
            result[key] = text
        }
        guard result.count <= 50 else { throw APIError.invalidParameter("Number of tags exceeds resource tag limit.") }
        return result
    }

    static func architectures(_ value: Any) throws(APIError) -> [String] {
        guard let list = value as? [String] else { throw APIError.invalidContent("Could not parse request body into json: Architectures must be a list") }
        guard list.count == 1 else { throw APIError.validation(value: "\(list)", field: "architectures", constraint: "Member must have length less than or equal to 1") }
        guard ["x86_64", "arm64"].contains(list[0]) else {
            throw APIError.validation(value: "[\(list[0])]", field: "architectures", constraint: "Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64]]")
        }
        guard list[0] == "x86_64" else { throw APIError.invalidParameter("Architecture \(list[0]) is not supported by this host: it runs x86_64 functions") }
        return list
    }

    /// Lambda's limit on code and layers together, unzipped.
    static func totalSize(code: Int64, layers: [LayerReference]) throws(APIError) {
        let total = code + layers.reduce(0) { $0 + $1.unpackedBytes }
        guard total <= FunctionRootPlan.maxUnpackedBytes else {
            throw APIError.invalidParameter("Function code combined with layers exceeds the maximum allowed size of \(FunctionRootPlan.maxUnpackedBytes) bytes. The actual size is \(total) bytes.")
        }
    }

    static func environment(_ value: Any) throws(APIError) -> [String: String] {
        guard let wrapper = value as? [String: Any] else { throw APIError.invalidContent("Could not parse request body into json: Environment must be an object") }
        guard let raw = wrapper["Variables"] else { return [:] }
        guard let map = raw as? [String: Any] else { throw APIError.invalidContent("Could not parse request body into json: Environment.Variables must be a map") }
        var variables: [String: String] = [:]
        for (key, value) in map {
            guard let text = value as? String else { throw APIError.invalidParameter("Environment variable values must be strings") }
            guard Patterns.isEnvironmentKey(key) else {
                throw APIError.validation(value: "***", field: "environment.variables",
                                          constraint: "Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]")
            }
            variables[key] = text
        }
        let reserved = variables.keys.filter { Invoker.reservedVariables.contains($0) }.sorted()
        guard reserved.isEmpty else {
            throw APIError.invalidParameter("Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: \(reserved.joined(separator: ", "))")
        }
        let measured = String(decoding: (try? JSONSerialization.data(withJSONObject: variables, options: [.sortedKeys])) ?? Data(), as: UTF8.self)
        guard measured.utf8.count <= 4096 else {
            throw APIError.invalidParameter("Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: \(measured)")
        }
        return variables
    }

    static func lowerFirst(_ text: String) -> String { text.prefix(1).lowercased() + text.dropFirst() }
}

/// Whether a JSONSerialization value is `true`/`false` (Foundation boxes them as a Boolean
/// NSNumber subclass; `0` and `1` would pass `is Bool` too).
func isJSONBoolean(_ value: Any) -> Bool {
    String(describing: type(of: value)).contains("Boolean")
}

/// The configuration members of CreateFunction and UpdateFunctionConfiguration.
struct FunctionSettings {
    var runtime: String?
    var handler: String?
    var role: String?
    var description: String?
    var timeout: Int?
    var memorySize: Int?
    /// nil: unchanged; an empty map removes them all (UpdateFunctionConfiguration replaces the map).
    var environment: [String: String]?
    var ephemeralStorage: Int?
    var architectures: [String]?
    var layers: [String]?
    var tracingMode: String?
    var logFormat: String?
    var logGroup: String?

    static func parse(_ body: [String: Any], creating: Bool, runtimes: [String]) throws(APIError) -> FunctionSettings {
        var settings = FunctionSettings()
        settings.runtime = try Validate.string(body, "Runtime", required: creating)
        if let runtime = settings.runtime, !runtimes.contains(runtime) {
            throw APIError.invalidParameter("The runtime parameter of \(runtime) is not supported by this host. Supported runtimes: \(runtimes.joined(separator: ", ")).")
        }
        settings.handler = try Validate.string(body, "Handler", required: creating, maxLength: 128)
        if let handler = settings.handler, !Patterns.isHandler(handler) {
            throw APIError.validation(value: handler, field: "handler", constraint: "Member must satisfy regular expression pattern: [^\\s]+")
        }
        settings.role = try Validate.string(body, "Role", required: creating)
        if let role = settings.role, !Patterns.isRoleArn(role) {
            throw APIError.validation(value: role, field: "role",
                                      constraint: "Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+")
        }
        settings.description = try Validate.string(body, "Description", maxLength: 256)
        settings.timeout = try Validate.int(body, "Timeout")
        if let timeout = settings.timeout {
            guard timeout >= 1 else { throw APIError.validation(value: "\(timeout)", field: "timeout", constraint: "Member must have value greater than or equal to 1") }
            guard timeout <= 900 else { throw APIError.validation(value: "\(timeout)", field: "timeout", constraint: "Member must have value less than or equal to 900") }
        }
        settings.memorySize = try Validate.int(body, "MemorySize")
        if let memory = settings.memorySize {
            guard memory >= 128 else { throw APIError.validation(value: "\(memory)", field: "memorySize", constraint: "Member must have value greater than or equal to 128") }
            guard memory <= 10_240 else { throw APIError.invalidParameter("'MemorySize' value failed to satisfy constraint: Member must have value less than or equal to 10240") }
        }
        if let value = body["Environment"], !(value is NSNull) { settings.environment = try Validate.environment(value) }
        if let storage = body["EphemeralStorage"] as? [String: Any] {
            guard let size = try Validate.int(storage, "Size") else { throw APIError.validation(value: "null", field: "ephemeralStorage.size", constraint: "Member must not be null") }
            guard (512...10_240).contains(size) else {
                throw APIError.validation(value: "\(size)", field: "ephemeralStorage.size", constraint: "Member must have value between 512 and 10240")
            }
            settings.ephemeralStorage = size
        }
        if let value = body["Architectures"], !(value is NSNull) { settings.architectures = try Validate.architectures(value) }
        if let value = body["Layers"], !(value is NSNull) {
            guard let list = value as? [String] else { throw APIError.invalidContent("Could not parse request body into json: Layers must be a list of ARNs") }
            settings.layers = list
        }
        if let tracing = body["TracingConfig"] as? [String: Any], let mode = tracing["Mode"] as? String {
            guard ["Active", "PassThrough"].contains(mode) else {
                throw APIError.validation(value: mode, field: "tracingConfig.mode", constraint: "Member must satisfy enum value set: [Active, PassThrough]")
            }
            settings.tracingMode = mode
        }
        if let logging = body["LoggingConfig"] as? [String: Any] {
            if let format = logging["LogFormat"] as? String {
                guard ["JSON", "Text"].contains(format) else {
                    throw APIError.validation(value: format, field: "loggingConfig.logFormat", constraint: "Member must satisfy enum value set: [JSON, Text]")
                }
                settings.logFormat = format
            }
            settings.logGroup = logging["LogGroup"] as? String
        }
        return settings
    }

    /// The configuration after this change (`existing` nil: a new function with Lambda's defaults).
    func apply(to existing: FunctionConfiguration?, code: ControlAPI.ImportedCode?, layers: [LayerReference]?) -> FunctionConfiguration {
        var c = existing ?? FunctionConfiguration(
            runtime: runtime ?? "", handler: handler ?? "", role: role ?? "", description: "", timeout: 3, memorySize: 128,
            environment: nil, ephemeralStorage: 512, architectures: ["x86_64"], layers: [], codeSha256: "", codeDigest: "", codeSize: 0,
            unpackedBytes: 0)
        if let runtime { c.runtime = runtime }
        if let handler { c.handler = handler }
        if let role { c.role = role }
        if let description { c.description = description }
        if let timeout { c.timeout = timeout }
        if let memorySize { c.memorySize = memorySize }
        if let environment { c.environment = environment.isEmpty && existing != nil ? nil : environment }
        if let ephemeralStorage { c.ephemeralStorage = ephemeralStorage }
        if let architectures { c.architectures = architectures }
        if let layers { c.layers = layers }
        if let tracingMode { c.tracingMode = tracingMode }
        if let logFormat { c.logFormat = logFormat }
        if let logGroup { c.logGroup = logGroup }
        if let code {
            c.codeSha256 = code.archive.codeSha256
            c.codeDigest = code.archive.digest
            c.codeSize = code.archive.size
            c.unpackedBytes = code.tree.summary.unpackedBytes
        }
        return c
    }
}
