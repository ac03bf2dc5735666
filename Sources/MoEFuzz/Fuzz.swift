import MoE

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A fuzz target for everything that reads an untrusted GGUF file: the reader, the model loader
/// (every tensor bound and shape-checked), the vocabulary and tokenizer, one forward step and a
/// short generation when the file gets that far. Built with `tools/fuzz`, which passes
/// `-sanitize=fuzzer -D FUZZING`; then libFuzzer drives `LLVMFuzzerTestOneInput`. Built
/// normally, `moe-fuzz FILE...` replays inputs (how crash reproducers are checked).
enum FuzzTarget {
    /// One scratch file per process: the reader maps files, so inputs go through a file.
    static let scratch: String = {
        let dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
        return "\(dir)/moe-fuzz-\(getpid()).gguf"
    }()

    static func run(_ bytes: UnsafeRawBufferPointer) {
        guard let f = fopen(scratch, "wb") else { return }
        if bytes.count > 0 { fwrite(bytes.baseAddress, 1, bytes.count, f) }
        fclose(f)
        exercise(scratch)
    }

    /// Opens `path` every way a user can; errors are expected, crashes are bugs.
    static func exercise(_ path: String) {
        guard let file = try? GGUFFile(path: path) else { return }
        _ = ModelSummary(file: file).json.serialized()
        if let tokenizer = try? Tokenizer(file: file) {
            let ids = tokenizer.encode("Hello <s> wörld 🦙 12345\n\t", addSpecial: true, parseSpecial: true)
            _ = tokenizer.decode(ids, special: true)
        }
        guard let model = try? Model(file: file) else { return }
        // Keep one step cheap: a model the fuzzer inflates must not stall the run.
        let c = model.config
        guard c.layers * c.embedding <= 1 << 16, c.vocabulary <= 1 << 16 else { return }
        guard let session = try? model.makeSession(contextLength: 8, threads: 1) else { return }
        _ = try? session.evaluate([0, Int32(c.vocabulary - 1)])
        var options = GenerationOptions()
        options.maxTokens = 2
        options.sampling.seed = 1
        _ = try? session.generate(tokens: [0], options: options) { _ in true }
        // The expert store's paths: k slots, experts read with pread from the (hostile) file.
        guard model.expertSlotBytes > 0, model.expertSlotBytes <= 1 << 20,
              let stored = try? Model(file: file, options: ModelOptions(expertStore: ExpertStoreOptions(
                  budget: model.expertSlotBytes * max(c.expertsUsed, 1), ioThreads: 1))),
              let storedSession = try? stored.makeSession(contextLength: 8, threads: 1) else { return }
        _ = try? storedSession.evaluate([0, Int32(c.vocabulary - 1)])
        _ = try? storedSession.evaluate([1])
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    FuzzTarget.run(UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size))
    return 0
}

#if FUZZING
/// libFuzzer's driver (linked in by -sanitize=fuzzer).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

/// SwiftPM links an executable target's entry point as `<module>_main`; with libFuzzer that
/// entry point hands control to the fuzzing driver.
@_cdecl("MoEFuzz_main")
func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var count = argc
    var vector = argv
    return LLVMFuzzerRunDriver(&count, &vector) { data, size in LLVMFuzzerTestOneInput(data, size) }
}
#else
/// Without libFuzzer: replay the files given on the command line.
@main
struct Replay {
    static func main() {
        let files = CommandLine.arguments.dropFirst()
        if files.isEmpty {
            print("usage: moe-fuzz FILE...   (replays fuzz inputs; tools/fuzz builds the libFuzzer version)")
            return
        }
        for path in files {
            FuzzTarget.exercise(path)
            print("ok \(path)")
        }
    }
}
#endif
