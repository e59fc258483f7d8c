#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LaminaLayers
import LaminaRootfs
import LaminaSandbox
import Testing

let repositoryRoot: String = {
    var path = #filePath
    for _ in 0..<3 { path = (path as NSString).deletingLastPathComponent }
    return path
}()

/// The ZIP archives of Tests/Fixtures/make_zips.py, written once per test run.
enum Zips {
    static let directory: String = {
        let directory = NSTemporaryDirectory() + "lamina-zips-\(getpid())"
        let result = run(["/usr/bin/python3", "\(repositoryRoot)/Tests/Fixtures/make_zips.py", directory])
        precondition(result.status == 0, "make_zips.py failed: \(result.output)")
        return directory
    }()

    static func path(_ name: String) -> String { "\(directory)/\(name).zip" }
    static func bytes(_ name: String) -> [UInt8] { Array(FileManager.default.contents(atPath: path(name))!) }
}

/// The built root filesystem layers (scripts/test builds them; otherwise they are built here, once).
enum Rootfs {
    static let directory: String = {
        let directory = ProcessInfo.processInfo.environment["LAMINA_ROOTFS_DIR"] ?? "/var/cache/lamina/rootfs"
        if RootfsCatalog(directory: directory).layer(named: "python3.11") == nil {
            let result = run(["\(repositoryRoot)/.build/debug/lamina", "rootfs", "build", "--rootfs-dir", directory,
                              "--state-dir", NSTemporaryDirectory() + "lamina-rootfs-state", "--recipes", "\(repositoryRoot)/rootfs"])
            precondition(result.status == 0, "lamina rootfs build failed: \(result.output)")
        }
        return directory
    }()

    static var catalog: RootfsCatalog { RootfsCatalog(directory: directory) }
}

/// A fresh layer store in its own temporary directory.
final class TemporaryStore {
    let root = NSTemporaryDirectory() + "lamina-layers-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    let store: LayerStore

    init() throws { store = try LayerStore(root: root) }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    /// Everything in the store but its empty top-level directories.
    func contents() -> [String] {
        var found: [String] = []
        for directory in ["archives", "trees", "staging"] {
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: "\(root)/\(directory)")) ?? []
            found += entries.map { "\(directory)/\($0)" }
        }
        return found.sorted()
    }
}

struct CommandResult {
    var status: Int32
    var output: String
}

@discardableResult
func run(_ arguments: [String]) -> CommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: arguments[0])
    process.arguments = Array(arguments.dropFirst())
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    do { try process.run() } catch { return CommandResult(status: -1, output: "\(error)") }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return CommandResult(status: process.terminationStatus, output: String(decoding: data, as: UTF8.self))
}

func mode(of path: String) -> mode_t {
    var st = stat()
    lstat(path, &st)
    return st.st_mode
}
