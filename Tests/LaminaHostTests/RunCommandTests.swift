#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

/// `lamina run`, as a developer uses it instead of `sam local invoke`.
@Suite("lamina run", .serialized)
struct RunCommandTests {
    static let binary = ProcessInfo.processInfo.environment["LAMINA_BINARY"] ?? "\(repositoryRoot)/.build/debug/lamina"

    func run(_ arguments: [String], input: String? = nil) -> (status: Int32, stdout: String, stderr: String) {
        let state = NSTemporaryDirectory() + "lamina-run-test-\(getpid())"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["run", "--state-dir", state, "--cgroup-parent", "lamina-run-test-\(getpid())", "--rootfs-dir", rootfsDirectory] + arguments
        let out = Pipe(), err = Pipe(), stdin = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = stdin
        try? process.run()
        stdin.fileHandleForWriting.write(Data((input ?? "").utf8))
        try? stdin.fileHandleForWriting.close()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }

    @Test func pythonHandlerPrintsTheResponseAndTheLog() throws {
        let result = run(["--runtime", "python3.11", "--handler", "app.handler", "--code", "\(fixtures)/python", "--memory", "1024",
                          "--env", "GREETING=hi", "--event", "-"], input: #"{"from":"stdin"}"#)
        #expect(result.status == 0, "\(result.stderr)")
        let response = json(Array(result.stdout.utf8))
        #expect((response["event"] as? [String: Any])?["from"] as? String == "stdin")
        #expect((response["env"] as? [String: Any])?["GREETING"] as? String == "hi")
        let lines = result.stderr.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("START RequestId: ") })
        #expect(lines.contains { $0.hasPrefix("END RequestId: ") })
        #expect(lines.contains { $0.hasPrefix("REPORT RequestId: ") && $0.contains("\tInit Duration: ") })
    }

    @Test func functionErrorExitsOne() throws {
        let result = run(["--runtime", "provided.al2023", "--handler", "fail", "--code", "\(fixtures)/shell"])
        #expect(result.status == 1)
        #expect(result.stdout == "{\"errorMessage\":\"the shell says no\",\"errorType\":\"Shell.Failure\"}\n")
    }

    @Test func eventFromAFileAndLayersAtOpt() throws {
        let directory = NSTemporaryDirectory() + "lamina-run-layer-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory + "/python", withIntermediateDirectories: true)
        try "GREETING = 'from a layer'\n".write(toFile: directory + "/python/layered.py", atomically: true, encoding: .utf8)
        let code = directory + "-code"
        defer { try? FileManager.default.removeItem(atPath: code) }
        try FileManager.default.createDirectory(atPath: code, withIntermediateDirectories: true)
        try "import layered\n\ndef handler(event, context):\n    return {'layer': layered.GREETING, 'event': event}\n"
            .write(toFile: code + "/main.py", atomically: true, encoding: .utf8)
        try #"{"k": "v"}"#.write(toFile: code + ".json", atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: code + ".json") }
        let result = run(["--runtime", "python3.11", "--handler", "main.handler", "--code", code, "--layer", directory,
                          "--memory", "1024", "--event", code + ".json"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "{\"layer\": \"from a layer\", \"event\": {\"k\": \"v\"}}\n")
    }

    @Test func badInputIsOneLineAndExitCode2() throws {
        let unknown = run(["--runtime", "cobol85", "--code", "\(fixtures)/shell"])
        #expect(unknown.status == 2)
        #expect(unknown.stderr.contains("unknown runtime `cobol85`"))
        let missing = run(["--runtime", "provided", "--code", "/does/not/exist"])
        #expect(missing.status == 2)
        #expect(missing.stderr.split(separator: "\n").count == 1)
    }
}
