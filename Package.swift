// swift-tools-version: 6.2
// swift-moe: an embeddable mixture-of-experts inference runtime.
// This package names no package dependencies, by design: it embeds anywhere a Swift toolchain exists.
import PackageDescription

let package = Package(
    name: "swift-moe",
    platforms: [.macOS(.v15)],
    products: [
        /// The Swift library users embed.
        .library(name: "MoE", targets: ["MoE"]),
        /// The C library (`libmoec.so` / `libmoec.dylib`) behind `moe.h`. SwiftPM does not allow
        /// a second product named `moe` next to the executable, hence `moec`.
        .library(name: "moec", type: .dynamic, targets: ["MoECAPI"]),
        /// The command line tool.
        .executable(name: "moe", targets: ["MoECLI"]),
    ],
    targets: [
        .target(name: "MoEKernels"),
        .target(name: "MoE", dependencies: ["MoEKernels"]),
        .target(name: "CMoE"),
        .target(name: "MoECAPI", dependencies: ["MoE", "CMoE"]),
        .executableTarget(name: "MoECLI", dependencies: ["MoE"]),
        /// The fuzz target (tools/fuzz builds it with libFuzzer); built plainly it replays inputs.
        .executableTarget(name: "MoEFuzz", dependencies: ["MoE"]),
        .testTarget(name: "MoETests", dependencies: ["MoE", "MoEKernels", "MoECAPI", "CMoE"]),
    ],
    swiftLanguageModes: [.v6]
)
