import SharedMemory

/// What `ingressd version` prints. Bump `version` with every release (README.md).
public enum BuildInfo {
    public static let version = "0.1.0-dev"

    public static var summary: String {
        #if arch(x86_64)
        let arch = "x86_64"
        #elseif arch(arm64)
        let arch = "aarch64"
        #else
        let arch = "unknown"
        #endif
        return "ingressd \(version) (linux \(arch), layout \(layoutVersionText))"
    }

    /// The shared-memory layout version: supervisor and workers of one binary always agree, but
    /// an operator comparing two binaries for a live upgrade wants to see it.
    static var layoutVersionText: String { "v\(sharedLayoutVersion)" }
}

let sharedLayoutVersion = SharedRegion.layoutVersion
