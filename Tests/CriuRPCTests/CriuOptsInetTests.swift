@testable import CriuRPC
import Engine
import Foundation
import Images
import LinuxKernel
import Testing

@Suite("criu_opts → TCP options")
struct CriuOptsInetTests {
    @Test("tcp_close, tcp_skip_in_flight and network_lock reach the engine, as runc passes them")
    func tcpOptions() throws {
        var o = CriuOpts()
        o.tcpClose = true
        o.tcpSkipInFlight = true
        o.networkLock = .nftables
        let d = try o.dumpOptions(imagesDir: "/x")
        #expect(d.tcpClose && d.skipInFlight && d.networkLock == .nftables)
        let r = try o.restoreOptions(imagesDir: "/x")
        #expect(r.tcpClose && r.networkLock == .nftables)
        #expect(o.ignoredOptions.isEmpty, "\(o.ignoredOptions)")
        o.networkLock = .skip
        #expect(try o.dumpOptions(imagesDir: "/x").networkLock == .skip)
        #expect(try CriuOpts().dumpOptions(imagesDir: "/x").networkLock == .iptables)
    }

    @Test("config files name them as CRIU's do")
    func configFile() throws {
        let path = NSTemporaryDirectory() + "criu-inet-\(getpid()).conf"
        defer { unlink(path) }
        try "skip-in-flight\nnetwork-lock nftables\ntcp-close\n".write(toFile: path, atomically: true, encoding: .utf8)
        var o = CriuOpts()
        try CriuConfigFile.apply(path: path, to: &o)
        #expect(o.tcpSkipInFlight && o.tcpClose && o.networkLock == .nftables)
        try "network-lock ebtables\n".write(toFile: path, atomically: true, encoding: .utf8)
        var bad = CriuOpts()
        #expect(throws: CheckpointError.self) { try CriuConfigFile.apply(path: path, to: &bad) }
    }
}
