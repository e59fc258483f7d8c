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
    static let actionAllow: UInt32 = 0x7fff_0000
    static let actionKillProcess: UInt32 = 0x8000_0000
    static func actionErrno(_ code: Int32) -> UInt32 { 0x0005_0000 | (UInt32(code) & 0xffff) }

    static func compile(_ profile: SeccompProfile) throws(SandboxError) -> SeccompProgram? {
        switch profile {
        case .unconfined: return nil
        case .default: return try compileDefault()
        }
    }

    private static func compileDefault() throws(SandboxError) -> SeccompProgram {
        guard let context = seccomp_init(actionErrno(EPERM)) else {
            throw .system(SystemError("seccomp_init", errno: ENOMEM))
        }
        defer { seccomp_release(context) }
        try check(seccomp_attr_set(context, SCMP_FLTATR_ACT_BADARCH, actionKillProcess), "set the bad-architecture action")

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
