// swift-tools-version:6.0
import PackageDescription

// Arrows point one way, top to bottom:
//   OCICheckpoint → ContainerCheckpoint, CheckpointInspect, CriuRPC
//   CriuRPC → NamespaceDump, CgroupDump, MountDump → Engine → Images, ProcFS → LinuxKernel → CShim
//   ContainerCheckpoint → CheckpointArchive, OCISpec, ContainerRegistry (never Engine)
// A module that needs only errors, logging or syscalls imports LinuxKernel, never Engine.
let v5: [SwiftSetting] = [.swiftLanguageMode(.v5)]

let package = Package(
    name: "ocicheckpoint",
    products: [
        .executable(name: "ocicheckpoint", targets: ["OCICheckpoint"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.28.0"),
    ],
    targets: [
        .target(name: "CShim"),
        .target(name: "LinuxKernel", dependencies: ["CShim"], swiftSettings: v5),
        .target(name: "CArchive", linkerSettings: [.linkedLibrary("archive"), .linkedLibrary("crypto")]),
        .target(name: "CheckpointArchive", dependencies: ["CArchive", "LinuxKernel"], swiftSettings: v5),
        .target(name: "ProcFS", dependencies: ["LinuxKernel"], swiftSettings: v5),
        .target(name: "Images",
                dependencies: ["LinuxKernel", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
                swiftSettings: v5),
        .target(name: "Engine",
                dependencies: ["LinuxKernel", "CShim", "Images", "ProcFS", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
                swiftSettings: v5),
        .target(name: "NamespaceDump", dependencies: ["Engine", "LinuxKernel", "ProcFS", "Images", "CShim"], swiftSettings: v5),
        .target(name: "CgroupDump", dependencies: ["Engine", "LinuxKernel", "ProcFS", "Images", "CShim"], swiftSettings: v5),
        .target(name: "MountDump", dependencies: ["Engine", "LinuxKernel", "ProcFS", "Images", "CShim", "CArchive"], swiftSettings: v5),
        .target(name: "CheckpointInspect", dependencies: ["LinuxKernel", "Images", "CheckpointArchive"], swiftSettings: v5),
        .target(name: "ContainerCheckpoint", dependencies: ["LinuxKernel", "Images", "CShim", "CheckpointArchive", "OCISpec", "ContainerRegistry"], swiftSettings: v5),
        .target(name: "OCISpec", swiftSettings: v5),
        .target(name: "ContainerRegistry", dependencies: ["LinuxKernel", "OCISpec", "ProcFS"], swiftSettings: v5),
        .target(name: "CriuRPC", dependencies: ["Engine", "LinuxKernel", "Images", "ProcFS", .product(name: "SwiftProtobuf", package: "swift-protobuf")], swiftSettings: v5),
        .executableTarget(
            name: "OCICheckpoint",
            dependencies: ["Engine", "LinuxKernel", "Images", "NamespaceDump", "CgroupDump", "MountDump", "CriuRPC", "CheckpointInspect", "OCISpec", "ContainerRegistry",
                           "CheckpointArchive", "ContainerCheckpoint",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: v5),
        // libFuzzer target over image decoding, validation and archive reading: scripts/fuzz.sh
        // builds it with -sanitize=fuzzer; a plain build makes it a replayer of inputs.
        .executableTarget(name: "CheckpointFuzz",
                          dependencies: ["Engine", "Images", "LinuxKernel", "CheckpointArchive",
                                         .product(name: "SwiftProtobuf", package: "swift-protobuf")],
                          path: "Fuzz/CheckpointFuzz", swiftSettings: v5),
        .testTarget(name: "ProcFSTests", dependencies: ["LinuxKernel", "ProcFS"], swiftSettings: v5),
        .testTarget(name: "CriuRPCTests", dependencies: ["LinuxKernel", "CriuRPC", "Engine", "Images", "SystemTestSupport"], swiftSettings: v5),
        .testTarget(name: "CheckpointArchiveTests", dependencies: ["LinuxKernel", "CheckpointArchive", "CArchive", "Engine", "Images", "SystemTestSupport"], swiftSettings: v5),
        .testTarget(name: "LinuxKernelTests", dependencies: ["LinuxKernel", "CShim"], swiftSettings: v5),
        .testTarget(name: "ImagesTests", dependencies: ["LinuxKernel", "Images"], swiftSettings: v5),
        .testTarget(name: "MountDumpTests", dependencies: ["LinuxKernel", "MountDump", "Engine", "Images", "ProcFS", "SystemTestSupport"], swiftSettings: v5),
        .testTarget(name: "EngineTests",
                    dependencies: ["LinuxKernel", "Engine", "Images", "ProcFS", "CShim", "NamespaceDump", "CgroupDump", "MountDump"],
                    swiftSettings: v5),
        .target(name: "SystemTestSupport", dependencies: ["LinuxKernel", "Images"], path: "Tests/SystemTestSupport", swiftSettings: v5),
        .testTarget(name: "NamespaceDumpTests", dependencies: ["LinuxKernel", "NamespaceDump", "Engine", "Images", "ProcFS", "SystemTestSupport"],
                    exclude: ["Helpers"], swiftSettings: v5),
        .testTarget(name: "CgroupDumpTests", dependencies: ["LinuxKernel", "CgroupDump", "Engine", "Images", "ProcFS", "SystemTestSupport"],
                    swiftSettings: v5),
        .testTarget(name: "WorkloadTests", dependencies: ["LinuxKernel", "Images", "SystemTestSupport"],
                    exclude: ["Workloads"], swiftSettings: v5),
        .testTarget(name: "CheckpointInspectTests", dependencies: ["LinuxKernel", "CheckpointInspect", "SystemTestSupport"], exclude: ["Helpers"], swiftSettings: v5),
        .testTarget(name: "OCISpecTests", dependencies: ["LinuxKernel", "OCISpec"], swiftSettings: v5),
        .testTarget(name: "ContainerRegistryTests", dependencies: ["LinuxKernel", "ContainerRegistry", "OCISpec", "ProcFS", "SystemTestSupport"],
                    swiftSettings: v5),
        .testTarget(name: "ContainerTests", dependencies: ["LinuxKernel", "ProcFS", "CheckpointArchive", "SystemTestSupport"], exclude: ["Helpers"], swiftSettings: v5),
    ]
)
