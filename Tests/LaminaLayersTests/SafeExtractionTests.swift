#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LaminaLayers
import Testing

/// Tenant archives are extracted without trusting anything in them.
@Suite("Safe extraction")
struct SafeExtractionTests {
    @Test func wellFormedFunctionKeepsPermissionsAndTheExecutableBit() throws {
        let temporary = try TemporaryStore()
        let (archive, tree) = try temporary.store.importArchive(bytes: Zips.bytes("function"), mount: .task)
        let root = tree.path + "/var/task"
        #expect(try String(contentsOfFile: root + "/app.py", encoding: .utf8).contains("def handler"))
        #expect(mode(of: root + "/bootstrap") & 0o777 == 0o755)
        #expect(mode(of: root + "/app.py") & 0o777 == 0o644)
        // 0600 in the archive, but the sandbox user is never the owner: readable by all.
        #expect(mode(of: root + "/lib/helper.py") & 0o777 == 0o644)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: root + "/current") == "lib/helper.py")
        #expect(tree.summary.files == 3 && tree.summary.symlinks == 1)
        #expect(archive.size == Int64(Zips.bytes("function").count))
    }

    @Test func absoluteSymlinkInsideTheLayerMountIsAccepted() throws {
        let temporary = try TemporaryStore()
        let (_, tree) = try temporary.store.importArchive(bytes: Zips.bytes("layer2"), mount: .opt)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: tree.path + "/opt/lib/libx.so") == "/opt/lib/libx.so.1")
    }

    @Test func setuidBitsAreDropped() throws {
        let temporary = try TemporaryStore()
        let (_, tree) = try temporary.store.importArchive(bytes: Zips.bytes("setuid"), mount: .task)
        #expect(mode(of: tree.path + "/var/task/suid") & 0o7777 == 0o755)
    }

    @Test(arguments: [
        ("traversal", "escapes"), ("nested-traversal", "escapes"), ("absolute", "absolute path"),
        ("symlink-out", "points outside"), ("symlink-absolute", "points outside"), ("symlink-then-write", "symlink"),
        ("device", "device file"), ("fifo", "device file, FIFO"), ("duplicate", "appears twice"),
        ("corrupt", "corrupt"), ("truncated", "not a readable ZIP"), ("not-a-zip", "not a readable ZIP"),
        ("bomb", "zip bomb"), ("liar", "larger than it declares"),
    ])
    func hostileArchiveIsRejectedAndLeavesNothingBehind(name: String, reason: String) throws {
        let temporary = try TemporaryStore()
        let marker = "/tmp/escaped.txt"
        let markerExisted = FileManager.default.fileExists(atPath: marker)
        #expect {
            try temporary.store.importArchive(bytes: Zips.bytes(name), mount: .task)
        } throws: { error in
            guard case LayerError.invalidArchive(let message) = error else { return false }
            return message.contains(reason)
        }
        #expect(temporary.contents().isEmpty, "left behind: \(temporary.contents())")
        #expect(!FileManager.default.fileExists(atPath: temporary.root + "/escaped.txt"))
        #expect(!FileManager.default.fileExists(atPath: temporary.root + "/trees/escaped.txt"))
        if !markerExisted { #expect(!FileManager.default.fileExists(atPath: marker)) }
    }

    @Test func moreEntriesThanTheLimitIsRejected() throws {
        let temporary = try TemporaryStore()
        #expect(throws: LayerError.invalidArchive("the archive has more than 1000 entries")) {
            try temporary.store.importArchive(bytes: Zips.bytes("many"), mount: .task, limits: ExtractionLimits(maxEntries: 1000))
        }
        #expect(temporary.contents().isEmpty)
        // Within the default limit the same archive is fine.
        let (_, tree) = try temporary.store.importArchive(bytes: Zips.bytes("many"), mount: .task)
        #expect(tree.summary.files == 3000)
    }

    @Test func moreBytesThanTheLimitIsRejected() throws {
        let temporary = try TemporaryStore()
        #expect {
            try temporary.store.importArchive(bytes: Zips.bytes("large"), mount: .task, limits: ExtractionLimits(maxUnpackedBytes: 10 << 20))
        } throws: { error in
            "\(error)".contains("unzipped size must be smaller than 10485760 bytes")
        }
        #expect(temporary.contents().isEmpty)
    }

    @Test func errorsReadAsLambdas() {
        let error = LayerError.invalidArchive("entry `../x` escapes the archive's directory with `..`")
        #expect(error.description == "Could not unzip uploaded file: entry `../x` escapes the archive's directory with `..`.")
    }
}
