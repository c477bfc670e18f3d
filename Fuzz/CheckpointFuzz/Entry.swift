import CheckpointArchive
import Foundation

#if FUZZING
// libFuzzer calls this for every input (built by scripts/fuzz.sh with -sanitize=fuzzer).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    FuzzTarget.current.run(bytes.map { Data(bytes: $0, count: count) } ?? Data())
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(_ argc: UnsafeMutablePointer<CInt>,
                     _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                     _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

/// SwiftPM gives an executable its own entry point (its main is this module's), so the
/// fuzzer's driver is started from here rather than from libFuzzer's main.
@main
enum FuzzMain {
    static func main() {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(runFuzzerDriver(&argc, &argv, fuzzOneInput))
    }
}
#else
/// Without the fuzzer (a plain `swift build`): `checkpoint-fuzz TARGET FILE...` replays inputs,
/// a crash found earlier for instance; `seed images IMAGE-DIR OUT` and `seed archive DIR OUT
/// [zstd|gzip|none]` make seeds of the corpus from a real dump.
@main
enum Replay {
    static func main() throws {
        let args = CommandLine.arguments.dropFirst()
        guard let first = args.first else {
            FileHandle.standardError.write(Data("usage: checkpoint-fuzz images|archive FILE... | seed images|archive DIR OUT [compression]\n".utf8))
            exit(2)
        }
        if first == "seed" {
            let a = Array(args.dropFirst())
            guard a.count >= 3 else { exit(2) }
            if a[0] == "images" {
                try ImageDirectoryInput.encode(directory: a[1]).write(to: URL(fileURLWithPath: a[2]))
            } else {
                let compression = a.count > 3 ? ArchiveCompression(rawValue: a[3]) ?? .none : .none
                try CheckpointArchive.pack(directory: a[1], to: a[2], compression: compression)
            }
            return
        }
        guard let target = FuzzTarget(rawValue: first) else {
            FileHandle.standardError.write(Data("unknown target \(first)\n".utf8))
            exit(2)
        }
        for file in args.dropFirst() {
            target.run(FileManager.default.contents(atPath: file) ?? Data())
            print("ok \(file)")
        }
    }
}
#endif
