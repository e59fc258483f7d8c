#if canImport(Glibc)
import Glibc
#endif
import Crypto
import Foundation

/// AWS Signature Version 4, verified the way AWS computes it for service `lambda` (LAMBDA.md §4):
/// the Authorization header form botocore sends and the presigned query-string form.
public struct SigV4Verifier: Sendable {
    public struct Request: Sendable {
        public var method: String
        /// The path exactly as it came on the wire (still percent-encoded).
        public var rawPath: String
        /// The query exactly as it came (without `?`), or nil.
        public var rawQuery: String?
        /// Header names in any case; `host` must be present (with the port when non-default).
        public var headers: [(name: String, value: String)]
        /// hex SHA-256 of the body.
        public var bodySHA256: String

        public init(method: String, rawPath: String, rawQuery: String?, headers: [(name: String, value: String)], bodySHA256: String) {
            self.method = method
            self.rawPath = rawPath
            self.rawQuery = rawQuery
            self.headers = headers
            self.bodySHA256 = bodySHA256
        }

        func header(_ name: String) -> String? {
            let lower = name.lowercased()
            let values = headers.filter { $0.name.lowercased() == lower }.map(\.value)
            return values.isEmpty ? nil : values.joined(separator: ",")
        }
    }

    /// Who signed: their key and the region of the credential scope.
    public struct Identity: Sendable, Equatable {
        public var accessKeyId: String
        public var region: String
    }

    public enum Failure: Error, Sendable, Equatable {
        case missing
        case malformed(String)
        case unknownKey
        case mismatch
        case expired(String)
        case wrongService(String)
    }

    /// Lambda rejects requests more than five minutes away from its clock.
    public var allowedSkewSeconds: Double = 300
    public let service: String

    public init(service: String = "lambda") { self.service = service }

    /// Checks the signature; `secret` finds the secret of an access key id (nil: unknown key).
    public func verify(_ request: Request, now: Date, secret: (String) async -> String?) async -> Result<Identity, Failure> {
        let parsed: Parsed
        switch parse(request) {
        case .success(let value): parsed = value
        case .failure(let failure): return .failure(failure)
        }
        guard parsed.scopeService == service else {
            return .failure(.wrongService("Credential should be scoped to correct service: '\(service)'. "))
        }
        guard let date = Self.parseDate(parsed.amzDate) else { return .failure(.malformed("Date must be in ISO-8601 'basic format'. Got '\(parsed.amzDate)'.")) }
        guard parsed.scopeDate == String(parsed.amzDate.prefix(8)) else {
            return .failure(.malformed("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '\(parsed.scopeDate)' != '\(parsed.amzDate.prefix(8))'"))
        }
        if let expires = parsed.expires {
            if now.timeIntervalSince(date) > Double(expires) { return .failure(.expired("Signature expired")) }
        } else {
            let skew = now.timeIntervalSince(date)
            if skew > allowedSkewSeconds {
                return .failure(.expired("Signature expired: \(parsed.amzDate) is now earlier than \(Self.format(now.addingTimeInterval(-allowedSkewSeconds))) (\(Self.format(now)) - 5 min.)"))
            }
            if skew < -allowedSkewSeconds {
                return .failure(.expired("Signature not yet current: \(parsed.amzDate) is still later than \(Self.format(now.addingTimeInterval(allowedSkewSeconds))) (\(Self.format(now)) + 5 min.)"))
            }
        }
        guard let key = await secret(parsed.accessKeyId) else { return .failure(.unknownKey) }
        let expected = signature(request, parsed: parsed, secret: key)
        guard constantTimeEqual(expected, parsed.signature.lowercased()) else { return .failure(.mismatch) }
        return .success(Identity(accessKeyId: parsed.accessKeyId, region: parsed.scopeRegion))
    }

    struct Parsed {
        var accessKeyId: String
        var scopeDate: String
        var scopeRegion: String
        var scopeService: String
        var signedHeaders: [String]
        var signature: String
        var amzDate: String
        var expires: Int?
        /// Presigned: the query without X-Amz-Signature is what was signed.
        var presigned: Bool
    }

    func parse(_ request: Request) -> Result<Parsed, Failure> {
        let query = Self.queryPairs(request.rawQuery)
        if let credential = query.first(where: { $0.0 == "X-Amz-Credential" })?.1 {
            guard query.first(where: { $0.0 == "X-Amz-Algorithm" })?.1 == "AWS4-HMAC-SHA256",
                  let signature = query.first(where: { $0.0 == "X-Amz-Signature" })?.1,
                  let signed = query.first(where: { $0.0 == "X-Amz-SignedHeaders" })?.1,
                  let date = query.first(where: { $0.0 == "X-Amz-Date" })?.1 else {
                return .failure(.malformed("Presigned requests need X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date, X-Amz-SignedHeaders and X-Amz-Signature."))
            }
            let expires = query.first(where: { $0.0 == "X-Amz-Expires" }).flatMap { Int($0.1) } ?? 900
            return scope(credential).map { scope in
                Parsed(accessKeyId: scope.0, scopeDate: scope.1, scopeRegion: scope.2, scopeService: scope.3,
                       signedHeaders: signed.split(separator: ";").map(String.init), signature: signature, amzDate: date,
                       expires: expires, presigned: true)
            }
        }
        guard let authorization = request.header("authorization") else { return .failure(.missing) }
        guard authorization.hasPrefix("AWS4-HMAC-SHA256 ") else {
            return .failure(.malformed("Authorization header requires the AWS4-HMAC-SHA256 algorithm."))
        }
        var fields: [String: String] = [:]
        for part in authorization.dropFirst("AWS4-HMAC-SHA256 ".count).split(separator: ",") {
            let pair = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if pair.count == 2 { fields[String(pair[0])] = String(pair[1]) }
        }
        guard let credential = fields["Credential"], let signed = fields["SignedHeaders"], let signature = fields["Signature"] else {
            return .failure(.malformed("Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters."))
        }
        guard let date = request.header("x-amz-date") ?? request.header("date").flatMap(Self.fromHTTPDate) else {
            return .failure(.malformed("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."))
        }
        return scope(credential).map { scope in
            Parsed(accessKeyId: scope.0, scopeDate: scope.1, scopeRegion: scope.2, scopeService: scope.3,
                   signedHeaders: signed.split(separator: ";").map(String.init), signature: signature, amzDate: date,
                   expires: nil, presigned: false)
        }
    }

    private func scope(_ credential: String) -> Result<(String, String, String, String), Failure> {
        let parts = credential.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 5, parts[4] == "aws4_request", !parts[0].isEmpty else {
            return .failure(.malformed("Credential should have 5 parts separated by '/': <key>/<date>/<region>/<service>/aws4_request; got '\(credential)'."))
        }
        return .success((parts[0], parts[1], parts[2], parts[3]))
    }

    /// The signature AWS would compute for this request with `secret`.
    func signature(_ request: Request, parsed: Parsed, secret: String) -> String {
        let canonical = canonicalRequest(request, parsed: parsed)
        let scope = "\(parsed.scopeDate)/\(parsed.scopeRegion)/\(parsed.scopeService)/aws4_request"
        let stringToSign = "AWS4-HMAC-SHA256\n\(parsed.amzDate)\n\(scope)\n\(Self.hex(SHA256.hash(data: Array(canonical.utf8))))"
        var key = SymmetricKey(data: Array("AWS4\(secret)".utf8))
        for part in [parsed.scopeDate, parsed.scopeRegion, parsed.scopeService, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Array(part.utf8), using: key)))
        }
        return Self.hex(HMAC<SHA256>.authenticationCode(for: Array(stringToSign.utf8), using: key))
    }

    func canonicalRequest(_ request: Request, parsed: Parsed) -> String {
        // Non-S3 services sign the already-encoded path encoded once more.
        let path = Self.encode(request.rawPath.isEmpty ? "/" : request.rawPath, keepSlash: true)
        var pairs = Self.queryPairs(request.rawQuery)
        if parsed.presigned { pairs.removeAll { $0.0 == "X-Amz-Signature" } }
        let encoded: [(String, String)] = pairs.map { pair in
            (Self.encode(pair.0, keepSlash: false), Self.encode(pair.1, keepSlash: false))
        }
        let sorted = encoded.sorted { left, right in left.0 == right.0 ? left.1 < right.1 : left.0 < right.0 }
        let query = sorted.map { pair in pair.0 + "=" + pair.1 }.joined(separator: "&")
        let headers = parsed.signedHeaders.map { name -> String in
            let value = request.header(name) ?? ""
            let collapsed = value.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
            return "\(name.lowercased()):\(collapsed)\n"
        }.joined()
        let payload = request.header("x-amz-content-sha256") ?? request.bodySHA256
        return "\(request.method)\n\(path)\n\(query)\n\(headers)\n\(parsed.signedHeaders.joined(separator: ";"))\n\(payload)"
    }

    // MARK: Helpers

    /// Decoded key/value pairs of a raw query string.
    static func queryPairs(_ raw: String?) -> [(String, String)] {
        guard let raw, !raw.isEmpty else { return [] }
        return raw.split(separator: "&").map { item in
            let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = String(pair[0]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(pair[0])
            let value = pair.count > 1 ? (String(pair[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(pair[1])) : ""
            return (key, value)
        }
    }

    /// RFC 3986 encoding: unreserved characters stay, everything else is %XX (uppercase).
    static func encode(_ text: String, keepSlash: Bool) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: "/") where keepSlash:
                out.append("/")
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return out
    }

    static func hex<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `yyyyMMddTHHmmssZ` (ISO 8601 basic), parsed without a formatter (the hot path signs every request).
    static func parseDate(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count == 16, bytes[8] == UInt8(ascii: "T"), bytes[15] == UInt8(ascii: "Z") else { return nil }
        func number(_ range: Range<Int>) -> Int32? {
            var value: Int32 = 0
            for byte in bytes[range] {
                guard byte >= 48 && byte <= 57 else { return nil }
                value = value * 10 + Int32(byte - 48)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(4..<6), let day = number(6..<8),
              let hour = number(9..<11), let minute = number(11..<13), let second = number(13..<15),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
        var parts = tm()
        parts.tm_year = year - 1900
        parts.tm_mon = month - 1
        parts.tm_mday = day
        parts.tm_hour = hour
        parts.tm_min = minute
        parts.tm_sec = second
        return Date(timeIntervalSince1970: TimeInterval(timegm(&parts)))
    }

    static func format(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)\(two(parts.tm_mon + 1))\(two(parts.tm_mday))T\(two(parts.tm_hour))\(two(parts.tm_min))\(two(parts.tm_sec))Z"
    }

    static func fromHTTPDate(_ text: String) -> String? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: text).map(format)
    }

    func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for index in 0..<x.count { difference |= x[index] ^ y[index] }
        return difference == 0
    }
}
