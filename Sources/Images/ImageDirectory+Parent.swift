import Foundation
import LinuxKernel

extension ImageDirectory {
    /// The `parent` link an incremental dump makes to the images it builds on, as CRIU's.
    public var parentLink: String { (path as NSString).appendingPathComponent("parent") }

    /// The parent images (the link followed from this directory), nil without one.
    public var parentImages: ImageDirectory? {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: parentLink) else { return nil }
        return ImageDirectory(path: resolve(target))
    }

    /// `parent` (absolute, or relative to this directory as CRIU's --prev-images-dir is)
    /// becomes the `parent` link, replacing any older one; returns the directory it names.
    @discardableResult
    public func linkParent(_ parent: String) throws -> ImageDirectory {
        unlink(parentLink)
        if symlink(parent, parentLink) != 0 { throw CheckpointError.errno("link \(parentLink) to the parent images \(parent)") }
        return ImageDirectory(path: resolve(parent))
    }

    private func resolve(_ target: String) -> String {
        target.hasPrefix("/") ? target : (path as NSString).appendingPathComponent(target)
    }
}
