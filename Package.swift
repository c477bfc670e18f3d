// swift-tools-version:6.0
import PackageDescription

// Arrows point one way: OCICheckpoint → (NamespaceDump, CgroupDump, MountDump) → Engine → (Images, CShim).
let v5: [SwiftSetting] = [.swiftLanguageMode(.v5)]

let package = Package(
    name: "ocicheckpoint",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "ocicheckpoint", targets: ["OCICheckpoint"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.28.0"),
    ],
    targets: [
        .target(name: "CShim"),
        .target(name: "CArchive", linkerSettings: [.linkedLibrary("archive"), .linkedLibrary("crypto")]),
        .target(name: "CheckpointArchive", dependencies: ["CArchive", "Engine"], swiftSettings: v5),
        .target(name: "ProcFS", swiftSettings: v5),
        .target(name: "Images",
                dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
                swiftSettings: v5),
        .target(name: "Engine",
                dependencies: ["CShim", "Images", "ProcFS", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
                swiftSettings: v5),
        .target(name: "NamespaceDump", dependencies: ["Engine", "ProcFS", "Images", "CShim"], swiftSettings: v5),
        .target(name: "CgroupDump", dependencies: ["Engine", "ProcFS", "Images", "CShim"], swiftSettings: v5),
        .target(name: "MountDump", dependencies: ["Engine", "ProcFS", "Images", "CShim"], swiftSettings: v5),
        .target(name: "CheckpointInspect", dependencies: ["Engine", "Images", "CheckpointArchive"], swiftSettings: v5),
        .target(name: "ContainerCheckpoint", dependencies: ["Engine", "CShim", "CheckpointArchive", "OCISpec", "ContainerRegistry"], swiftSettings: v5),
        .target(name: "OCISpec", swiftSettings: v5),
        .target(name: "ContainerRegistry", dependencies: ["OCISpec", "ProcFS"], swiftSettings: v5),
        .target(name: "CriuRPC", dependencies: ["Engine", "Images", "ProcFS", "NamespaceDump", "CgroupDump", "MountDump", .product(name: "SwiftProtobuf", package: "swift-protobuf")], swiftSettings: v5),
        .executableTarget(
            name: "OCICheckpoint",
            dependencies: ["Engine", "NamespaceDump", "CgroupDump", "MountDump", "CriuRPC", "CheckpointInspect", "OCISpec", "ContainerRegistry",
                           "CheckpointArchive", "ContainerCheckpoint",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: v5),
        .testTarget(name: "ProcFSTests", dependencies: ["ProcFS", "NamespaceDump", "CgroupDump", "MountDump"],
                    swiftSettings: v5),
        .testTarget(name: "CriuRPCTests", dependencies: ["CriuRPC", "Engine", "Images", "SystemTestSupport"], swiftSettings: v5),
        .testTarget(name: "CheckpointArchiveTests", dependencies: ["CheckpointArchive", "CArchive", "Engine", "SystemTestSupport"], swiftSettings: v5),
        .testTarget(name: "ImagesTests", dependencies: ["Images"], swiftSettings: v5),
        .testTarget(name: "MountDumpTests", dependencies: ["MountDump", "Engine", "Images", "ProcFS"], swiftSettings: v5),
        .testTarget(name: "EngineTests",
                    dependencies: ["Engine", "Images", "ProcFS", "CShim", "NamespaceDump", "CgroupDump", "MountDump"],
                    swiftSettings: v5),
        .target(name: "SystemTestSupport", dependencies: ["Engine"], path: "Tests/SystemTestSupport", swiftSettings: v5),
        .testTarget(name: "NamespaceDumpTests", dependencies: ["NamespaceDump", "Engine", "Images", "ProcFS", "SystemTestSupport"],
                    exclude: ["Helpers"], swiftSettings: v5),
        .testTarget(name: "CgroupDumpTests", dependencies: ["CgroupDump", "Engine", "Images", "ProcFS", "SystemTestSupport"],
                    swiftSettings: v5),
        .testTarget(name: "WorkloadTests", dependencies: ["Images", "SystemTestSupport"],
                    exclude: ["Workloads"], swiftSettings: v5),
        .testTarget(name: "CheckpointInspectTests", dependencies: ["CheckpointInspect", "SystemTestSupport"], exclude: ["Helpers"], swiftSettings: v5),
        .testTarget(name: "OCISpecTests", dependencies: ["OCISpec"], swiftSettings: v5),
        .testTarget(name: "ContainerRegistryTests", dependencies: ["ContainerRegistry", "OCISpec", "ProcFS", "SystemTestSupport"],
                    swiftSettings: v5),
        .testTarget(name: "ContainerTests", dependencies: ["SystemTestSupport"], exclude: ["Helpers"], swiftSettings: v5),
    ]
)
