import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import MoE

/// The expert profiler: counts that add up, the cache simulator on traces whose answers are
/// known, a report that validates against docs/profile.schema.json, well-formed SVG and HTML.
@Suite("Profiler")
struct ProfilerTests {
    /// A one-layer trace with one expert per token.
    func sequence(_ ids: [Int32], experts: Int = 4) -> RoutingTrace {
        RoutingTrace(layers: 1, experts: experts, k: 1, ids: ids)
    }

    @Test("the simulator gives the hit rates worked out by hand, Belady's included")
    func scriptedTraces() {
        #expect(CacheSimulator.hitRate(sequence([0, 1, 0, 1]), slots: 2, policy: .lru) == 0.5)
        #expect(CacheSimulator.hitRate(sequence([0, 1, 0, 1]), slots: 1, policy: .lru) == 0)
        // 0 1 2 0 1 3 0 1 with two slots: LRU always evicts what comes next; Belady keeps 0.
        let t = sequence([0, 1, 2, 0, 1, 3, 0, 1])
        #expect(CacheSimulator.hitRate(t, slots: 2, policy: .lru) == 0)
        #expect(CacheSimulator.hitRate(t, slots: 2, policy: .belady) == 0.25)
        #expect(CacheSimulator.hitRate(t, slots: 2, policy: .lfu) == 0.125)
        // Everything fits: every use but the first of each expert hits.
        #expect(CacheSimulator.hitRate(t, slots: 4, policy: .lru) == 4.0 / 8.0)
        // Experts of the same token are pinned: with k = 2 and 2 slots, neither evicts the other.
        let pair = RoutingTrace(layers: 1, experts: 4, k: 2, ids: [0, 1, 0, 1, 2, 3, 0, 1])
        #expect(CacheSimulator.hitRate(pair, slots: 2, policy: .lru) == 2.0 / 8.0)
    }

    @Test("Belady is never beaten, and its curve never falls as the budget grows")
    func optimumBounds() {
        var rng = SeededGenerator(seed: 5)
        // Skewed random routing over 8 experts, 2 layers, k = 2.
        var ids: [Int32] = []
        for _ in 0..<(300 * 2) {
            let a = Int32(min(7, Int(-log(rng.unit() + 1e-9) * 2)))
            var b = Int32(rng.next() % 8)
            if b == a { b = (a + 1) % 8 }
            ids += [a, b]
        }
        let trace = RoutingTrace(layers: 2, experts: 8, k: 2, ids: ids)
        let profile = ExpertProfile(trace: trace)
        let best = profile.cacheCurves[.belady]!
        for s in 0..<8 {
            #expect(best[s] >= profile.cacheCurves[.lru]![s] - 1e-12)
            #expect(best[s] >= profile.cacheCurves[.lfu]![s] - 1e-12)
            if s > 0 { #expect(best[s] >= best[s - 1]) }
        }
        #expect(best[7] == profile.cacheCurves[.lru]![7])
    }

    @Test("counts add up: per layer tokens x k, in total tokens x layers x k, equal to the session's counters")
    func countsAddUp() throws {
        let model = try Model(path: Fixtures.path("models/tiny-qwen3moe-q8_0.gguf"))
        let session = try model.makeSession(contextLength: 64, threads: 1)
        session.recordsRouting = true
        _ = try session.evaluate(Array(72..<112))
        let trace = RoutingTrace(session: session)
        #expect(trace.tokens == 40)
        #expect(trace.weights.count == trace.ids.count)
        let profile = ExpertProfile(trace: trace)
        var total = 0
        for l in profile.layerStats {
            let sum = l.experts.reduce(0) { $0 + $1.selected }
            #expect(sum == 40 * 2)
            #expect(l.experts.reduce(0) { $0 + $1.rankCounts.reduce(0, +) } == sum)
            // Each token's two experts are co-activated once each way.
            #expect(l.coactivation.joined().reduce(0, +) == 40 * 2)
            #expect(l.reuseHistogram.reduce(0, +) == sum - l.experts.filter { $0.selected > 0 }.count)
            total += sum
        }
        #expect(total == 40 * 2 * 2)
        let flat = profile.layerStats.flatMap { $0.experts.map { UInt64($0.selected) } }
        #expect(flat == session.expertCounts)
        // qwen3moe renormalises the top-k weights: they sum to 1 per token and layer.
        for t in 0..<trace.tokens {
            for l in 0..<trace.layers {
                let base = (t * trace.layers + l) * 2
                #expect(abs(trace.weights[base] + trace.weights[base + 1] - 1) < 1e-5)
            }
        }
    }

    func report() throws -> ProfileReport {
        let model = try Model(path: Fixtures.path("models/tiny-qwen3moe-q8_0.gguf"))
        let session = try model.makeSession(contextLength: 128, threads: 1)
        session.recordsRouting = true
        _ = try session.evaluate(Array(60..<160))
        return ProfileReport(trace: RoutingTrace(session: session),
                             subject: .init(modelPath: "tiny & <model>.gguf", architecture: "qwen3moe", bytesPerExpert: 3264, promptTokens: 100))
    }

    @Test("report.json validates against the documented schema")
    func schema() throws {
        let r = try report()
        let json = try JSONSerialization.jsonObject(with: Data(r.json().serialized().utf8))
        let schemaURL = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("docs/profile.schema.json")
        let schema = try JSONSerialization.jsonObject(with: Data(contentsOf: schemaURL)) as! [String: Any]
        var problems: [String] = []
        validate(json, schema, "$", &problems)
        #expect(problems.isEmpty, "\(problems.prefix(5))")
        // And a broken report does not.
        var broken = json as! [String: Any]
        broken["tokens"] = "many"
        broken.removeValue(forKey: "cache")
        problems = []
        validate(broken, schema, "$", &problems)
        #expect(problems.count == 2)
    }

    @Test("the SVG pictures and the HTML page are well-formed XML, self-contained, and escape text")
    func wellFormed() throws {
        let r = try report()
        for (name, text) in [("heatmap.svg", r.heatmapSVG()), ("cache-curve.svg", r.cacheCurveSVG()), ("index.html", r.html())] {
            let parser = XMLParser(data: Data(text.utf8))
            #expect(parser.parse(), "\(name): \(parser.parserError.map { "\($0)" } ?? "")")
            #expect(!text.contains("<script") && !text.contains("http://") || text.contains("xmlns=\"http://www.w3.org/2000/svg\""))
            #expect(!text.contains("https://"))
        }
        #expect(r.html().contains("tiny &amp; &lt;model&gt;.gguf"))
        let csv = r.usageCSV().split(separator: "\n")
        #expect(csv.count == 1 + 2 * 8)
        #expect(r.traceJSONL().split(separator: "\n").count == 100 * 2)
    }

    /// A small JSON Schema subset: type (one or several), const, enum, minimum, maximum,
    /// required, properties, items.
    func validate(_ value: Any, _ schema: [String: Any], _ path: String, _ problems: inout [String]) {
        if let t = schema["type"] {
            let types = (t as? [String]) ?? [t as! String]
            let ok = types.contains { type in
                switch type {
                case "object": return value is [String: Any]
                case "array": return value is [Any]
                case "string": return value is String
                case "integer": return (value as? NSNumber).map { $0.doubleValue == $0.doubleValue.rounded() } ?? false
                case "number": return value is NSNumber && !(value is Bool)
                case "null": return value is NSNull
                default: return false
                }
            }
            if !ok { problems.append("\(path): not \(types)"); return }
        }
        if let c = schema["const"] as? String, value as? String != c { problems.append("\(path): not \(c)") }
        if let e = schema["enum"] as? [String], let s = value as? String, !e.contains(s) { problems.append("\(path): \(s) not in \(e)") }
        if let n = value as? NSNumber, !(value is NSNull) {
            if let m = schema["minimum"] as? Double, n.doubleValue < m { problems.append("\(path): below \(m)") }
            if let m = schema["maximum"] as? Double, n.doubleValue > m { problems.append("\(path): above \(m)") }
        }
        if let object = value as? [String: Any] {
            for key in schema["required"] as? [String] ?? [] where object[key] == nil { problems.append("\(path).\(key): missing") }
            for (key, sub) in schema["properties"] as? [String: Any] ?? [:] {
                if let v = object[key] { validate(v, sub as! [String: Any], "\(path).\(key)", &problems) }
            }
        }
        if let array = value as? [Any], let items = schema["items"] as? [String: Any] {
            for (i, v) in array.enumerated() { validate(v, items, "\(path)[\(i)]", &problems) }
        }
    }
}
