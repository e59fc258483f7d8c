#if canImport(Glibc)
import Glibc
#endif

/// What `collectOrphans` found and removed.
public struct OrphanReport: Sendable, Equatable {
    public var killedProcesses: [pid_t] = []
    public var removedCgroups: [String] = []
    public var unmounted: [String] = []
    public var removedDirectories: [String] = []
    public var failures: [String] = []

    public var isEmpty: Bool {
        killedProcesses.isEmpty && removedCgroups.isEmpty && unmounted.isEmpty && removedDirectories.isEmpty
    }
}

extension SandboxHost {
    /// Finds everything a crashed host left behind and removes it: processes (by their cgroup),
    /// cgroups, mounts under the state directory, and state directories. A sandbox belongs to a
    /// host named by pid and start time; only hosts that no longer run are collected, so a running
    /// daemon's sandboxes are never touched.
    public func collectOrphans() -> OrphanReport {
        var report = OrphanReport()

        let cgroupNames: [String]
        do { cgroupNames = try cgroups.children() } catch {
            report.failures.append("list cgroups: \(error)")
            cgroupNames = []
        }
        for name in cgroupNames {
            guard let ownerTag = name.split(separator: "_").first, let owner = ProcessIdentity(tag: ownerTag) else {
                continue // not one of ours
            }
            guard owner != self.owner, !owner.isAlive else { continue }
            guard let cgroup = cgroups.existing(name: name) else { continue }
            do {
                let processes = try cgroup.processes()
                if !processes.isEmpty {
                    try cgroup.killAll(timeoutMilliseconds: 5000)
                    report.killedProcesses += processes
                }
                try cgroup.remove()
                report.removedCgroups.append(name)
            } catch {
                report.failures.append("remove cgroup \(name): \(error)")
            }
        }

        // Sandbox mounts live in the sandbox's own mount namespace and vanish with it; anything
        // mounted under the state directory in the host's namespace is a leftover all the same.
        let sandboxes = "\(configuration.stateDirectory)/sandboxes"
        if let mountinfo = try? FileIO.read("/proc/self/mountinfo") {
            let points = mountinfo.split(separator: "\n").compactMap { line -> String? in
                let fields = line.split(separator: " ")
                guard fields.count > 4 else { return nil }
                return CgroupLayout.unescapeMountinfo(String(fields[4]))
            }.filter { $0.hasPrefix(sandboxes + "/") }
            // Deepest first.
            for point in points.sorted(by: { $0.count > $1.count }) {
                if umount2(point, Int32(MNT_DETACH)) == 0 {
                    report.unmounted.append(point)
                } else {
                    report.failures.append("unmount \(point): \(SystemError("umount2"))")
                }
            }
        }

        // Earlier layouts kept a directory per host under sandboxes/; remove those of dead hosts.
        for tag in (try? FileIO.list(sandboxes)) ?? [] {
            guard let owner = ProcessIdentity(tag: tag), owner != self.owner, !owner.isAlive else { continue }
            let path = "\(sandboxes)/\(tag)"
            do {
                try FileIO.removeTree(path)
                report.removedDirectories.append(path)
            } catch {
                report.failures.append("remove \(path): \(error)")
            }
        }
        return report
    }
}
