/// A kernel release string (`uname -r`) reduced to what decides the polling features.
public struct KernelRelease: Sendable, Equatable, Comparable {
    public var major: Int
    public var minor: Int
    public var text: String

    /// Parses "6.18.44-fc-v657" or "5.18.0-rc6-dpas-fast26"; nil when it does not start with N.N.
    public init?(_ text: String) {
        let numbers = text.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard numbers.count == 2, text.first?.isNumber == true else { return nil }
        major = numbers[0]
        minor = numbers[1]
        self.text = text
    }

    public init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
        self.text = "\(major).\(minor)"
    }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.major, lhs.minor) < (rhs.major, rhs.minor)
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        (lhs.major, lhs.minor) == (rhs.major, rhs.minor)
    }

    /// "blk-mq: remove hybrid polling" landed in 6.4; from then on io_poll_delay always reads -1.
    public static let hybridPollingRemoved = KernelRelease(major: 6, minor: 4)
    /// Synchronous RWF_HIPRI polling (preadv2, fio pvsync2 --hipri) is gone from 5.19 on.
    public static let syncPollingRemoved = KernelRelease(major: 5, minor: 19)

    public var hasHybridPolling: Bool { self < Self.hybridPollingRemoved }
    public var hasSyncPolling: Bool { self < Self.syncPollingRemoved }

    /// "6.18" — what the findings print.
    public var shortVersion: String { "\(major).\(minor)" }
}
