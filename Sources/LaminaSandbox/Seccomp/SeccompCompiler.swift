#if canImport(Glibc)
import Glibc
#endif
import CLinux
import CSeccomp

/// A compiled seccomp program: classic BPF instructions ready for SECCOMP_SET_MODE_FILTER.
public struct SeccompProgram: Sendable {
    /// Raw `struct sock_filter` array (8 bytes per instruction).
    public let bytes: [UInt8]
    public var instructionCount: Int { bytes.count / 8 }
}

/// Compiles a profile with libseccomp, once, for the native architecture only: loading a
/// precompiled single-architecture program in the child costs a fraction of a millisecond, while
/// compiling costs milliseconds. Foreign-architecture and x32 system calls kill the process.
enum SeccompCompiler {
    // libseccomp's action macros are function-like, so Swift cannot import them.
    /// Bumped whenever the way programs are compiled changes, so cached programs are not reused.
    static let compilerRevision = "binary-tree-1"

    static let actionAllow: UInt32 = 0x7fff_0000
    static let actionKillProcess: UInt32 = 0x8000_0000
    static func actionErrno(_ code: Int32) -> UInt32 { 0x0005_0000 | (UInt32(code) & 0xffff) }

    static func compile(_ profile: SeccompProfile) throws(SandboxError) -> SeccompProgram? {
        switch profile {
        case .unconfined: return nil
        case .default: return try compileDefault()
        }
    }

    /// Like `compile`, but keeps the result in `cacheDirectory`: a short-lived host (one CLI
    /// command) then loads ~2.5 KB instead of spending milliseconds in libseccomp. The key covers
    /// the rules, the libseccomp version and the architecture, so any change compiles afresh.
    static func compile(_ profile: SeccompProfile, cacheDirectory: String) throws(SandboxError) -> SeccompProgram? {
        guard profile == .default else { return try compile(profile) }
        let version = seccomp_version().pointee
        let key = fnv1a64("\(SeccompAllowlist.ociProfile())|libseccomp \(version.major).\(version.minor).\(version.micro)|x86_64|\(compilerRevision)")
        let path = "\(cacheDirectory)/\(String(key, radix: 16)).bpf"
        if let cached = try? FileIO.readBytes(path), !cached.isEmpty, cached.count % 8 == 0 {
            return SeccompProgram(bytes: cached)
        }
        guard let program = try compile(profile) else { return nil }
        do {
            try FileIO.makeDirectories(cacheDirectory, mode: 0o700)
            try FileIO.writeAtomically(path, bytes: program.bytes, mode: 0o600)
        } catch {
            // A cache that cannot be written only costs time.
        }
        return program
    }

    static func fnv1a64(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hash
    }

    private static func compileDefault() throws(SandboxError) -> SeccompProgram {
        guard let context = seccomp_init(actionErrno(EPERM)) else {
            throw .system(SystemError("seccomp_init", errno: ENOMEM))
        }
        defer { seccomp_release(context) }
        try check(seccomp_attr_set(context, SCMP_FLTATR_ACT_BADARCH, actionKillProcess), "set the bad-architecture action")
        // A binary search over syscall numbers instead of a linear list: every syscall is checked in
        // ~9 comparisons, and loading is faster too, because the kernel emulates the filter once per
        // syscall number to build its allow cache.
        try check(seccomp_attr_set(context, SCMP_FLTATR_CTL_OPTIMIZE, 2), "choose the binary-tree layout")

        for name in SeccompAllowlist.unconditional {
            let number = seccomp_syscall_resolve_name(name)
            // Names this architecture lacks (e.g. 32-bit only variants) are skipped.
            guard number != __NR_SCMP_ERROR else { continue }
            try check(seccomp_rule_add_array(context, actionAllow, number, 0, nil), "allow \(name)")
        }

        let clone = seccomp_syscall_resolve_name("clone")
        var noNamespaces = scmp_arg_cmp(arg: 0, op: SCMP_CMP_MASKED_EQ, datum_a: SeccompAllowlist.namespaceFlags, datum_b: 0)
        try check(seccomp_rule_add_array(context, actionAllow, clone, 1, &noNamespaces), "allow clone without namespaces")
        // clone3 passes its flags in memory, which seccomp cannot inspect: ENOSYS makes libc fall back to clone.
        try check(seccomp_rule_add_array(context, actionErrno(ENOSYS), seccomp_syscall_resolve_name("clone3"), 0, nil), "refuse clone3")

        let personality = seccomp_syscall_resolve_name("personality")
        for value in SeccompAllowlist.personalities {
            var equals = scmp_arg_cmp(arg: 0, op: SCMP_CMP_EQ, datum_a: value, datum_b: 0)
            try check(seccomp_rule_add_array(context, actionAllow, personality, 1, &equals), "allow personality(\(value))")
        }

        let socket = seccomp_syscall_resolve_name("socket")
        var notVsock = scmp_arg_cmp(arg: 0, op: SCMP_CMP_NE, datum_a: SeccompAllowlist.vsockFamily, datum_b: 0)
        try check(seccomp_rule_add_array(context, actionAllow, socket, 1, &notVsock), "allow socket")

        return try export(context)
    }

    private static func export(_ context: scmp_filter_ctx) throws(SandboxError) -> SeccompProgram {
        // libseccomp 2.5 (Debian 12) exports only to a file descriptor.
        let fd = lamina_memfd_create("lamina-seccomp")
        guard fd >= 0 else { throw .system(SystemError("memfd_create")) }
        defer { close(fd) }
        try check(seccomp_export_bpf(context, fd), "export the BPF program")
        let size = lseek(fd, 0, SEEK_END)
        guard size > 0, size % 8 == 0, size / 8 < Int(UInt16.max) else {
            throw .system(SystemError("export seccomp program of \(size) bytes", errno: EINVAL))
        }
        var bytes = [UInt8](repeating: 0, count: Int(size))
        let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, Int(size), 0) }
        guard n == size else { throw .system(SystemError("read the exported seccomp program")) }
        return SeccompProgram(bytes: bytes)
    }

    private static func check(_ result: Int32, _ what: String) throws(SandboxError) {
        if result < 0 { throw .system(SystemError("seccomp: \(what)", errno: -result)) }
    }
}
