import Foundation
import LinuxKernel
import Images
#if canImport(Glibc)
import Glibc
#endif

/// A temporary directory made for one test, removed with all it holds by `tearDown()` or,
/// at the latest, when the last reference goes. What must go before it (containers to
/// delete, processes to kill) is registered with `onTearDown` and runs first, newest first.
public final class Scratch {
    public let path: String
    private var cleanups: [() -> Void] = []
    private var tornDown = false

    /// /tmp/oct-NAME-XXXXXX: short, as unix socket paths below it must fit in 108 bytes.
    public init(_ name: String = "test") throws {
        var template = Array("/tmp/oct-\(name)-XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw CheckpointError.errno("mkdtemp /tmp/oct-\(name)-XXXXXX")
        }
        path = String(cString: template)
    }

    deinit { tearDown() }

    /// The path of `name` inside the scratch directory (nothing is created).
    public func sub(_ name: String) -> String { path + "/" + name }

    /// A directory `name` inside the scratch directory, created with its parents.
    public func directory(_ name: String) throws -> String {
        let p = sub(name)
        try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        return p
    }

    /// The path of one image inside the scratch directory.
    public func file(_ image: ImageName) -> String { sub(image.fileName) }

    /// The scratch directory as an image directory.
    public var images: ImageDirectory { ImageDirectory(path: path) }

    /// The names directly inside, sorted: proves what a test left behind.
    public func listing() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
    }

    public func onTearDown(_ body: @escaping () -> Void) { cleanups.append(body) }

    /// Runs the registered cleanups, then removes the directory; later calls do nothing.
    /// Mounts left inside are not descended into (what they show is not ours to delete).
    public func tearDown() {
        guard !tornDown else { return }
        tornDown = true
        for cleanup in cleanups.reversed() { cleanup() }
        cleanups = []
        Cmd.run(["/bin/rm", "-rf", "--one-file-system", path], timeout: 60)
    }
}
