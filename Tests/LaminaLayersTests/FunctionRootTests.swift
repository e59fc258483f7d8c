#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LaminaLayers
import LaminaRootfs
import LaminaSandbox
import Testing

/// A function version's root, assembled from the store and the runtime layers and run for real.
@Suite("Function root", .serialized)
struct FunctionRootTests {
    /// Runs `script` with /bin/sh in a sandbox whose root is `plan`'s, returning stdout.
    static func run(_ plan: FunctionRootPlan, _ script: String, environment extra: [String: String] = [:]) async throws -> (String, TerminationStatus) {
        let state = NSTemporaryDirectory() + "lamina-plan-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let host = try SandboxHost(configuration: SandboxHostConfiguration(stateDirectory: state, cgroupParent: "lamina-plan-test-\(getpid())"))
        defer { try? FileManager.default.removeItem(atPath: state) }
        var environment = plan.environment
        environment.merge(extra) { _, new in new }
        var pipe: [Int32] = [-1, -1]
        Glibc.pipe(&pipe)
        let spec = SandboxSpec(command: ["/bin/sh", "-c", script], root: RootFilesystem(layers: plan.lowerLayers),
                               environment: environment, limits: ResourceLimits(memoryMB: 512, cpus: 1),
                               user: SandboxUser(uid: 298_000, gid: 298_000), workingDirectory: plan.workingDirectory,
                               stdio: .fds(stdin: pipe[0], stdout: pipe[1], stderr: pipe[1]))
        let sandbox = try host.spawn(spec)
        close(pipe[1])
        var output = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(pipe[0], &buffer, buffer.count)
            if n <= 0 { break }
            output += buffer[0..<n]
        }
        close(pipe[0])
        let status = sandbox.waitBlocking() ?? TerminationStatus(signal: SIGKILL)
        try sandbox.destroyBlocking()
        host.shutdownBlocking()
        return (String(decoding: output, as: UTF8.self), status)
    }

    static func plan(runtime: String, handler: String = "app.handler", store: LayerStore) throws -> FunctionRootPlan {
        let (_, code) = try store.importArchive(bytes: Zips.bytes("function"), mount: .task)
        let (_, first) = try store.importArchive(bytes: Zips.bytes("layer1"), mount: .opt)
        let (_, second) = try store.importArchive(bytes: Zips.bytes("layer2"), mount: .opt)
        let identity = try store.identityLayer(uid: 298_000, gid: 298_000)
        let catalog = Rootfs.catalog
        return try FunctionRootPlan.make(runtime: try #require(RuntimeCatalog.runtime(named: runtime)), handler: handler,
                                         code: code, layers: [first, second], identity: identity, rootfs: catalog.path(of:))
    }

    @Test func handlerSeesItsCodeAndTheMergedLayersWithTheLaterLayerWinning() async throws {
        let temporary = try TemporaryStore()
        let plan = try Self.plan(runtime: "python3.11", store: temporary.store)
        let (output, status) = try await Self.run(plan, "cd /var/task && find . | sort; echo ---; cd /opt && find . | sort; echo ---; cat /opt/clash.txt; ls /var/runtime | sort | tr '\\n' ' '")
        #expect(status.code == 0, "\(output)")
        let parts = output.components(separatedBy: "---\n")
        #expect(parts[0] == ".\n./app.py\n./bootstrap\n./current\n./lib\n./lib/helper.py\n")
        #expect(parts[1] == ".\n./bin\n./bin/tool-one\n./bin/tool-two\n./clash.txt\n./lib\n./lib/libx.so\n./lib/libx.so.1\n./python\n./python/shared_one.py\n")
        #expect(parts[2].hasPrefix("from layer two\n"))
        #expect(parts[2].contains("awslambdaric") && parts[2].contains("bootstrap"))
    }

    @Test func pythonRuntimeImportsAwslambdaricWithThePlansEnvironment() async throws {
        let temporary = try TemporaryStore()
        let plan = try Self.plan(runtime: "python3.11", store: temporary.store)
        #expect(plan.bootstrap == ["/var/runtime/bootstrap"])
        #expect(plan.environment["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.11")
        let (output, status) = try await Self.run(plan, "python3 -c 'import awslambdaric, simplejson, sys; print(awslambdaric.__file__); print(sys.version_info[:2])'; python3 -c 'import shared_one; print(shared_one.NAME)'; whoami; pwd")
        #expect(status.code == 0, "\(output)")
        #expect(output == "/var/runtime/awslambdaric/__init__.py\n(3, 11)\none\nsbx_user1051\n/var/task\n")
    }

    @Test func environmentFollowsTheRuntimeContract() throws {
        let temporary = try TemporaryStore()
        let plan = try Self.plan(runtime: "python3.11", handler: "pkg/app.handler", store: temporary.store)
        #expect(plan.environment["_HANDLER"] == "pkg/app.handler")
        #expect(plan.environment["LAMBDA_TASK_ROOT"] == "/var/task")
        #expect(plan.environment["LAMBDA_RUNTIME_DIR"] == "/var/runtime")
        #expect(plan.environment["PATH"] == "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin")
        #expect(plan.environment["LD_LIBRARY_PATH"] == "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib")
        #expect(plan.environment["PYTHONPATH"]?.hasPrefix("/opt/python/lib/python3.11/site-packages:/opt/python") == true)
        #expect(plan.environment["TZ"] == ":UTC")
        #expect(plan.environment["LANG"] == "en_US.UTF-8")
        let provided = try Self.plan(runtime: "provided.al2023", store: temporary.store)
        #expect(provided.environment["AWS_EXECUTION_ENV"] == nil)
        #expect(provided.environment["PYTHONPATH"] == nil)
        #expect(provided.bootstrap == ["/var/task/bootstrap"])
    }

    @Test func nothingButTmpIsWritable() async throws {
        let temporary = try TemporaryStore()
        let plan = try Self.plan(runtime: "provided", store: temporary.store)
        let directories = ["/", "/var/task", "/var/task/lib", "/opt", "/opt/bin", "/var/runtime", "/var/lang", "/etc", "/usr", "/usr/bin", "/root", "/home", "/var", "/var/tmp", "/var/log", "/dev", "/tmp"]
        let script = directories.map { "touch \($0)/.probe 2>/dev/null && echo '\($0) writable' || echo '\($0) read-only'" }.joined(separator: "; ")
        let (output, _) = try await Self.run(plan, script)
        let writable = output.split(separator: "\n").filter { $0.hasSuffix(" writable") }
        #expect(writable == ["/tmp writable"], "\(output)")
    }

    @Test func customRuntimeFindsTheBootstrapInALayerWhenTheCodeHasNone() throws {
        let temporary = try TemporaryStore()
        let (_, code) = try temporary.store.importArchive(bytes: Zips.bytes("layer1"), mount: .task) // no bootstrap
        let layerArchive = try temporary.store.importArchive(bytes: Zips.bytes("function"))
        let layer = try temporary.store.tree(archive: layerArchive.digest, mount: .opt) // has /opt/bootstrap
        let plan = try FunctionRootPlan.make(runtime: RuntimeCatalog.runtime(named: "provided")!, handler: "x", code: code,
                                             layers: [layer], identity: nil, rootfs: Rootfs.catalog.path(of:))
        #expect(plan.bootstrap == ["/opt/bootstrap"])
        #expect(throws: LayerError.missingBootstrap(["/var/task/bootstrap", "/opt/bootstrap"])) {
            try FunctionRootPlan.make(runtime: RuntimeCatalog.runtime(named: "provided")!, handler: "x", code: code,
                                      layers: [], identity: nil, rootfs: Rootfs.catalog.path(of:))
        }
    }

    @Test func moreThanFiveLayersOrTooManyBytesAreRefused() throws {
        let temporary = try TemporaryStore()
        let (_, code) = try temporary.store.importArchive(bytes: Zips.bytes("function"), mount: .task)
        let (_, layer) = try temporary.store.importArchive(bytes: Zips.bytes("layer1"), mount: .opt)
        let runtime = RuntimeCatalog.runtime(named: "provided")!
        #expect(throws: LayerError.invalidPlan("Cannot reference more than 5 layers.")) {
            try FunctionRootPlan.make(runtime: runtime, handler: "x", code: code, layers: Array(repeating: layer, count: 6),
                                      identity: nil, rootfs: Rootfs.catalog.path(of:))
        }
        var huge = layer
        huge.summary.unpackedBytes = 262_144_000
        #expect {
            try FunctionRootPlan.make(runtime: runtime, handler: "x", code: code, layers: [huge], identity: nil, rootfs: Rootfs.catalog.path(of:))
        } throws: { error in
            "\(error)".hasPrefix("Function code combined with layers exceeds the maximum allowed size of 262144000 bytes.")
        }
    }
}

/// The root filesystem layers as built by the recipes.
@Suite("Root filesystem layers")
struct RootfsLayerTests {
    @Test func baseIsTrimmedHasNoSetuidFilesAndNamesTheSandboxUser() throws {
        let base = try #require(Rootfs.catalog.layer(named: "base"))
        let setuid = run(["/usr/bin/find", base.path, "-xdev", "-type", "f", "-perm", "/6000"])
        #expect(setuid.output.isEmpty, "setuid files: \(setuid.output)")
        #expect(try String(contentsOfFile: base.path + "/etc/passwd", encoding: .utf8).contains("sbx_user1051:x:993:990"))
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: base.path + "/usr/share/doc")) ?? []).isEmpty)
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: base.path + "/usr/share/man")) ?? []).isEmpty)
        for directory in ["var/task", "opt", "var/runtime", "tmp", "proc", "dev", "etc/ssl/certs", "usr/share/zoneinfo"] {
            #expect(FileManager.default.fileExists(atPath: base.path + "/" + directory), "\(directory) missing")
        }
        #expect(FileManager.default.isExecutableFile(atPath: base.path + "/usr/bin/curl"))
    }

    @Test func pythonLayerHoldsOnlyWhatDiffersFromBaseAndNoPip() throws {
        let python = try #require(Rootfs.catalog.layer(named: "python3.11"))
        let base = try #require(Rootfs.catalog.layer(named: "base"))
        #expect(python.parent == "base")
        #expect(python.bytes < base.bytes)
        #expect(!FileManager.default.fileExists(atPath: python.path + "/usr/bin/apt"), "base's files must not be copied into the layer")
        #expect(FileManager.default.fileExists(atPath: python.path + "/usr/bin/python3.11"))
        #expect(FileManager.default.isExecutableFile(atPath: python.path + "/var/runtime/bootstrap"))
        let pip = run(["/usr/bin/find", python.path, "-name", "pip", "-o", "-name", "pip3*", "-o", "-name", "setuptools"])
        #expect(pip.output.isEmpty, "pip or build tools in the layer: \(pip.output)")
    }

    @Test func listShowsNameDigestSizeAndDate() throws {
        let result = run(["\(repositoryRoot)/.build/debug/lamina", "rootfs", "list", "--rootfs-dir", Rootfs.directory])
        #expect(result.status == 0)
        let lines = result.output.split(separator: "\n")
        #expect(lines.first?.hasPrefix("NAME") == true)
        #expect(lines.contains { $0.hasPrefix("base ") && $0.contains("sha256:") && $0.contains("MB") })
        #expect(lines.contains { $0.hasPrefix("python3.11 ") && $0.contains("base") })
    }

    @Test func buildingAgainIsCachedAndUnknownNamesAreRefused() throws {
        let state = NSTemporaryDirectory() + "lamina-rootfs-state-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: state) }
        let again = run(["\(repositoryRoot)/.build/debug/lamina", "rootfs", "build", "--rootfs-dir", Rootfs.directory,
                         "--state-dir", state, "--cgroup-parent", "lamina-rootfs-test-\(getpid())", "--recipes", "\(repositoryRoot)/rootfs"])
        #expect(again.status == 0, "\(again.output)")
        #expect(again.output.contains("base: up to date"))
        #expect(again.output.contains("python3.11: up to date"))
        let unknown = run(["\(repositoryRoot)/.build/debug/lamina", "rootfs", "build", "nodejs99", "--rootfs-dir", Rootfs.directory,
                           "--state-dir", state, "--recipes", "\(repositoryRoot)/rootfs"])
        #expect(unknown.status == 2)
        #expect(unknown.output.contains("no recipe for `nodejs99`"))
    }
}
