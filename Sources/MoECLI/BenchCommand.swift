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
        usage: moe bench -m MODEL [-p 512] [-n 128] [-d 0] [-t THREADS] [-r REPS] [--parallel N] [--overlap | --no-overlap] [-o md|json|csv]
                         [--profile] [--expert-memory SIZE] [--expert-policy lru|lfu] [--expert-profile F] [--no-prefetch]
                         [--ab-without FEATURES]

        Measures prompt processing (ppP: P random tokens evaluated in one call) and decode (tgN:
        N tokens one at a time from an empty context, or after D tokens with -d: "tgN @ dD"),
        each as tokens/s, mean ± std over REPS runs after one warm-up. Also measures this
        machine's memory read bandwidth and reports the decode roofline: bandwidth / bytes one
        token reads (weights, and the KV cache at the run's mean context), and the fraction of it
        reached, each decode repetition against the faster of two short probes (256 MiB) taken
        just before and just after it, as a machine's memory speed can drift between the tests
        and the final probe; at --parallel N, the roofline of a step (every expert any sequence chose read
        once: the experts per layer a step ran are counted). -p 0 or -n 0 skips a test. JSON
        uses llama-bench's field names. Decode tests also print where a token's time goes:
        attention, router, experts, output, and how much of it the calling thread spent waiting
        (for expert reads or for the other threads); at --parallel N, both halves' phases are
        counted and "overlapped" is the time they ran at once (the wall time is the total less
        that).

          -p N        prompt tokens (default 512)
          -n N        generated tokens (default 128)
          -d N        depth: N random tokens evaluated (untimed) before each test, so it runs
                      with N tokens of context, as llama-bench's -d (default 0)
          -t N        threads, the caller included (default: one per core)
          -r N        repetitions (default 5)
          --parallel N  also decode N sequences together (one step of each per pass, every
                      weight read once for all), reported as aggregate tokens/s: test "tgN xP".
                      On more than two threads the batch runs as two halves half a layer
                      apart, one half's attention overlapping the other's experts (without
                      --expert-memory); on two it runs as one (the overlap measured slower)
          --overlap   run the --parallel batch as overlapped halves whatever the threads
          --no-overlap  run the --parallel batch as one, every expert read once for all
          -o FORMAT   md (default), json or csv
          --profile   record every routing decision (as moe profile does), to measure its cost
          --ab-without FEATURES  A/B in one run: decode steps (and prompt repetitions) alternate
                      between all CPU features and all but FEATURES (comma-separated: avx512-vnni,
                      avx-vnni, avx2, neon-dotprod, neon; all: the scalar kernels), on every
                      thread; prints each half's median time per token. Both halves see the same
                      minutes of the machine, so kernel changes show through drifting memory speed;
                      the table's numbers then mix the halves
        With --expert-memory, each test also reports the expert store's hit rate, bytes read per
        token and the share of the time spent waiting for reads (its timed runs only; the store's
        full report after the table covers the whole run, warm-ups and -d prompts included).
        """ + "\n" + StoreFlags.help

    struct Result {
        var test: String
        var prompt: Int
        var generated: Int
        var samples: [Double]
        var store: ExpertStoreStats?
        var seconds = 0.0
        var parallel = 1
        var timings: ForwardTimings?
        /// With --ab-without: seconds per token of each step (decode) or repetition (prompt), all
        /// features in [0], the masked ones in [1].
        var ab: [[Double]] = [[], []]
        /// Decode tests without an expert store: read bandwidth around each timed repetition, the
        /// faster of the probes just before and just after it (bytes/s), one per sample.
        var bandwidths: [Double] = []
        /// The probes themselves, in order: after the warm-up, then after each timed repetition.
        var probes: [Double] = []
        /// Adds the expert store's activity between two snapshots (taken around a timed run).
        mutating func addStore(from before: ExpertStoreStats?, to after: ExpertStoreStats?) {
            guard let before, let after else { return }
            let d = after.since(before)
            store = store.map { $0.adding(d) } ?? d
        }
        var mean: Double { samples.reduce(0, +) / Double(samples.count) }
        var std: Double {
            guard samples.count > 1 else { return 0 }
            let m = mean
            return (samples.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(samples.count - 1)).squareRoot()
        }
    }

    static func run(_ args: [String], environment: [String: String]) throws -> Int32 {
        let p = try Arguments(args, valued: StoreFlags.valued.union(["--model", "-p", "-n", "-d", "-t", "-r", "-o", "--parallel", "--ab-without"]), flags: StoreFlags.flags.union(["--help", "--profile", "--overlap", "--no-overlap"]),
                              aliases: ["-m": "--model", "-h": "--help"])
        if p.flags.contains("--help") { print(usage); return 0 }
        guard p.positionals.isEmpty else { throw UsageError(message: "unexpected argument '\(p.positionals[0])'") }
        guard let path = p.values["--model"] ?? environment["MOE_MODEL"] else { throw UsageError(message: "moe bench needs -m MODEL") }
        func count(_ flag: String, _ fallback: Int, minimum: Int = 0) throws(UsageError) -> Int {
            guard let text = p.values[flag] else { return fallback }
            guard let v = Int(text), v >= minimum, v <= 1 << 20 else { throw UsageError(message: "\(flag) needs a number ≥ \(minimum)") }
            return v
        }
        let promptTokens = try count("-p", 512), genTokens = try count("-n", 128), depth = try count("-d", 0)
        let threads = try count("-t", ThreadPool.processorCount, minimum: 1), reps = try count("-r", 5, minimum: 1)
        let parallel = try count("--parallel", 1, minimum: 1)
        guard parallel <= Model.batchCapacity else { throw UsageError(message: "--parallel takes 1 to \(Model.batchCapacity)") }
        let format = p.values["-o"] ?? "md"
        guard ["md", "json", "csv"].contains(format) else { throw UsageError(message: "-o takes md, json or csv") }

        guard !(p.flags.contains("--overlap") && p.flags.contains("--no-overlap")) else {
            throw UsageError(message: "--overlap and --no-overlap contradict each other; give one")
        }
        let abBits = try p.values["--ab-without"].map(featureBits)
        /// Puts the kernels of every thread on half `half` of the A/B (0: all features).
        func abSelect(_ half: Int) { if let abBits { _ = moek_set_process_feature_mask(half == 0 ? ~0 : ~abBits) } }
        defer { abSelect(0) }
        let profile = p.flags.contains("--profile")
        let overlap: Bool? = p.flags.contains("--overlap") ? true : p.flags.contains("--no-overlap") ? false : nil
        let model = try StoreFlags.open(path, p)
        let summary = ModelSummary(file: model.file)
        var generator = SystemRandomNumberGenerator()
        func tokens(_ n: Int) -> [Int32] { (0..<n).map { _ in Int32.random(in: 0..<Int32(model.config.vocabulary), using: &generator) } }
        let clock = ContinuousClock()
        func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18 }

        /// A session with `depth` random tokens of context already evaluated, timings zeroed.
        func session(room: Int) throws -> Session {
            let session = try model.makeSession(contextLength: depth + room, threads: threads)
            session.recordsRouting = profile
            if depth > 0 { _ = try session.evaluate(tokens(depth)) }
            session.resetTimings()
            return session
        }
        let at = depth > 0 ? " @ d\(depth)" : ""
        var results: [Result] = []
        // This VM-friendly roofline: a short probe between timed decode repetitions, so each is
        // judged against the bandwidth of its own minute (the faster probe of the two around it,
        // so a repetition is never judged against a slow instant that it did not itself see). Its
        // buffer is touched once, here, and kept, so the peak RSS less its size is the model's.
        // Not with an expert store, whose runs are usually memory-capped.
        let probe = genTokens > 0 && model.options.expertStore == nil ? BandwidthProbe(bytes: 256 << 20, threads: threads) : nil
        if promptTokens > 0 {
            var r = Result(test: "pp\(promptTokens)\(at)", prompt: promptTokens, generated: 0, samples: [])
            for rep in 0...reps {
                let session = try session(room: promptTokens)
                let input = tokens(promptTokens)
                abSelect(rep % 2)
                let before = model.expertStoreStats, start = clock.now
                _ = try session.evaluate(input)
                let elapsed = seconds(clock.now - start)
                if rep > 0 {
                    if abBits != nil { r.ab[rep % 2].append(elapsed / Double(promptTokens)) }
                    r.samples.append(Double(promptTokens) / elapsed)
                    r.seconds += elapsed
                    r.addStore(from: before, to: model.expertStoreStats)
                }
            }
            results.append(r)
        }
        if genTokens > 0 {
            // Sequences decoded together (1: one token at a time, as llama-bench's tg).
            for n in parallel > 1 ? [1, parallel] : [1] {
                var r = Result(test: "tg\(genTokens)\(n > 1 ? " x\(n)" : "")\(at)", prompt: 0, generated: genTokens, samples: [])
                r.parallel = n
                var timings = ForwardTimings()
                var lastProbe: Double?
                for rep in 0...reps {
                    let sessions = try (0..<n).map { _ in try session(room: genTokens) }
                    let input = (0..<n).map { _ in tokens(genTokens) }
                    let before = model.expertStoreStats, start = clock.now
                    for step in 0..<genTokens {
                        abSelect(step % 2)
                        let stepStart = clock.now
                        if n == 1 { _ = try sessions[0].evaluate([input[0][step]]) } else { _ = try Session.evaluate(together: sessions, tokens: input.map { $0[step] }, overlap: overlap) }
                        if abBits != nil && rep > 0 { r.ab[step % 2].append(seconds(clock.now - stepStart) / Double(n)) }
                    }
                    abSelect(0)
                    let elapsed = seconds(clock.now - start)
                    // The probe after a repetition is also the one before the next (the warm-up's
                    // before the first); each repetition keeps the faster of its two.
                    let after = probe?.measure()
                    if let after { r.probes.append(after) }
                    if rep > 0 {
                        if let after, let previous = lastProbe { r.bandwidths.append(max(previous, after)) }
                        r.samples.append(Double(n * genTokens) / elapsed)
                        r.seconds += elapsed
                        timings.add(sessions[0].timings)
                        r.addStore(from: before, to: model.expertStoreStats)
                    }
                    lastProbe = after
                }
                r.timings = timings
                results.append(r)
            }
        }
        abSelect(0)
        let rss = peakResidentBytes() - (probe?.bytes ?? 0)  // before the bandwidth test's 1 GiB buffer
        let bandwidth = BandwidthProbe(bytes: 1 << 30, threads: threads).measure()
        // The KV cache one decoded token reads (F16 keys and values of every layer) at the run's
        // mean context: depth + (n + 1) / 2 positions.
        let c = model.config
        let kvBytesPerPosition = c.layers * c.kvHeads * (c.headDimension + c.valueDimension) * 2
        let kvBytesPerToken = genTokens > 0 ? Double(kvBytesPerPosition) * (Double(depth) + Double(genTokens + 1) / 2) : 0
        let roofline = bandwidth / (Double(summary.activeBytesPerToken) + kvBytesPerToken)
        /// A decode test's roofline in tokens/s: bandwidth over the bytes one step read (the
        /// routed experts counted as run, each once per step however many tokens chose it),
        /// times the tokens per step. Equals `roofline` one token at a time.
        func stepRoofline(_ r: Result) -> (ts: Double, expertsPerLayer: Double, bytesPerStep: Double, tokensPerStep: Double)? {
            guard r.generated > 0, let t = r.timings, t.steps > 0 else { return nil }
            let experts = t.expertsPerStep(layers: summary.routedExpertLayers)
            let perStep = Double(t.tokens) / Double(t.steps)
            let bytes = summary.bytesPerStep(expertsPerLayer: experts) + perStep * kvBytesPerToken
            guard bytes > 0 else { return nil }
            return (bandwidth * perStep / bytes, experts, bytes, perStep)
        }
        /// The fraction of the roofline a decode test reached: each repetition against the faster of
        /// the bandwidths measured just before and after it (the mean of those), else against the
        /// probe after the tests.
        func fraction(_ r: Result) -> Double? {
            guard let b = stepRoofline(r) else { return nil }
            guard r.bandwidths.count == r.samples.count, !r.samples.isEmpty else { return r.mean / b.ts }
            return zip(r.samples, r.bandwidths).map { $0 / ($1 * b.tokensPerStep / b.bytesPerStep) }.reduce(0, +) / Double(r.samples.count)
        }
        func storeFields(_ r: Result) -> (hitRate: JSONValue, readPerToken: JSONValue, stall: JSONValue) {
            guard let s = r.store else { return (.null, .null, .null) }
            let tokens = Double(max(r.prompt + r.generated, 1) * r.samples.count), t = s.total
            return (.double(t.hitRate), .double(Double(t.bytesRead) / tokens), .double(r.seconds > 0 ? t.stallSeconds / r.seconds : 0))
        }
        let budget: JSONValue = model.options.expertStore.map { .int($0.budget) } ?? .null
        let quant = dominantType(summary)
        let modelType = "\(summary.architecture ?? "?") \(formatCount(summary.parameterCount)) \(quant)"

        switch format {
        case "json":
            let objects: [JSONValue] = results.map { r in
                .object([
                    ("model_filename", .string(path)), ("model_type", .string(modelType)),
                    ("model_size", .int(summary.tensorBytes)), ("model_n_params", .int(summary.parameterCount)),
                    ("n_threads", .int(threads)), ("n_prompt", .int(r.prompt)), ("n_gen", .int(r.generated)), ("n_depth", .int(depth)),
                    ("avg_ts", .double(r.mean)), ("stddev_ts", .double(r.std)), ("samples_ts", .array(r.samples.map { .double($0) })),
                    ("n_parallel", .int(r.parallel)), ("expert_memory", budget), ("expert_hit_rate", storeFields(r).hitRate),
                    ("expert_bytes_read_per_token", storeFields(r).readPerToken), ("expert_stall_fraction", storeFields(r).stall),
                    ("roofline_fraction", fraction(r).map { .double($0) } ?? .null),
                    ("roofline_ts", .double(stepRoofline(r)?.ts ?? roofline)), ("memory_bandwidth_bytes_per_s", .double(bandwidth)),
                    ("memory_bandwidth_per_rep_bytes_per_s", r.bandwidths.isEmpty ? .null : .array(r.bandwidths.map { .double($0) })),
                    ("memory_bandwidth_probes_bytes_per_s", r.probes.isEmpty ? .null : .array(r.probes.map { .double($0) })),
                    ("experts_per_layer_step", stepRoofline(r).map { .double($0.expertsPerLayer) } ?? .null),
                    ("bytes_per_step", stepRoofline(r).map { .double($0.bytesPerStep) } ?? .null),
                    ("active_bytes_per_token", .int(summary.activeBytesPerToken)), ("kv_bytes_per_token", .double(kvBytesPerToken)),
                    ("peak_rss_bytes", .int(rss)),
                    ("time_per_token_ms", r.timings.map { t in
                        .object([("attention", .double(t.perToken(t.attention) / 1e6)), ("router", .double(t.perToken(t.router) / 1e6)),
                                 ("experts", .double(t.perToken(t.experts) / 1e6)), ("output", .double(t.perToken(t.output) / 1e6)),
                                 ("waiting", .double(t.perToken(t.waiting) / 1e6)),
                                 ("overlapped", .double(t.perToken(t.overlapped) / 1e6))])
                    } ?? .null),
                ] + abFields(r))
            }
            print(JSONValue.array(objects).serialized(indent: 2))
        case "csv":
            print("model_filename,model_type,model_size,model_n_params,n_threads,n_prompt,n_gen,avg_ts,stddev_ts,roofline_fraction,peak_rss_bytes,expert_memory,expert_hit_rate,n_parallel,n_depth")
            for r in results {
                let fraction = fraction(r).map { fixed($0, 4) } ?? ""
                let hit = r.store.map { fixed($0.total.hitRate, 4) } ?? ""
                let memory = model.options.expertStore.map { String($0.budget) } ?? ""
                print("\"\(path)\",\"\(modelType)\",\(summary.tensorBytes),\(summary.parameterCount),\(threads),\(r.prompt),\(r.generated),\(fixed(r.mean, 3)),\(fixed(r.std, 3)),\(fraction),\(rss),\(memory),\(hit),\(r.parallel),\(depth)")
            }
        default:
            print("| model | size | params | backend | threads | test | t/s |")
            print("| --- | ---: | ---: | --- | ---: | ---: | ---: |")
            for r in results {
                print("| \(modelType) | \(formatBytes(summary.tensorBytes)) | \(formatCount(summary.parameterCount)) | CPU | \(threads) | \(r.test) | \(fixed(r.mean, 2)) ± \(fixed(r.std, 2)) |")
            }
            print("")
            print("decode roofline: \(fixed(bandwidth / 1e9, 1)) GB/s read bandwidth / (\(formatBytes(summary.activeBytesPerToken)) of weights + "
                + "\(formatBytes(Int(kvBytesPerToken))) of KV cache) per token = \(fixed(roofline, 1)) t/s"
                + (results.first { $0.generated > 0 && $0.parallel == 1 }.map { r in
                    "; tg reached \(fixed(100 * (fraction(r) ?? r.mean / roofline), 1))%" + probeRange(r) } ?? ""))
            for r in results where r.parallel > 1 {
                guard let b = stepRoofline(r) else { continue }
                print("\(r.test) roofline: \(fixed(b.expertsPerLayer, 1)) experts per layer per step of \(b.tokensPerStep == b.tokensPerStep.rounded() ? String(Int(b.tokensPerStep)) : fixed(b.tokensPerStep, 1)) tokens "
                    + "(one token: \(summary.expertUsedCount ?? 0)) = \(formatBytes(Int(b.bytesPerStep))) per step, \(fixed(b.ts, 1)) t/s; "
                    + "reached \(fixed(100 * (fraction(r) ?? r.mean / b.ts), 1))%" + probeRange(r))
            }
            print("peak RSS: \(formatBytes(rss))")
            for r in results {
                guard let t = r.timings, t.tokens > 0 else { continue }
                func ms(_ v: UInt64) -> String { fixed(t.perToken(v) / 1e6, 2) }
                print("\(r.test) time per token: attention \(ms(t.attention)) ms, router \(ms(t.router)) ms, experts \(ms(t.experts)) ms, "
                    + "output \(ms(t.output)) ms (total \(ms(t.total)) ms; waiting \(ms(t.waiting)) ms of it"
                    + (t.overlapped > 0 ? "; halves overlapped \(ms(t.overlapped)) ms: wall \(ms(t.wall)) ms)" : ")"))
            }
            for r in results {
                guard let st = r.store else { continue }
                let tokens = Double(max(r.prompt + r.generated, 1) * r.samples.count), t = st.total
                print("\(r.test) expert store: hit rate \(fixed(t.hitRate * 100, 1))%, \(formatBytes(Int(Double(t.bytesRead) / tokens))) read per token, "
                    + "waiting for reads \(fixed(r.seconds > 0 ? 100 * t.stallSeconds / r.seconds : 0, 1))% of the time"
                    + (t.predicted > 0 ? ", prefetch precision \(fixed(t.precision * 100, 1))%" : ""))
            }
            for r in results {
                guard let names = p.values["--ab-without"], let all = median(r.ab[0]), let without = median(r.ab[1]) else { continue }
                print("\(r.test) A/B: all features \(fixed(all * 1e3, 3)) ms per token, without \(names) \(fixed(without * 1e3, 3)) ms "
                    + "(medians of \(r.ab[0].count) and \(r.ab[1].count) \(r.generated > 0 ? "steps" : "runs")): without / all = \(fixed(without / all, 3))")
            }
            if let abBits, moek_cpu_features() & abBits == 0 {
                print("(this CPU has none of \(p.values["--ab-without"] ?? ""): both halves ran the same kernels)")
            }
            if let st = model.expertStoreStats { print(""); print(StoreFlags.report(st), terminator: "") }
        }
        return 0

        /// How the per-repetition probes were taken, for the text output ("" without them).
        func probeRange(_ r: Result) -> String {
            guard let lo = r.bandwidths.min(), let hi = r.bandwidths.max() else { return "" }
            return " (each repetition against the faster of the bandwidths measured just before and after it: \(fixed(lo / 1e9, 1))-\(fixed(hi / 1e9, 1)) GB/s)"
        }

        /// JSON fields of the A/B (none without --ab-without): each half's median seconds per token.
        func abFields(_ r: Result) -> [(String, JSONValue)] {
            guard let names = p.values["--ab-without"] else { return [] }
            return [("ab_without", .string(names)), ("ab_ms_per_token_all", median(r.ab[0]).map { .double($0 * 1e3) } ?? .null),
                    ("ab_ms_per_token_without", median(r.ab[1]).map { .double($0 * 1e3) } ?? .null)]
        }
    }

    /// The CPU feature bits `--ab-without` names (comma-separated), each with the features that need it.
    static func featureBits(_ list: String) throws(UsageError) -> UInt32 {
        let x86 = MOEK_CPU_AVX2_FMA.rawValue | MOEK_CPU_AVX2_HALF_WIDTH.rawValue | MOEK_CPU_AVX_VNNI.rawValue | MOEK_CPU_AVX512_VNNI.rawValue
        let names: [String: UInt32] = [
            "avx512-vnni": MOEK_CPU_AVX512_VNNI.rawValue, "avx-vnni": MOEK_CPU_AVX_VNNI.rawValue, "avx2": x86,
            "neon-dotprod": MOEK_CPU_NEON_DOTPROD.rawValue, "neon": MOEK_CPU_NEON.rawValue | MOEK_CPU_NEON_DOTPROD.rawValue, "all": ~0,
        ]
        var bits: UInt32 = 0
        for name in list.split(separator: ",", omittingEmptySubsequences: false) {
            guard let b = names[String(name)] else {
                throw UsageError(message: "--ab-without takes CPU features from avx512-vnni, avx-vnni, avx2, neon-dotprod, neon, all (comma-separated), not '\(name)'")
            }
            bits |= b
        }
        return bits
    }

    /// The median of `values`, nil when empty.
    static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let v = values.sorted(), m = v.count / 2
        return v.count % 2 == 1 ? v[m] : (v[m - 1] + v[m]) / 2
    }

    /// The ggml type holding most of the bytes.
    static func dominantType(_ s: ModelSummary) -> String { s.types.first?.type.name ?? "?" }

    /// A read-bandwidth probe: `bytes` of floats, touched once at creation and kept until it is
    /// released, summed by `threads` threads.
    final class BandwidthProbe {
        let bytes: Int
        private let buffer: UnsafeMutablePointer<Float>
        private let sums: UnsafeMutablePointer<Float>  // results kept, so reads are not elided
        private let pool: ThreadPool
        private var count: Int { bytes / MemoryLayout<Float>.size }

        /// Allocates and fills the buffer.
        init(bytes: Int, threads: Int) {
            self.bytes = bytes
            buffer = .allocate(capacity: bytes / MemoryLayout<Float>.size)
            sums = .allocate(capacity: threads)
            pool = ThreadPool(threads: threads)
            let (buffer, count, chunks) = (buffer, bytes / MemoryLayout<Float>.size, threads)
            pool.parallelFor(chunks) { c in
                let lo = c * count / chunks, hi = (c + 1) * count / chunks
                (buffer + lo).initialize(repeating: 1, count: hi - lo)
            }
        }
        deinit {
            buffer.deallocate()
            sums.deallocate()
        }

        /// Read bandwidth in bytes/s: the best of three passes over the buffer.
        func measure() -> Double {
            let (buffer, sums, count, chunks) = (buffer, sums, count, pool.threads)
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
    }

    /// The process's peak resident set size in bytes. On Linux this is VmHWM from /proc/self/status:
    /// getrusage's ru_maxrss also counts the memory of the process that spawned us (the kernel
    /// carries the pre-exec high-water mark over), which can dwarf ours.
    static func peakResidentBytes() -> Int {
        #if os(Linux)
        if let f = fopen("/proc/self/status", "r") {
            defer { fclose(f) }
            var line = [CChar](repeating: 0, count: 256)
            while fgets(&line, Int32(line.count), f) != nil {
                let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if text.hasPrefix("VmHWM:"), let kb = Int(text.dropFirst(6).filter { $0.isNumber }) { return kb * 1024 }
            }
        }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Int(usage.ru_maxrss) * 1024  // kilobytes on Linux
        #else
        var usage = rusage()
        getrusage(RUSAGE_SELF, &usage)
        return Int(usage.ru_maxrss)  // bytes on macOS
        #endif
    }
}
