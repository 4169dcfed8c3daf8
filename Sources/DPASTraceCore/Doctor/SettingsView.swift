/// Typed reads over a settings snapshot, shared by the doctor's rules.
struct SettingsView {
    enum Reading: Equatable {
        case value(String)
        /// The file existed but reading it failed; the text is strerror's.
        case error(String)
        case missing
    }

    let raw: [String: String]

    init(_ raw: [String: String]) { self.raw = raw }

    func reading(_ key: String) -> Reading {
        guard let text = raw[key] else { return .missing }
        if text.hasPrefix(SnapshotKeys.errorPrefix) { return .error(String(text.dropFirst(SnapshotKeys.errorPrefix.count))) }
        return .value(text)
    }

    /// The value, or nil when missing or unreadable.
    func value(_ key: String) -> String? {
        if case .value(let text) = reading(key) { return text }
        return nil
    }

    func int(_ key: String) -> Int? { value(key).flatMap { Int($0) } }

    /// For details: the value, the error, or "missing".
    func describe(_ key: String) -> String {
        switch reading(key) {
        case .value(let text): text
        case .error(let message): "error: \(message)"
        case .missing: "missing"
        }
    }

    var note: String? { value(SnapshotKeys.snapshotNote) }

    /// True when any device has a DPAS knob or the DPAS global is in kallsyms.
    var isDPASKernel: Bool {
        value(SnapshotKeys.symbol("irq_poll_switch")) == "present"
            || raw.keys.contains { key in
                key.hasPrefix("block/") && SnapshotKeys.dpasKnobs.contains { key.hasSuffix("/queue/\($0)") }
            }
    }

    /// nil when unknown (neither the cpuinfo flag nor DMI recorded).
    var isVirtualMachine: Bool? {
        if value(SnapshotKeys.machineHypervisor) == "present" { return true }
        if let product = value(SnapshotKeys.machineProduct) {
            let known = ["QEMU", "KVM", "VirtualBox", "VMware", "Bochs", "Xen", "Virtual Machine", "Cloud Hypervisor", "Firecracker"]
            if known.contains(where: { product.lowercased().contains($0.lowercased()) }) { return true }
        }
        if value(SnapshotKeys.machineHypervisor) == "absent" { return false }
        return nil
    }

    /// " (QEMU Standard PC …)" when DMI named the machine.
    var productSuffix: String { value(SnapshotKeys.machineProduct).map { " (\($0))" } ?? "" }

    /// The kallsyms read error, when every symbol key carries it.
    var symbolsError: String? {
        let readings = SnapshotKeys.symbols.map { reading(SnapshotKeys.symbol($0)) }
        if case .error(let message)? = readings.first, readings.allSatisfy({ $0 == .error(message) }) { return message }
        if readings.allSatisfy({ $0 == .missing }) { return "not recorded" }
        return nil
    }
}

/// One device's settings, with the inferences several rules share.
struct DeviceContext {
    let view: SettingsView
    let name: String

    init(view: SettingsView, name: String) {
        self.view = view
        self.name = name
    }

    func reading(_ file: String) -> SettingsView.Reading { view.reading(SnapshotKeys.queue(name, file)) }

    func int(_ file: String) -> Int? { view.int(SnapshotKeys.queue(name, file)) }

    func knobInt(_ knob: String) -> Int? { int(knob) }

    /// The path a fix command should name (always the real /sys, whatever root was snapshotted).
    func sysPath(_ file: String) -> String { "/sys/block/\(name)/queue/\(file)" }

    func finding(_ id: String, severity: DoctorSeverity, title: String, detail: String, fix: String? = nil) -> DoctorFinding {
        DoctorFinding(id: id, group: "Queue \(name)", device: name, severity: severity, title: title, detail: detail, fix: fix)
    }

    /// False when the snapshot has no readable stock queue file for the device.
    var exists: Bool {
        SnapshotKeys.queueFiles.contains { file in
            switch reading(file) {
            case .value: true
            case .error(let message): message != "No such file or directory"
            case .missing: false
            }
        } || !knobValues.isEmpty
    }

    var kernel: KernelRelease? { view.value(SnapshotKeys.kernelRelease).flatMap(KernelRelease.init) }

    var pollQueues: Int? { view.int(SnapshotKeys.nvmePollQueues) }

    /// Every DPAS knob recorded for the device, value as stored (errors included).
    var knobValues: [String: String] {
        var values: [String: String] = [:]
        for knob in SnapshotKeys.dpasKnobs {
            if let text = view.raw[SnapshotKeys.queue(name, knob)] { values[knob] = text }
        }
        return values
    }

    var pasEnabled: Bool { knobInt("pas_enabled") == 1 }

    /// PAS, DPAS switching or EHP is switched on: logic that lives in the hybrid path.
    var dpasLogicEnabled: Bool { pasEnabled || knobInt("switch_enabled") == 1 || knobInt("ehp_enabled") == 1 }

    /// Whether the hybrid path runs under these settings, i.e. whether poll buckets are used.
    var statsFlagMatters: Bool {
        if kernel.map({ !$0.hasHybridPolling }) == true { return false }
        if case .value("0") = reading("io_poll") { return false }
        if pollQueues == 0 && name.hasPrefix("nvme") { return false }
        guard let delay = int("io_poll_delay") else { return true }
        return delay >= 0 || dpasLogicEnabled
    }

    /// What in the settings registers a blk_stat callback and so sets QUEUE_FLAG_STATS.
    var statsFlagSetters: [String] {
        var setters: [String] = []
        if let latency = int("wbt_lat_usec"), latency != 0 {
            setters.append("write-back throttling (wbt_lat_usec = \(latency))")
        }
        // The stock adaptive hybrid path enables its own poll stats on first use; PAS replaces it.
        if int("io_poll_delay") == 0, !pasEnabled, kernel.map(\.hasHybridPolling) ?? true {
            setters.append("the hybrid-poll stats callback (io_poll_delay = 0, once the first polled request completes)")
        }
        return setters
    }
}
