import Foundation
import SystemTestSupport

/// Crafts hostile archives with python's tarfile from a good plain archive of ours: members
/// dropped, or extra members (file:NAME, symlink:NAME:TARGET, hardlink:NAME:TARGET) put
/// before the manifest or after it.
enum BadArchive {
    enum Edit {
        case drop(String)
        case insertBeforeManifest([String])
        case append([String])
    }

    private static let script = """
    import io, sys, tarfile
    src, dst, mode = sys.argv[1:4]
    args = sys.argv[4:]
    def member(spec):
        kind, name, target = (spec.split(':', 2) + ['', ''])[:3]
        info = tarfile.TarInfo(name)
        data = None
        if kind == 'file':
            data = b'written by a hostile archive\\n'
            info.size = len(data)
        elif kind == 'symlink':
            info.type, info.linkname = tarfile.SYMTYPE, target
        elif kind == 'hardlink':
            info.type, info.linkname = tarfile.LNKTYPE, target
        return info, data
    def add_extras(out):
        for info, data in map(member, args):
            out.addfile(info, io.BytesIO(data) if data is not None else None)
    with tarfile.open(src) as good, tarfile.open(dst, 'w', format=tarfile.PAX_FORMAT) as out:
        for m in good.getmembers():
            if mode == 'drop' and m.name == args[0]:
                continue
            if mode == 'before' and m.name == 'ocicheckpoint.manifest.json':
                add_extras(out)
            out.addfile(m, good.extractfile(m) if m.isfile() else None)
        if mode == 'after':
            add_extras(out)
    """

    static func craft(from good: String, to bad: String, _ edit: Edit) throws {
        let (mode, args): (String, [String])
        switch edit {
        case .drop(let name): (mode, args) = ("drop", [name])
        case .insertBeforeManifest(let specs): (mode, args) = ("before", specs)
        case .append(let specs): (mode, args) = ("after", specs)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", script, good, bad, mode] + args
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TestFailure("crafting \(bad) failed") }
    }
}
