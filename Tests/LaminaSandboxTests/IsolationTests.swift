#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LaminaSandbox
import Testing

/// What a process inside a sandbox can see and do. Each property is its own test.
@Suite("Isolation", .serialized)
struct IsolationTests {
    @Test func processIsPidOneAndSeesNoHostProcess() async throws {
        let host = try TestHost()
        let run = try await host.run(host.spec(["/bin/sh", "-c", "echo $$; ls /proc | grep -cE '^[0-9]+$'"]))
        await host.finish()
        let lines = run.stdout.split(separator: "\n")
        #expect(lines.first == "1")
        // sh itself, the ls and the grep of the pipeline: nothing from the host.
        #expect(Int(lines.last ?? "") ?? 99 <= 3, "visible processes: \(run.stdout)")
    }

    @Test func hostHostnameAndNetworkInterfacesAreInvisible() async throws {
        let host = try TestHost()
        var spec = host.spec(["/bin/sh", "-c", "hostname; cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '"])
        spec.hostname = "lamina-sbx"
        let run = try await host.run(spec)
        await host.finish()
        #expect(run.stdout == "lamina-sbx\nlo\n")
    }

    @Test func loopbackIsUpInsideTheSandbox() async throws {
        let host = try TestHost()
        let run = try await host.run(host.spec(["/bin/sh", "-c", "ip -o link show lo"]))
        await host.finish()
        #expect(run.stdout.contains("UP"), "lo: \(run.stdout)")
    }

    @Test func writingToTheRootFailsWithEROFS() async throws {
        let host = try TestHost()
        let run = try await host.run(host.spec(["/bin/probe", "write", "/newfile"]))
        let etc = try await host.run(host.spec(["/bin/probe", "write", "/etc/passwd"]))
        await host.finish()
        #expect(probeResults(run.stdout)["write"] == "EROFS")
        #expect(probeResults(etc.stdout)["write"] != "ok")
    }

    @Test func tmpFillsToItsSizeThenENOSPC() async throws {
        let host = try TestHost()
        let run = try await host.run(host.spec(["/bin/probe", "fill", "/tmp/big"], tmpMB: 2))
        await host.finish()
        #expect(run.stdout.hasPrefix("fill ENOSPC after 2097152 bytes"), "\(run.stdout)")
    }

    @Test func processRunsAsTheGivenUnprivilegedUser() async throws {
        let host = try TestHost()
        var spec = host.spec(["/bin/sh", "-c", "id -u; id -g; id -G"])
        spec.user = SandboxUser(uid: 234_567, gid: 234_568)
        let run = try await host.run(spec)
        await host.finish()
        #expect(run.stdout == "234567\n234568\n234568\n")
    }

    @Test func rootUserIsRefused() async throws {
        let host = try TestHost()
        var spec = host.spec(["/bin/true"])
        spec.user = SandboxUser(uid: 0, gid: 0)
        #expect(throws: SandboxError.self) { try host.host.spawn(spec) }
        await host.finish()
    }

    @Test func capabilitiesAreEmptyNoNewPrivsIsSetAndSeccompFilters() async throws {
        let host = try TestHost()
        let run = try await host.run(host.spec(["/bin/cat", "/proc/self/status"]))
        await host.finish()
        var fields: [String: String] = [:]
        for line in run.stdout.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2 { fields[String(parts[0])] = parts[1].trimmingCharacters(in: .whitespaces) }
        }
        for capability in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            #expect(fields[capability] == "0000000000000000", "\(capability) = \(fields[capability] ?? "missing")")
        }
        #expect(fields["NoNewPrivs"] == "1")
        #expect(fields["Seccomp"] == "2")
    }

    @Test func dangerousSystemCallsFail() async throws {
        let host = try TestHost()
        let run = try await host.run(host.spec(["/bin/probe", "syscalls"]))
        await host.finish()
        let results = probeResults(run.stdout)
        let forbidden = ["mount", "umount2", "unshare-user", "unshare-net", "unshare-mount", "setns", "ptrace", "keyctl",
                         "bpf", "kexec_load", "init_module", "reboot", "swapon", "pivot_root", "chroot",
                         "open_by_handle_at", "clone-newuser"]
        for call in forbidden {
            #expect(results[call] != nil && results[call] != "ok", "\(call): \(results[call] ?? "not run")")
        }
        // unshare(CLONE_NEWUSER) needs no capability: only the seccomp filter stops it.
        #expect(results["unshare-user"] == "EPERM")
        #expect(results["fork"] == "ok")
    }

    @Test func ordinaryProgramsWork() async throws {
        let host = try TestHost()
        let shell = try await host.run(host.spec(["/bin/sh", "-c", "echo a b | wc -w; seq 3 | sort -r | head -1; date +%Y >/dev/null && echo date"]))
        let python = try await host.run(host.spec(
            ["python3", "-c", "import json, hashlib, os; print(json.dumps({'sha': hashlib.sha256(b'x').hexdigest()[:8], 'uid': os.getuid() != 0}))"],
            layers: [TestLayers.python, TestLayers.busybox], memoryMB: 512))
        await host.finish()
        #expect(shell.stdout == "2\n3\ndate\n")
        #expect(python.stdout == "{\"sha\": \"2d711642\", \"uid\": true}\n", "stderr: \(python.stderr)")
    }

    @Test func devHoldsOnlyTheMinimalDevices() async throws {
        let host = try TestHost()
        let run = try await host.run(host.spec(["/bin/sh", "-c", "ls /dev | tr '\\n' ' '; head -c 4 /dev/urandom | wc -c; echo x > /dev/null && echo null-ok"]))
        await host.finish()
        #expect(run.stdout == "fd full null random stderr stdin stdout urandom zero 4\nnull-ok\n")
    }

    @Test func sensitiveProcPathsAreMasked() async throws {
        let host = try TestHost()
        // Only the files this kernel has: each must read as empty inside.
        let files = ["kcore", "keys", "timer_list", "sched_debug", "kallsyms"].filter { FileManager.default.fileExists(atPath: "/proc/\($0)") }
        #expect(!files.isEmpty)
        let script = files.map { "echo \($0) $(cat /proc/\($0) | wc -c)" }.joined(separator: "; ")
            + "; echo sys $(echo 1 2>/dev/null > /proc/sys/kernel/domainname && echo writable || echo read-only)"
        let run = try await host.run(host.spec(["/bin/sh", "-c", script]))
        await host.finish()
        #expect(run.stdout == files.map { "\($0) 0\n" }.joined() + "sys read-only\n")
    }

    @Test func environmentIsExactlyTheSpecs() async throws {
        let host = try TestHost()
        var spec = host.spec(["/bin/sh", "-c", "env | sort"])
        spec.environment = ["PATH": "/bin", "GREETING": "hello world"]
        let run = try await host.run(spec)
        await host.finish()
        let variables = run.stdout.split(separator: "\n").filter { !$0.hasPrefix("PWD=") && !$0.hasPrefix("SHLVL=") }
        #expect(variables == ["GREETING=hello world", "PATH=/bin"])
    }

    @Test func noHostFileDescriptorLeaksIn() async throws {
        let host = try TestHost()
        let leaked = open("/etc/hostname", O_RDONLY) // deliberately without O_CLOEXEC
        defer { close(leaked) }
        let run = try await host.run(host.spec(["/bin/sh", "-c", "ls /proc/self/fd | tr '\\n' ' '"]))
        await host.finish()
        // 0, 1, 2 and the directory ls itself has open.
        #expect(run.stdout.split(separator: " ").count <= 4, "open fds: \(run.stdout)")
    }

    @Test func listeningSocketInsideIsServedByTheHost() async throws {
        let host = try TestHost()
        var spec = host.spec(["/bin/probe", "connect", "9001"])
        spec.listenPort = 9001
        let out = try Pipe2()
        spec.stdio = .fds(stdin: out.write, stdout: out.write, stderr: out.write)
        let sandbox = try host.host.spawn(spec)
        out.closeWrite()
        let listener = try #require(sandbox.takeListeningSocket())
        // Serve one connection from the host, with the socket created in the sandbox's network namespace.
        let connection = accept(listener, nil, nil)
        #expect(connection >= 0)
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = read(connection, &buffer, buffer.count)
        let request = String(decoding: buffer[0..<max(n, 0)], as: UTF8.self)
        _ = "pong\n".withCString { write(connection, $0, 5) }
        close(connection)
        close(listener)
        let output = await out.readAll()
        _ = await sandbox.wait()
        try await sandbox.destroy()
        await host.finish()
        #expect(request == "hello from the sandbox\n")
        #expect(output == "reply pong\n")
    }
}
