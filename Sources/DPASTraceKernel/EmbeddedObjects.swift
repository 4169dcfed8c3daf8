import Foundation

/// The BPF objects compiled from `bpf/` at build time (see Plugins/BPFObjectPlugin).
public enum BPFObjects {
    /// The ELF bytes of the object built from `bpf/NAME.bpf.c`, or nil if there is none.
    public static func object(named name: String) -> [UInt8]? {
        guard let encoded = EmbeddedBPFObjects.base64[name],
              let data = Data(base64Encoded: encoded) else { return nil }
        return [UInt8](data)
    }
}
