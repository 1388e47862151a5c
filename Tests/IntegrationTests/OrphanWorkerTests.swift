// A worker that starts after its supervisor died (DESIGN.md §1: workers die with the
// supervisor). PR_SET_PDEATHSIG only covers a parent that dies after the prctl; a worker exec'd
// a moment too late would otherwise keep serving the Gateway ports with nobody to stop it.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class OrphanWorkerTests: IntegrationTestCase {
    func testWorkerStartedAfterTheSupervisorDiedExits() throws {
        let upstream = try harness.startUpstream("web")
        let port = try freeTCPPort()
        let config = try harness.write("svc.yaml", ServiceGateway.config(port: port, services: [("web", [upstream.port])]))
        // The supervisor spawns this script; once `slow` exists it waits before exec'ing the
        // worker, which leaves time to kill the supervisor in between.
        let marker = harness.path("slow")
        let wrapper = try harness.write("slow-worker.sh", """
            #!/bin/sh
            if [ -e '\(marker)' ]; then sleep 1.5; fi
            exec '\(Paths.ingressdBinary)' "$@"

            """)
        chmod(wrapper, 0o755)
        setenv("INGRESSD_WORKER_EXECUTABLE", wrapper, 1)
        let gateway: Ingressd
        do {
            defer { unsetenv("INGRESSD_WORKER_EXECUTABLE") }
            gateway = try harness.startIngressd(configs: [config], listenPort: port, workers: 1)
        }
        let first = gateway.workerPids
        XCTAssertEqual(first.count, 1)
        guard let firstWorker = first.first else { return }

        FileManager.default.createFile(atPath: marker, contents: nil)
        kill(firstWorker, SIGKILL)
        var replacement: pid_t?
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline && replacement == nil {
            replacement = ProcFS.children(of: gateway.pid).first { $0 != firstWorker }
            if replacement == nil { usleep(10_000) }
        }
        guard let orphan = replacement else { return XCTFail("no replacement worker was spawned:\n\(gateway.outputTail)") }
        kill(gateway.pid, SIGKILL)   // while the replacement still sleeps in the script
        defer { if ProcFS.isAlive(orphan) { kill(orphan, SIGKILL) } }

        let gone = Date().addingTimeInterval(8)
        while Date() < gone && ProcFS.isAlive(orphan) { usleep(50_000) }
        XCTAssertFalse(ProcFS.isAlive(orphan), "a worker started after its supervisor died must exit, not keep port \(port)")
        XCTAssertTrue(gateway.child.stderr.contains("the supervisor (pid \(gateway.pid)) is gone"),
                      "it says why:\n\(gateway.outputTail)")
        XCTAssertThrowsError(try RawHTTP.exchange(port: port, send: Array("GET / HTTP/1.1\r\nHost: web.test\r\n\r\n".utf8), timeout: 1),
                             "nothing listens on the Gateway port any more")
    }
}
