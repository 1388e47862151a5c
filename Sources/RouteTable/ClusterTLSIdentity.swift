// The 64-bit identity of a cluster's TLS settings (TableLayout.swift, ClusterTLS identityU64).
// Upstream connection pools key TLS connections by it, so that a connection opened with one
// client certificate, CA, SNI, SAN list or CRL is never reused for a cluster whose settings differ,
// while clusters (and table generations) with the same settings share connections.
//
// It is SipHash-2-4 (Aumasson & Bernstein, 2012) with a fixed key over a canonical encoding of
// every field, each length-prefixed so that no two different settings encode alike. The key is
// public: the identity guards against accidental collisions between settings an operator wrote
// (probability about 2^-64 per pair), not against an adversary choosing configurations. Its
// value is part of the image format: change the encoding only with `Layout.version`.

public enum ClusterTLSIdentity {
    /// The identity of these settings, never 0 (0 means "no TLS"). Control plane and image
    /// validation only: it allocates.
    public static func of(mode: UInt8, skipVerify: Bool, ca: some Collection<UInt8>, chain: some Collection<UInt8>,
                          key: some Collection<UInt8>, sni: some Collection<UInt8>, sans: [[UInt8]],
                          crl: some Collection<UInt8>) -> UInt64 {
        var e: [UInt8] = [mode, skipVerify ? 1 : 0]
        func field(_ b: some Collection<UInt8>) {
            let n = UInt32(truncatingIfNeeded: b.count)
            for shift in stride(from: 0, to: 32, by: 8) { e.append(UInt8(truncatingIfNeeded: n >> UInt32(shift))) }
            e.append(contentsOf: b)
        }
        field(ca); field(chain); field(key); field(sni)
        field([UInt8]())  // separator before the SAN list, whose count follows
        let n = UInt32(truncatingIfNeeded: sans.count)
        for shift in stride(from: 0, to: 32, by: 8) { e.append(UInt8(truncatingIfNeeded: n >> UInt32(shift))) }
        for s in sans { field(s) }
        field(crl)
        let h = sipHash24(e)
        return h == 0 ? 1 : h
    }

    /// SipHash-2-4 of `bytes` with the reference key 00 01 02 … 0f (the paper's test vectors).
    static func sipHash24(_ bytes: [UInt8]) -> UInt64 {
        let k0: UInt64 = 0x0706_0504_0302_0100, k1: UInt64 = 0x0F0E_0D0C_0B0A_0908
        var v0 = k0 ^ 0x736F_6D65_7073_6575, v1 = k1 ^ 0x646F_7261_6E64_6F6D
        var v2 = k0 ^ 0x6C79_6765_6E65_7261, v3 = k1 ^ 0x7465_6462_7974_6573
        func round() {
            v0 &+= v1; v1 = (v1 << 13) | (v1 >> 51); v1 ^= v0; v0 = (v0 << 32) | (v0 >> 32)
            v2 &+= v3; v3 = (v3 << 16) | (v3 >> 48); v3 ^= v2
            v0 &+= v3; v3 = (v3 << 21) | (v3 >> 43); v3 ^= v0
            v2 &+= v1; v1 = (v1 << 17) | (v1 >> 47); v1 ^= v2; v2 = (v2 << 32) | (v2 >> 32)
        }
        func word(_ at: Int, _ n: Int) -> UInt64 {
            var m: UInt64 = 0
            for i in 0..<n { m |= UInt64(bytes[at + i]) << UInt64(8 * i) }
            return m
        }
        let full = bytes.count / 8 * 8
        var at = 0
        while at < full {
            let m = word(at, 8)
            v3 ^= m; round(); round(); v0 ^= m
            at += 8
        }
        let m = word(full, bytes.count - full) | UInt64(truncatingIfNeeded: bytes.count) << 56
        v3 ^= m; round(); round(); v0 ^= m
        v2 ^= 0xFF
        round(); round(); round(); round()
        return v0 ^ v1 ^ v2 ^ v3
    }
}
