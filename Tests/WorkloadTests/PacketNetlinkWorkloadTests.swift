// Packet (AF_PACKET) and netlink sockets through real dump and restore: bindings,
// options, memberships, fanout and rings read back, and traffic arrives afterwards.

import LinuxKernel
import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Workload {
    static let packet = Workload(name: "packet")
    static let packetMapped = Workload(name: "packet", args: ["mapped"])
    static let packetQdiscBypass = Workload(name: "packet", args: ["qdisc"])
    static let netlink = Workload(name: "netlink")
    static let netlinkQueued = Workload(name: "netlink", args: ["queued"])
}

extension CheckpointRestoreTests {
    // One at a time: the workloads share lo's traffic of one ethertype, a multicast group,
    // a fanout group id and a USERSOCK group.
    @Suite("packet and netlink sockets", .serialized)
    struct PacketNetlink {
        @Test("packet sockets (dgram, raw with TPACKET_V2 rx/tx and V3 rx rings, fanout, SOCK_PACKET) keep bindings and options, receive and send", arguments: Mode.allCases)
        func packetSockets(_ mode: Mode) async throws { try await checkpointRestore(.packet, mode) }

        // The same images as CRIU 4.2 writes and reads them. Netlink is left out: CRIU 4.2
        // stops at 32 groups ("Groups above 32 are not supported yet", sk-netlink.c), and
        // the workload holds one above.
        @Test("packet sockets with rings, fanout and SOCK_PACKET, with CRIU 4.2", .enabled(if: ReferenceCriu.available, ReferenceCriu.reason),
              arguments: Direction.allCases)
        func packetSocketsWithCriu(_ d: Direction) async throws { try await crossRestore(.packet, d) }

        @Test("a mapped packet ring is refused, naming the mapping and why; workload keeps running")
        func packetRingMapped() async throws {
            try await expectRefused(.packetMapped, ["packet ring socket:[", "cannot be dumped: the kernel's position in the ring"])
        }

        @Test("a packet socket with PACKET_QDISC_BYPASS, which the image cannot carry, is refused; workload keeps running")
        func packetUncarriedOption() async throws {
            try await expectRefused(.packetQdiscBypass, ["packet socket (inode", "PACKET_QDISC_BYPASS set"])
        }

        @Test("netlink sockets keep ports, groups above 32, options, type and peer; requests and group messages arrive", arguments: Mode.allCases)
        func netlinkSockets(_ mode: Mode) async throws { try await checkpointRestore(.netlink, mode) }

        @Test("a netlink socket with a message waiting is refused, naming the socket; workload keeps running")
        func netlinkQueued() async throws {
            try await expectRefused(.netlinkQueued, ["netlink socket (inode", "messages waiting"])
        }

        private func expectRefused(_ w: Workload, _ words: [String]) async throws {
            try #require(FileManager.default.isExecutableFile(atPath: Paths.binary), "no CLI at \(Paths.binary)")
            let run = try WorkloadRun(w)
            defer { run.cleanup() }
            try run.start()
            try await run.waitReady()
            let d = await run.dump(leaveRunning: false)
            #expect(d.status != 0, "dump succeeded\n\(d)")
            #expect(d.stderr.contains("pid \(run.rootPid)") && words.allSatisfy { d.stderr.contains($0) }, "\(d)")
            #expect(run.runningUntraced() == nil, "after the refused dump: \(run.runningUntraced() ?? "")")
            #expect(!FileManager.default.fileExists(atPath: run.images + "/inventory.img"))
            await run.expectPass("workload after the refused dump")
        }
    }
}

