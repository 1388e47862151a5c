// TLS servers, tls routes and clusters' upstream TLS in `ingressd routes` and `/config_dump`.
// Certificates are shown by what they are (subject, validity, chain length), read back from the
// PEM the table carries; private keys are never shown, not even their length.
import RouteTable

func tlsModeName(_ m: TLSServerMode) -> String {
    switch m {
    case .simple: return "SIMPLE"
    case .mutual: return "MUTUAL"
    case .optionalMutual: return "OPTIONAL_MUTUAL"
    case .passthrough: return "PASSTHROUGH"
    }
}

func tlsVersionName(_ v: TLSVersionSpec) -> String {
    switch v {
    case .auto: return "TLS_AUTO"
    case .v1_0: return "TLSV1_0"
    case .v1_1: return "TLSV1_1"
    case .v1_2: return "TLSV1_2"
    case .v1_3: return "TLSV1_3"
    }
}

func describeCertificate(_ pem: [UInt8]) -> String {
    guard let c = certificateSummary(pem) else { return "(no certificate)" }
    var text = "\(c.subject) valid \(c.notBefore) to \(c.notAfter)"
    if c.expired { text += " EXPIRED" }
    if c.notYetValid { text += " NOT YET VALID" }
    return text + (c.count == 1 ? "" : " (chain of \(c.count))")
}

/// The lines of one TLS server, without indentation.
func renderTLSServerLines(_ s: TLSServerSpec) -> [String] {
    var lines = ["tls server \(s.name) \(tlsModeName(s.mode)) hosts [\(s.hosts.joined(separator: ", "))]"]
    guard s.mode != .passthrough else {
        lines.append("  passthrough: not terminated, routed by SNI to tls routes")
        return lines
    }
    lines.append("  certificate: \(describeCertificate(s.certificateChainPEM))")
    if !s.secondCertificateChainPEM.isEmpty {
        lines.append("  second certificate: \(describeCertificate(s.secondCertificateChainPEM))")
    }
    if !s.caCertificatesPEM.isEmpty {
        lines.append("  client CA: \(describeCertificate(s.caCertificatesPEM))"
                     + (s.mode == .mutual ? ", client certificate required" : ", client certificate optional")
                     + (s.crlPEM.isEmpty ? "" : ", checked against \(PEMCheck.crlCount(s.crlPEM)) CRL(s)"))
    }
    lines.append("  versions: \(tlsVersionName(s.minVersion)) to \(tlsVersionName(s.maxVersion))"
                 + (s.cipherSuites.isEmpty ? "" : ", ciphers \(s.cipherSuites)"))
    if !s.subjectAltNames.isEmpty { lines.append("  client SANs: \(s.subjectAltNames.joined(separator: ", "))") }
    if !s.verifyCertificateSpki.isEmpty { lines.append("  client SPKI pins: \(s.verifyCertificateSpki.joined(separator: ", "))") }
    if !s.verifyCertificateHash.isEmpty { lines.append("  client certificate hashes: \(s.verifyCertificateHash.joined(separator: ", "))") }
    return lines
}

/// The TLS part of an HTTPS/TLS listener in `ingressd routes`, indented under the listener.
func renderTLSListener(_ l: ListenerSpec, _ table: TableSpec) -> String {
    var out = ""
    if l.tlsServers.isEmpty { out += "  no TLS servers: connections are closed\n" }
    for s in l.tlsServers {
        for line in renderTLSServerLines(s) { out += "  \(line)\n" }
    }
    if l.tlsServers.contains(where: { $0.mode == .passthrough }) {
        out += "  tls routes (passthrough, by SNI)\n"
        if l.tlsRoutes.isEmpty { out += "    no tls routes: passthrough connections are closed\n" }
        for (n, r) in l.tlsRoutes.enumerated() {
            out += "    \(n + 1). \(r.name) sni [\(r.sniHosts.joined(separator: ", "))]\n"
            out += "       action: \(describe(.forward(r.destinations), table)) (spliced, not terminated)\n"
        }
    }
    return out
}

func jsonCertificate(_ pem: [UInt8]) -> String {
    guard let c = certificateSummary(pem) else { return "null" }
    return "{\"subject\":\(jsonString(c.subject)),\"notBefore\":\(jsonString(c.notBefore)),\"notAfter\":\(jsonString(c.notAfter)),"
        + "\"expired\":\(c.expired),\"notYetValid\":\(c.notYetValid),\"count\":\(c.count)}"
}

/// `"tlsServers":[...],"tlsRoutes":[...]` of a listener for `/config_dump` (no private key).
func jsonTLS(_ l: ListenerSpec, _ table: TableSpec) -> String {
    func list(_ l: [String]) -> String { "[" + l.map(jsonString).joined(separator: ",") + "]" }
    let servers = l.tlsServers.map { s -> String in
        var f = ["\"name\":\(jsonString(s.name))", "\"mode\":\"\(tlsModeName(s.mode))\"", "\"hosts\":\(list(s.hosts))"]
        if s.mode != .passthrough {
            f.append("\"certificate\":\(jsonCertificate(s.certificateChainPEM))")
            f.append("\"secondCertificate\":\(s.secondCertificateChainPEM.isEmpty ? "null" : jsonCertificate(s.secondCertificateChainPEM))")
            f.append("\"clientCA\":\(s.caCertificatesPEM.isEmpty ? "null" : jsonCertificate(s.caCertificatesPEM))")
            f.append("\"crls\":\(PEMCheck.crlCount(s.crlPEM))")
            f.append("\"minProtocolVersion\":\"\(tlsVersionName(s.minVersion))\"")
            f.append("\"maxProtocolVersion\":\"\(tlsVersionName(s.maxVersion))\"")
            f.append("\"cipherSuites\":\(jsonString(s.cipherSuites))")
            f.append("\"subjectAltNames\":\(list(s.subjectAltNames))")
            f.append("\"verifyCertificateSpki\":\(list(s.verifyCertificateSpki))")
            f.append("\"verifyCertificateHash\":\(list(s.verifyCertificateHash))")
        }
        return "{" + f.joined(separator: ",") + "}"
    }
    let routes = l.tlsRoutes.map { r in
        "{\"name\":\(jsonString(r.name)),\"sniHosts\":\(list(r.sniHosts)),\"action\":\(json(.forward(r.destinations), table))}"
    }
    return "\"tlsServers\":[" + servers.joined(separator: ",") + "],\"tlsRoutes\":[" + routes.joined(separator: ",") + "]"
}

// MARK: TLS to upstreams (DestinationRule tls)

func clusterTLSModeName(_ m: ClusterTLSMode) -> String {
    switch m {
    case .disable: return "DISABLE"
    case .simple: return "SIMPLE"
    case .mutual: return "MUTUAL"
    }
}

/// The lines of a cluster's TLS settings, without indentation; none for plain text. The client
/// key is never shown.
func renderClusterTLSLines(_ c: ClusterSpec) -> [String] {
    guard let t = c.tls, t.mode != .disable else { return [] }
    let sni = t.sni.isEmpty ? "sni from the request's Host" : "sni \(t.sni)"
    let verify = t.insecureSkipVerify ? "certificate NOT VERIFIED (insecureSkipVerify)"
        : t.caCertificatesPEM.isEmpty ? "CA system CAs" : "CA \(describeCertificate(t.caCertificatesPEM))"
    var lines = ["tls \(clusterTLSModeName(t.mode)) \(sni), \(verify)"]
    if t.mode == .mutual { lines.append("  client certificate \(describeCertificate(t.clientCertificateChainPEM))") }
    if !t.subjectAltNames.isEmpty { lines.append("  SANs \(t.subjectAltNames.joined(separator: ", "))") }
    if !t.crlPEM.isEmpty { lines.append("  checked against \(PEMCheck.crlCount(t.crlPEM)) CRL(s)") }
    return lines
}

/// `"tls":…` of a cluster for `/config_dump`: null for plain text; never the client key.
func jsonClusterTLS(_ c: ClusterSpec) -> String {
    guard let t = c.tls, t.mode != .disable else { return "\"tls\":null" }
    var f = ["\"mode\":\"\(clusterTLSModeName(t.mode))\"", "\"sni\":\(t.sni.isEmpty ? "null" : jsonString(t.sni))"]
    f.append("\"caCertificates\":\(t.caCertificatesPEM.isEmpty ? "null" : jsonCertificate(t.caCertificatesPEM))")
    f.append("\"systemCAs\":\(t.caCertificatesPEM.isEmpty && !t.insecureSkipVerify)")
    f.append("\"insecureSkipVerify\":\(t.insecureSkipVerify)")
    f.append("\"clientCertificate\":\(t.mode == .mutual ? jsonCertificate(t.clientCertificateChainPEM) : "null")")
    f.append("\"subjectAltNames\":[" + t.subjectAltNames.map(jsonString).joined(separator: ",") + "]")
    f.append("\"crls\":\(PEMCheck.crlCount(t.crlPEM))")
    return "\"tls\":{" + f.joined(separator: ",") + "}"
}
