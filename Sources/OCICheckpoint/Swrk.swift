import ArgumentParser
import CriuRPC
import Foundation

struct Swrk: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve CRIU's RPC on a SOCK_SEQPACKET socket (what runc --criu runs).")

    @Argument(help: "The socket's descriptor (runc passes 3).")
    var fd: Int32

    func run() throws {
        if !Self.serve(fd: fd) { throw ExitCode(1) }
    }

    /// Whether the last request succeeded.
    static func serve(fd: Int32) -> Bool {
        let service = RPCService(socket: RPCSocket(fd: fd))
        service.dumpExtensions = ContainerState.dumpExtensions()
        service.restoreExtensions = ContainerState.restoreExtensions()
        service.makeFreezer = ContainerState.freezer
        return service.run()
    }

    /// `swrk FD` exactly, as runc runs it, or nil. runc starts a service twice per
    /// checkpoint or restore (VERSION, then the request), and ArgumentParser's reflection
    /// over every command is a fixed cost of each start that CRIU does not pay.
    static func fastPath(_ arguments: [String]) -> Int32? {
        guard arguments.count == 2, arguments[0] == "swrk", let fd = Int32(arguments[1]), fd >= 0 else { return nil }
        return fd
    }
}
