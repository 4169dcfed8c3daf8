/// The tool's version, recorded in every dump header.
public enum DPASTraceVersion {
    public static let string = "0.1.0"
}
