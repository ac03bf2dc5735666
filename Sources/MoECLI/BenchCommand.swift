import MoE
import MoEKernels

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `moe bench`: prompt processing and decode speed, llama-bench style, with the decode roofline.
enum BenchCommand {
    static let usage = """
        usage: moe bench -m MODEL [-p 512] [-n 128] [-t THREADS] [-r REPS] [-o md|json|csv] [--profile]

        Measures prompt processing (ppP: P random tokens evaluated in one call) and decode (tgN:
        N tokens one at a time from an empty context), each as tokens/s, mean ± std over REPS
        runs after one warm-up. Also measures this machine's memory read bandwidth and reports
        the decode roofline: bandwidth / bytes of weights one token reads, and the fraction of it
        reached. -p 0 or -n 0 skips a test. JSON uses llama-bench's field names.

          -p N        prompt tokens (default 512)
          -n N        generated tokens (default 128)
          -t N        threads, the caller included (default: one per core)
          -r N        repetitions (default 5)
          -o FORMAT   md (default), json or csv
          --profile   record every routing decision (as moe profile does), to measure its cost
        """

    struct Result {
        var test: String
        var prompt: Int
        var generated: Int
        var samples: [Double]
        var mean: Double { samples.reduce(0, +) / Double(samples.count) }
        var std: Double {
            guard samples.count > 1 else { return 0 }
            let m = mean
            return (samples.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(samples.count - 1)).squareRoot()
        }
    }

    static func run(_ args: [String], environment: [String: String]) throws -> Int32 {
        let p = try Arguments(args, valued: ["--model", "-p", "-n", "-t", "-r", "-o", "--expert-memory"], flags: ["--help", "--profile"],
                              aliases: ["-m": "--model", "-h": "--help"])
        if p.flags.contains("--help") { print(usage); return 0 }
        guard p.positionals.isEmpty else { throw UsageError(message: "unexpected argument '\(p.positionals[0])'") }
        guard let path = p.values["--model"] ?? environment["MOE_MODEL"] else { throw UsageError(message: "moe bench needs -m MODEL") }
        if p.values["--expert-memory"] != nil {
            throw UsageError(message: "--expert-memory needs the expert store, which is not in this build yet")
        }
        func count(_ flag: String, _ fallback: Int, minimum: Int = 0) throws(UsageError) -> Int {
            guard let text = p.values[flag] else { return fallback }
            guard let v = Int(text), v >= minimum, v <= 1 << 20 else { throw UsageError(message: "\(flag) needs a number ≥ \(minimum)") }
            return v
        }
        let promptTokens = try count("-p", 512), genTokens = try count("-n", 128)
        let threads = try count("-t", ThreadPool.processorCount, minimum: 1), reps = try count("-r", 5, minimum: 1)
        let format = p.values["-o"] ?? "md"
        guard ["md", "json", "csv"].contains(format) else { throw UsageError(message: "-o takes md, json or csv") }

        let profile = p.flags.contains("--profile")
        let model = try Model(path: path)
        let summary = ModelSummary(file: model.file)
        var generator = SystemRandomNumberGenerator()
        func tokens(_ n: Int) -> [Int32] { (0..<n).map { _ in Int32.random(in: 0..<Int32(model.config.vocabulary), using: &generator) } }
        let clock = ContinuousClock()
        func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18 }

        var results: [Result] = []
        if promptTokens > 0 {
            var r = Result(test: "pp\(promptTokens)", prompt: promptTokens, generated: 0, samples: [])
            for rep in 0...reps {
                let session = try model.makeSession(contextLength: promptTokens, threads: threads)
                session.recordsRouting = profile
                let input = tokens(promptTokens)
                let start = clock.now
                _ = try session.evaluate(input)
                if rep > 0 { r.samples.append(Double(promptTokens) / seconds(clock.now - start)) }
            }
            results.append(r)
        }
        if genTokens > 0 {
            var r = Result(test: "tg\(genTokens)", prompt: 0, generated: genTokens, samples: [])
            for rep in 0...reps {
                let session = try model.makeSession(contextLength: genTokens, threads: threads)
                session.recordsRouting = profile
                let input = tokens(genTokens)
                let start = clock.now
                for t in input { _ = try session.evaluate([t]) }
                if rep > 0 { r.samples.append(Double(genTokens) / seconds(clock.now - start)) }
            }
            results.append(r)
        }
        let bandwidth = measureBandwidth(threads: threads)
        let roofline = bandwidth / Double(summary.activeBytesPerToken)
        let rss = peakResidentBytes()
        let quant = dominantType(summary)
        let modelType = "\(summary.architecture ?? "?") \(formatCount(summary.parameterCount)) \(quant)"

        switch format {
        case "json":
            let objects: [JSONValue] = results.map { r in
                .object([
                    ("model_filename", .string(path)), ("model_type", .string(modelType)),
                    ("model_size", .int(summary.tensorBytes)), ("model_n_params", .int(summary.parameterCount)),
                    ("n_threads", .int(threads)), ("n_prompt", .int(r.prompt)), ("n_gen", .int(r.generated)),
                    ("avg_ts", .double(r.mean)), ("stddev_ts", .double(r.std)), ("samples_ts", .array(r.samples.map { .double($0) })),
                    ("n_parallel", 1), ("expert_memory", .null), ("expert_hit_rate", .null),
                    ("roofline_fraction", r.generated > 0 ? .double(r.mean / roofline) : .null),
                    ("roofline_ts", .double(roofline)), ("memory_bandwidth_bytes_per_s", .double(bandwidth)),
                    ("active_bytes_per_token", .int(summary.activeBytesPerToken)), ("peak_rss_bytes", .int(rss)),
                ])
            }
            print(JSONValue.array(objects).serialized(indent: 2))
        case "csv":
            print("model_filename,model_type,model_size,model_n_params,n_threads,n_prompt,n_gen,avg_ts,stddev_ts,roofline_fraction,peak_rss_bytes")
            for r in results {
                let fraction = r.generated > 0 ? fixed(r.mean / roofline, 4) : ""
                print("\"\(path)\",\"\(modelType)\",\(summary.tensorBytes),\(summary.parameterCount),\(threads),\(r.prompt),\(r.generated),\(fixed(r.mean, 3)),\(fixed(r.std, 3)),\(fraction),\(rss)")
            }
        default:
            print("| model | size | params | backend | threads | test | t/s |")
            print("| --- | ---: | ---: | --- | ---: | ---: | ---: |")
            for r in results {
                print("| \(modelType) | \(formatBytes(summary.tensorBytes)) | \(formatCount(summary.parameterCount)) | CPU | \(threads) | \(r.test) | \(fixed(r.mean, 2)) ± \(fixed(r.std, 2)) |")
            }
            print("")
            print("decode roofline: \(fixed(bandwidth / 1e9, 1)) GB/s read bandwidth / \(formatBytes(summary.activeBytesPerToken)) per token = \(fixed(roofline, 1)) t/s"
                + (results.last.map { $0.generated > 0 ? "; tg reached \(fixed(100 * $0.mean / roofline, 1))%" : "" } ?? ""))
            print("peak RSS: \(formatBytes(rss))")
        }
        return 0
    }

    /// The ggml type holding most of the bytes.
    static func dominantType(_ s: ModelSummary) -> String { s.types.first?.type.name ?? "?" }

    /// Read bandwidth with `threads` threads over a 1 GiB buffer, best of three passes, in bytes/s.
    static func measureBandwidth(threads: Int) -> Double {
        let count = (1 << 30) / MemoryLayout<Float>.size
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer { buffer.deallocate() }
        let pool = ThreadPool(threads: threads)
        let chunks = threads
        pool.parallelFor(chunks) { c in
            let lo = c * count / chunks, hi = (c + 1) * count / chunks
            (buffer + lo).initialize(repeating: 1, count: hi - lo)
        }
        let sums = UnsafeMutablePointer<Float>.allocate(capacity: chunks)  // results kept, so reads are not elided
        defer { sums.deallocate() }
        let clock = ContinuousClock()
        var best = 0.0
        for _ in 0..<3 {
            let start = clock.now
            pool.parallelFor(chunks) { c in
                let lo = c * count / chunks, hi = (c + 1) * count / chunks
                sums[c] = moek_sum_f32(buffer + lo, hi - lo)
            }
            let d = clock.now - start
            let secs = Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
            best = max(best, Double(count * MemoryLayout<Float>.size) / secs)
        }
        return best

    }

    /// The process's peak resident set size in bytes.
    static func peakResidentBytes() -> Int {
        var usage = rusage()
        #if os(Linux)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Int(usage.ru_maxrss) * 1024  // kilobytes on Linux
        #else
        getrusage(RUSAGE_SELF, &usage)
        return Int(usage.ru_maxrss)  // bytes on macOS
        #endif
    }
}
