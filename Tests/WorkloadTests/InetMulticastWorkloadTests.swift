// Inet options CRIU's image has no field for, carried in fields of ours: IP_RECVERR, the
// path-MTU mode, multicast options and memberships, SO_LOCK_FILTER.

import Foundation
import SystemTestSupport
import Testing

@Suite("inet multicast and options beyond CRIU's image", .serialized)
struct InetMulticastWorkloadTests {
    @Test("IP(V6)_RECVERR, IP(V6)_MTU_DISCOVER, multicast TTL/hops, loop, interface and groups joined on lo, SO_BROADCAST, SO_LOCK_FILTER",
          arguments: Mode.allCases)
    func options(_ mode: Mode) async throws {
        try await checkpointRestore(Workload(name: "inet-mcast"), mode)
    }
}
