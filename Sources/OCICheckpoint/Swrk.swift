import ArgumentParser
import CriuRPC
import Foundation

struct Swrk: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve CRIU's RPC on a SOCK_SEQPACKET socket (what runc --criu runs).")

    @Argument(help: "The socket's descriptor (runc passes 3).")
    var fd: Int32

    func run() throws {
        let service = RPCService(socket: RPCSocket(fd: fd))
        service.dumpExtensions = ContainerState.dumpExtensions()
        service.restoreExtensions = ContainerState.restoreExtensions()
        service.makeFreezer = ContainerState.freezer
        if !service.run() { throw ExitCode(1) }
    }
}
