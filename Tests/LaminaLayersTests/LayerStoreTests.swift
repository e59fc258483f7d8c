#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LaminaLayers
import Testing

/// The content-addressed store: one copy per content, shared, and collected when unreferenced.
@Suite("Layer store")
struct LayerStoreTests {
    @Test func importingTheSameArchiveTwiceStoresOneCopy() throws {
        let temporary = try TemporaryStore()
        let (first, firstTree) = try temporary.store.importArchive(bytes: Zips.bytes("function"), mount: .task)
        let (second, secondTree) = try temporary.store.importArchive(bytes: Zips.bytes("function"), mount: .task)
        #expect(first == second)
        #expect(firstTree.path == secondTree.path)
        #expect(temporary.store.inventory().archives == [first.digest])
        #expect(temporary.store.inventory().trees == ["\(first.digest).task"])
        // The digest is the archive's SHA-256, in hex for the store and base64 for Lambda's CodeSha256.
        let hex = run(["/usr/bin/sha256sum", Zips.path("function")]).output.prefix(64)
        #expect(first.digest == String(hex))
        #expect(Data(base64Encoded: first.codeSha256)?.count == 32)
    }

    @Test func theSameArchiveAsCodeAndAsLayerGetsTwoTreesOneArchive() throws {
        let temporary = try TemporaryStore()
        let (archive, task) = try temporary.store.importArchive(bytes: Zips.bytes("layer1"), mount: .task)
        let opt = try temporary.store.tree(archive: archive.digest, mount: .opt)
        #expect(FileManager.default.fileExists(atPath: task.path + "/var/task/clash.txt"))
        #expect(FileManager.default.fileExists(atPath: opt.path + "/opt/clash.txt"))
        #expect(temporary.store.inventory().archives.count == 1)
    }

    @Test func importingADirectoryIsContentAddressed() throws {
        let temporary = try TemporaryStore()
        let source = temporary.root + "-source"
        defer { try? FileManager.default.removeItem(atPath: source) }
        try FileManager.default.createDirectory(atPath: source + "/pkg", withIntermediateDirectories: true)
        try "print('hi')\n".write(toFile: source + "/app.py", atomically: true, encoding: .utf8)
        try "#!/bin/sh\n".write(toFile: source + "/bootstrap", atomically: true, encoding: .utf8)
        chmod(source + "/bootstrap", 0o700)
        let first = try temporary.store.importDirectory(source, mount: .task)
        let again = try temporary.store.importDirectory(source, mount: .task)
        #expect(first.path == again.path)
        #expect(mode(of: first.path + "/var/task/bootstrap") & 0o777 == 0o755)
        try "print('changed')\n".write(toFile: source + "/app.py", atomically: true, encoding: .utf8)
        let changed = try temporary.store.importDirectory(source, mount: .task)
        #expect(changed.path != first.path)
    }

    @Test func garbageCollectionRemovesOnlyUnreferencedObjects() throws {
        let temporary = try TemporaryStore()
        let (kept, keptTree) = try temporary.store.importArchive(bytes: Zips.bytes("function"), mount: .task)
        let (dropped, _) = try temporary.store.importArchive(bytes: Zips.bytes("layer1"), mount: .opt)
        // Within the grace period nothing goes, referenced or not (an upload not yet committed).
        #expect(temporary.store.collectGarbage(referenced: [kept.digest], graceSeconds: 3600) == LayerGarbageReport())
        let report = temporary.store.collectGarbage(referenced: [kept.digest], graceSeconds: 0)
        #expect(report.removedArchives == [dropped.digest])
        #expect(report.removedTrees == ["\(dropped.digest).opt"])
        #expect(report.freedBytes > 0)
        #expect(temporary.store.inventory().archives == [kept.digest])
        #expect(temporary.store.inventory().trees == ["\(kept.digest).task"])
        #expect(FileManager.default.fileExists(atPath: keptTree.path + "/var/task/app.py"))
    }

    @Test func identityLayerNamesTheTenantsUidAsTheSandboxUser() throws {
        let temporary = try TemporaryStore()
        let path = try temporary.store.identityLayer(uid: 201_234, gid: 201_234)
        let passwd = try String(contentsOfFile: path + "/etc/passwd", encoding: .utf8)
        #expect(passwd.contains("sbx_user1051:x:201234:201234::/tmp:/usr/sbin/nologin"))
        #expect(try temporary.store.identityLayer(uid: 201_234, gid: 201_234) == path)
    }
}
