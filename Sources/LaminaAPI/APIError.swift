import Foundation

/// An error the API answers with, in the shape botocore parses (LAMBDA.md §3.2): the code in
/// `x-amzn-ErrorType`, a JSON body with `Type` and the message under the member name the service
/// model uses for that exception (`Message` or `message`).
public struct APIError: Error, Sendable, CustomStringConvertible {
    public var code: String
    public var status: Int
    public var message: String
    /// Extra members (TooManyRequestsException's Reason).
    public var extra: [String: String] = [:]
    public var headers: [String: String] = [:]

    public var description: String { "\(code): \(message)" }

    /// Exceptions whose model member is `Message` (capitalised); all others use `message`.
    static let capitalisedMessage: Set<String> = ["ResourceNotFoundException", "ServiceException"]

    var body: [String: String] {
        var body = extra
        body["Type"] = status >= 500 ? "Service" : "User"
        body[Self.capitalisedMessage.contains(code) ? "Message" : "message"] = message
        return body
    }

    static func notFound(_ message: String) -> APIError { APIError(code: "ResourceNotFoundException", status: 404, message: message) }
    static func conflict(_ message: String) -> APIError { APIError(code: "ResourceConflictException", status: 409, message: message) }
    static func invalidParameter(_ message: String) -> APIError { APIError(code: "InvalidParameterValueException", status: 400, message: message) }
    static func invalidContent(_ message: String) -> APIError { APIError(code: "InvalidRequestContentException", status: 400, message: message) }
    static func preconditionFailed(_ message: String) -> APIError { APIError(code: "PreconditionFailedException", status: 412, message: message) }
    static func tooLarge(_ message: String) -> APIError { APIError(code: "RequestEntityTooLargeException", status: 413, message: message) }
    static func service(_ message: String) -> APIError { APIError(code: "ServiceException", status: 500, message: message) }

    /// AWS's model validation: `1 validation error detected: Value 'x' at 'field' failed to satisfy constraint: ...`.
    static func validation(value: String, field: String, constraint: String) -> APIError {
        APIError(code: "ValidationException", status: 400,
                 message: "1 validation error detected: Value '\(value)' at '\(field)' failed to satisfy constraint: \(constraint)")
    }

    static func throttled(reason: String) -> APIError {
        APIError(code: "TooManyRequestsException", status: 429, message: "Rate Exceeded.", extra: ["Reason": reason], headers: ["Retry-After": "1"])
    }

    static let missingToken = APIError(code: "MissingAuthenticationTokenException", status: 403, message: "Missing Authentication Token")
    static let unrecognizedClient = APIError(code: "UnrecognizedClientException", status: 403, message: "The security token included in the request is invalid.")
    static let signatureMismatch = APIError(
        code: "InvalidSignatureException", status: 403,
        message: "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
    static func invalidSignature(_ message: String) -> APIError { APIError(code: "InvalidSignatureException", status: 403, message: message) }
    static let accessDenied = APIError(code: "AccessDeniedException", status: 403, message: "You are not authorized to perform this operation.")
    static func unknownOperation(_ method: String, _ path: String) -> APIError {
        APIError(code: "UnknownOperationException", status: 404, message: "No operation matches \(method) \(path)")
    }
}
