/// The name patterns of Lambda's service model, checked by hand (Swift's Regex is not Sendable,
/// and these are simple character classes).
enum Patterns {
    static func isWordCharacter(_ c: Character) -> Bool {
        c.isASCII && (c.isLetter || c.isNumber || c == "_" || c == "-")
    }

    /// `[a-zA-Z0-9-_]{1,max}`
    static func isName(_ text: String, max: Int) -> Bool {
        !text.isEmpty && text.count <= max && text.allSatisfy(isWordCharacter)
    }

    /// `$LATEST` or `[a-zA-Z0-9-_]{1,128}`
    static func isQualifier(_ text: String) -> Bool { text == "$LATEST" || isName(text, max: 128) }

    /// `(?!^[0-9]+$)([a-zA-Z0-9-_]+)`
    static func isAliasName(_ text: String) -> Bool { isName(text, max: 128) && !text.allSatisfy(\.isNumber) }

    /// `[a-zA-Z]([a-zA-Z0-9_])+`
    static func isEnvironmentKey(_ text: String) -> Bool {
        guard text.count >= 2, let first = text.first, first.isASCII, first.isLetter else { return false }
        return text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
    }

    /// `[^\s]+`
    static func isHandler(_ text: String) -> Bool { !text.isEmpty && !text.contains(where: \.isWhitespace) }

    /// `arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+`
    static func isRoleArn(_ text: String) -> Bool {
        let parts = text.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false)
        guard parts.count == 6, parts[0] == "arn", parts[2] == "iam", parts[3].isEmpty,
              parts[1].isEmpty || parts[1].hasPrefix("aws"),
              parts[4].count == 12, parts[4].allSatisfy(\.isNumber), parts[5].hasPrefix("role") else { return false }
        let name = parts[5].dropFirst(4).drop { $0 == "/" }
        return !name.isEmpty && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "+=,.@-_/".contains($0)) }
    }
}
