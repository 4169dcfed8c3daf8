import DPASTraceCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Collects the settings that decide which polled-I/O completion path runs, as the flat map
/// described by `SnapshotKeys` (stored in dump headers, diagnosed by `Doctor`). Reads files only:
/// no BPF, no privilege needed beyond what sysfs and procfs grant.
public enum SystemSnapshot {
    /// - Parameters:
    ///   - sysfsRoot: normally "/sys"; tests pass a fake tree.
    ///   - procRoot: normally "/proc" (kallsyms, cpuinfo, sys/kernel/osrelease).
    ///   - devices: names under block/ ("/dev/" prefix and partitions accepted); nil means every
    ///     `nvme*` device, or every non-virtual block device when there is no NVMe.
    public static func collect(sysfsRoot: String = "/sys", procRoot: String = "/proc",
                               devices: [String]? = nil) -> [String: String] {
        var settings: [String: String] = [:]
        let (chosen, note) = chooseDevices(sysfsRoot: sysfsRoot, requested: devices)
        settings[SnapshotKeys.snapshotDevices] = chosen.joined(separator: ",")
        if let note { settings[SnapshotKeys.snapshotNote] = note }

        for device in chosen {
            // Stock files are always recorded (value or error) so a missing one is visible.
            for file in SnapshotKeys.queueFiles {
                settings[SnapshotKeys.queue(device, file)] = readSetting("\(sysfsRoot)/block/\(device)/queue/\(file)")
            }
            // DPAS knobs only where they exist, so a stock kernel's snapshot stays small.
            for knob in SnapshotKeys.dpasKnobs {
                let value = readSetting("\(sysfsRoot)/block/\(device)/queue/\(knob)")
                if value != SnapshotKeys.errorPrefix + String(cString: strerror(ENOENT)) {
                    settings[SnapshotKeys.queue(device, knob)] = value
                }
            }
        }
        settings[SnapshotKeys.nvmePollQueues] = readSetting("\(sysfsRoot)/\(SnapshotKeys.nvmePollQueues)")
        settings[SnapshotKeys.kernelRelease] = kernelRelease(procRoot: procRoot)
        settings[SnapshotKeys.kernelBTF] = exists("\(sysfsRoot)/kernel/btf/vmlinux") ? "present" : "absent"
        collectKallsyms(procRoot: procRoot, sysfsRoot: sysfsRoot, into: &settings)
        collectMachine(sysfsRoot: sysfsRoot, procRoot: procRoot, into: &settings)
        return settings
    }

    // MARK: Devices

    static func chooseDevices(sysfsRoot: String, requested: [String]?) -> (devices: [String], note: String?) {
        if let requested, !requested.isEmpty {
            var notes: [String] = []
            let devices = requested.map { name -> String in
                let bare = name.hasPrefix("/dev/") ? String(name.dropFirst(5)) : name
                if let disk = diskOfPartition(bare, sysfsRoot: sysfsRoot) {
                    notes.append("\(bare) is a partition: showing its disk \(disk)")
                    return disk
                }
                return bare
            }
            return (devices, notes.isEmpty ? nil : notes.joined(separator: "; "))
        }
        let all = ((try? FileManager.default.contentsOfDirectory(atPath: "\(sysfsRoot)/block")) ?? []).sorted()
        let nvme = all.filter { $0.hasPrefix("nvme") }
        if !nvme.isEmpty { return (nvme, nil) }
        let physical = all.filter { !isVirtualDevice($0, sysfsRoot: sysfsRoot) }
        if physical.isEmpty {
            return ([], "no NVMe and no non-virtual block device under \(sysfsRoot)/block")
        }
        return (physical, "no NVMe device under \(sysfsRoot)/block: showing every non-virtual block device (\(physical.joined(separator: ", ")))")
    }

    /// Virtual devices (loop, zram, dm-…) live under /sys/devices/virtual.
    static func isVirtualDevice(_ name: String, sysfsRoot: String) -> Bool {
        guard let resolved = realPath("\(sysfsRoot)/block/\(name)") else { return false }
        return resolved.contains("/devices/virtual/")
    }

    /// "nvme0n1p1" → "nvme0n1" when class/block/<name> is a partition (its parent is the disk).
    static func diskOfPartition(_ name: String, sysfsRoot: String) -> String? {
        guard !exists("\(sysfsRoot)/block/\(name)"),
              exists("\(sysfsRoot)/class/block/\(name)/partition"),
              let resolved = realPath("\(sysfsRoot)/class/block/\(name)") else { return nil }
        let parent = (resolved as NSString).deletingLastPathComponent
        return (parent as NSString).lastPathComponent
    }

    // MARK: Kernel

    /// procRoot/sys/kernel/osrelease (what uname reports); uname(2) itself only for the real /proc.
    static func kernelRelease(procRoot: String) -> String {
        let fromProc = readSetting("\(procRoot)/sys/kernel/osrelease")
        guard fromProc.hasPrefix(SnapshotKeys.errorPrefix), procRoot == "/proc" else { return fromProc }
        var names = utsname()
        guard uname(&names) == 0 else { return fromProc }
        return withUnsafeBytes(of: &names.release) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }

    /// Symbols, tracepoints and kprobe support from kallsyms: names are listed even unprivileged
    /// (addresses then read 0), so presence is all that is recorded.
    static func collectKallsyms(procRoot: String, sysfsRoot: String, into settings: inout [String: String]) {
        let contents = readBytes("\(procRoot)/kallsyms")
        let symbolKeys = SnapshotKeys.symbols.map(SnapshotKeys.symbol)
        let tracepointKeys = SnapshotKeys.tracepoints.map(SnapshotKeys.tracepoint)
        guard case .success(let bytes) = contents else {
            if case .failure(let error) = contents {
                let value = SnapshotKeys.errorPrefix + error.message
                for key in symbolKeys + tracepointKeys { settings[key] = value }
                settings[SnapshotKeys.kernelKprobes] = kprobeInterfaceExists(sysfsRoot: sysfsRoot) ? "present" : value
            }
            return
        }
        var wanted: [String: String] = ["register_kprobe": SnapshotKeys.kernelKprobes]
        for (name, key) in zip(SnapshotKeys.symbols, symbolKeys) { wanted[name] = key }
        for (name, key) in zip(SnapshotKeys.tracepoints, tracepointKeys) {
            wanted["__traceiter_\(name)"] = key
            wanted["__tracepoint_\(name)"] = key
        }
        var found = Set<String>()
        forEachSymbolName(in: bytes) { name in
            if let key = wanted[name] { found.insert(key) }
        }
        for key in symbolKeys + tracepointKeys { settings[key] = found.contains(key) ? "present" : "absent" }
        let kprobes = found.contains(SnapshotKeys.kernelKprobes) || kprobeInterfaceExists(sysfsRoot: sysfsRoot)
        settings[SnapshotKeys.kernelKprobes] = kprobes ? "present" : "absent"
    }

    /// The kprobe PMU libbpf attaches through, or debugfs's kprobes directory.
    static func kprobeInterfaceExists(sysfsRoot: String) -> Bool {
        exists("\(sysfsRoot)/bus/event_source/devices/kprobe") || exists("\(sysfsRoot)/kernel/debug/kprobes")
    }

    /// Calls `body` with the third field ("addr type name [module]") of every kallsyms line.
    static func forEachSymbolName(in bytes: [UInt8], _ body: (String) -> Void) {
        let newline = UInt8(ascii: "\n"), space = UInt8(ascii: " "), tab = UInt8(ascii: "\t")
        bytes.withUnsafeBufferPointer { buffer in
            var index = 0
            while index < buffer.count {
                var fieldsSkipped = 0
                while index < buffer.count, buffer[index] != newline, fieldsSkipped < 2 {
                    if buffer[index] == space { fieldsSkipped += 1 }
                    index += 1
                }
                let start = index
                while index < buffer.count, buffer[index] != newline, buffer[index] != space, buffer[index] != tab {
                    index += 1
                }
                if fieldsSkipped == 2, index > start {
                    body(String(decoding: UnsafeBufferPointer(rebasing: buffer[start..<index]), as: UTF8.self))
                }
                while index < buffer.count, buffer[index] != newline { index += 1 }
                index += 1
            }
        }
    }

    /// Whether this is a virtual machine: the CPU's hypervisor flag and the DMI product name.
    static func collectMachine(sysfsRoot: String, procRoot: String, into settings: inout [String: String]) {
        if case .success(let bytes) = readBytes("\(procRoot)/cpuinfo") {
            let flags = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
                .first { $0.hasPrefix("flags") }?.split(separator: " ") ?? []
            settings[SnapshotKeys.machineHypervisor] = flags.contains("hypervisor") ? "present" : "absent"
        }
        let vendor = readSetting("\(sysfsRoot)/class/dmi/id/sys_vendor")
        let product = readSetting("\(sysfsRoot)/class/dmi/id/product_name")
        let named = [vendor, product].filter { !$0.hasPrefix(SnapshotKeys.errorPrefix) && !$0.isEmpty }
        if !named.isEmpty { settings[SnapshotKeys.machineProduct] = named.joined(separator: " ") }
    }

    // MARK: Files

    struct ReadError: Error {
        let code: Int32
        var message: String { String(cString: strerror(code)) }
    }

    /// The file's content trimmed, or "error: <strerror>" — the snapshot's value format.
    static func readSetting(_ path: String) -> String {
        switch readBytes(path, limit: 64 * 1024) {
        case .success(let bytes):
            return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        case .failure(let error):
            return SnapshotKeys.errorPrefix + error.message
        }
    }

    /// Raw read(2) so the kernel's errno (e.g. EINVAL from wbt_lat_usec) is kept.
    static func readBytes(_ path: String, limit: Int = 64 * 1024 * 1024) -> Result<[UInt8], ReadError> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(ReadError(code: errno)) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 256 * 1024)
        while bytes.count < limit {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return .failure(ReadError(code: errno))
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return .success(bytes)
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
