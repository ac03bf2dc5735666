/// The files `moe profile` writes, rendered from a trace and its profile: report.json,
/// trace.jsonl, usage.csv, heatmap.svg, cache-curve.svg and a self-contained index.html.
public struct ProfileReport: Sendable {
    /// What the report is about.
    public struct Subject: Sendable {
        /// The model file.
        public var modelPath: String
        /// `general.architecture`.
        public var architecture: String
        /// Bytes of one routed expert (gate, up and down), averaged over layers.
        public var bytesPerExpert: Int
        /// Tokens that came from the prompt (the rest were generated).
        public var promptTokens: Int

        /// A subject.
        public init(modelPath: String, architecture: String, bytesPerExpert: Int, promptTokens: Int) {
            self.modelPath = modelPath
            self.architecture = architecture
            self.bytesPerExpert = bytesPerExpert
            self.promptTokens = promptTokens
        }
    }

    /// The trace.
    public let trace: RoutingTrace
    /// Its statistics.
    public let profile: ExpertProfile
    /// The model and run.
    public let subject: Subject

    /// A report over `trace`.
    public init(trace: RoutingTrace, subject: Subject) {
        self.trace = trace
        self.subject = subject
        profile = ExpertProfile(trace: trace)
    }

    /// Bytes of routed experts resident with `slots` experts per layer.
    public func budgetBytes(slots: Int) -> Int { slots * trace.layers * subject.bytesPerExpert }

    // MARK: report.json

    /// The whole report as JSON (schema: docs/PROFILING.md).
    public func json() -> JSONValue {
        let p = profile
        let layers: [JSONValue] = p.layerStats.map { l in
            let total = max(l.experts.reduce(0) { $0 + $1.selected }, 1)
            return .object([
                ("layer", .int(l.index)),
                ("selected", .array(l.experts.map { .int($0.selected) })),
                ("share", .array(l.experts.map { .double(round6(Double($0.selected) / Double(total))) })),
                ("mean_weight", .array(l.experts.map { .double(round6($0.meanWeight)) })),
                ("total_weight", .array(l.experts.map { .double(round6($0.totalWeight)) })),
                ("rank_counts", .array(l.experts.map { .array($0.rankCounts.map { .int($0) }) })),
                ("max_over_mean", .double(round6(l.maxOverMean))),
                ("coefficient_of_variation", .double(round6(l.coefficientOfVariation))),
                ("entropy_bits", .double(round6(l.entropyBits))),
                ("unused_experts", .int(l.unused)),
                ("experts_for_half", .int(l.expertsForHalf)),
                ("coactivation", .array(l.coactivation.map { .array($0.map { .int($0) }) })),
                ("reuse_histogram", .array(l.reuseHistogram.map { .int($0) })),
                ("mean_reuse_distance", .double(round6(l.meanReuseDistance))),
                ("median_reuse_distance", .double(round6(l.medianReuseDistance))),
                ("next_token_reuse", .double(round6(l.nextTokenReuse))),
            ])
        }
        let curves: [JSONValue] = CacheSimulator.Policy.allCases.map { policy in
            .object([
                ("policy", .string(policy.rawValue)),
                ("points", .array((p.cacheCurves[policy] ?? []).enumerated().map { i, rate in
                    .object([("slots_per_layer", .int(i + 1)), ("budget_bytes", .int(budgetBytes(slots: i + 1))),
                             ("hit_rate", .double(round6(rate)))])
                })),
            ])
        }
        return .object([
            ("schema", .string("swift-moe.profile/1")),
            ("model", .object([
                ("path", .string(subject.modelPath)), ("architecture", .string(subject.architecture)),
                ("layers", .int(trace.layers)), ("experts", .int(trace.experts)), ("experts_per_token", .int(trace.k)),
                ("bytes_per_expert", .int(subject.bytesPerExpert)),
            ])),
            ("tokens", .int(trace.tokens)),
            ("prompt_tokens", .int(subject.promptTokens)),
            ("generated_tokens", .int(max(trace.tokens - subject.promptTokens, 0))),
            ("reuse_buckets", .array(ExpertProfile.reuseBuckets.map { $0 == Int.max ? .null : .int($0) })),
            ("layers", .array(layers)),
            ("cache", .array(curves)),
            ("readings", .array(readings().map { .string($0) })),
        ])
    }

    // MARK: trace.jsonl and usage.csv

    /// One JSON object per token and layer: position, layer, chosen experts and their weights.
    public func traceJSONL() -> String {
        var out = ""
        for t in 0..<trace.tokens {
            for l in 0..<trace.layers {
                let base = (t * trace.layers + l) * trace.k
                let ids = trace.ids[base..<(base + trace.k)].map { JSONValue.int(Int($0)) }
                let ws = trace.weights.isEmpty ? JSONValue.null
                    : .array(trace.weights[base..<(base + trace.k)].map { .double(round6(Double($0))) })
                out += JSONValue.object([("position", .int(t)), ("layer", .int(l)), ("experts", .array(ids)), ("weights", ws)]).serialized() + "\n"
            }
        }
        return out
    }

    /// `layer,expert,selected,share,mean_weight,rank0,...` one row per expert.
    public func usageCSV() -> String {
        var out = "layer,expert,selected,share,mean_weight" + (0..<trace.k).map { ",rank\($0)" }.joined() + "\n"
        for l in profile.layerStats {
            let total = max(l.experts.reduce(0) { $0 + $1.selected }, 1)
            for (e, x) in l.experts.enumerated() {
                out += "\(l.index),\(e),\(x.selected),\(fmt(Double(x.selected) / Double(total), 6)),\(fmt(x.meanWeight, 6))"
                out += x.rankCounts.map { ",\($0)" }.joined() + "\n"
            }
        }
        return out
    }

    // MARK: Readings

    /// Short sentences a person reads first: the most concentrated layers, and the budget that
    /// reaches typical hit rates.
    public func readings() -> [String] {
        var out: [String] = []
        let even = 1.0 / Double(max(trace.experts, 1))
        let skewed = profile.layerStats.sorted { $0.maxOverMean > $1.maxOverMean }.prefix(3)
        for l in skewed {
            let total = max(l.experts.reduce(0) { $0 + $1.selected }, 1)
            let busiest = l.experts.map(\.selected).max() ?? 0
            out.append("layer \(l.index): \(l.expertsForHalf) of \(trace.experts) experts take half of the choices; the busiest takes \(fmt(Double(busiest) / Double(total) * 100, 1))% (\(fmt(Double(busiest) / Double(total) / even, 1))x an even share)")
        }
        let unused = profile.layerStats.reduce(0) { $0 + $1.unused }
        if unused > 0 { out.append("\(unused) experts were never chosen in this run (summed over layers)") }
        let reuse = profile.layerStats.map(\.nextTokenReuse).reduce(0, +) / Double(max(trace.layers, 1))
        out.append("a token shares at least one expert with the previous token in \(fmt(reuse * 100, 0))% of layer steps")
        for target in [0.5, 0.8, 0.9] {
            var best: (CacheSimulator.Policy, Int)?
            for policy in [CacheSimulator.Policy.lru, .lfu] {
                if let s = profile.slotsNeeded(for: target, policy: policy), best == nil || s < best!.1 { best = (policy, s) }
            }
            if let (policy, slots) = best {
                let rate = profile.cacheCurves[policy]![slots - 1]
                out.append("a \(bytes(budgetBytes(slots: slots))) expert budget (\(slots) of \(trace.experts) per layer) gives \(fmt(rate * 100, 0))% hits with \(policy.rawValue.uppercased())")
            }
        }
        return out
    }

    // MARK: SVG

    /// Layers x experts; colour = the expert's share of its layer's choices.
    public func heatmapSVG() -> String {
        let cell = max(10, min(40, 880 / max(trace.experts, 1)))
        let left = 70, top = 50, legendWidth = 340
        let width = left + trace.experts * cell + 30
        let height = top + trace.layers * cell + 90
        let maxShare = profile.layerStats.flatMap { l -> [Double] in
            let total = Double(max(l.experts.reduce(0) { $0 + $1.selected }, 1))
            return l.experts.map { Double($0.selected) / total }
        }.max() ?? 1
        var s = svgOpen(width: max(width, left + legendWidth + 40), height: height)
        s += "<text x=\"\(left)\" y=\"22\" class=\"title\">Expert usage share per layer</text>\n"
        s += "<text x=\"\(left)\" y=\"40\" class=\"small\">each cell: share of the layer's routing choices (even share = \(fmt(100.0 / Double(max(trace.experts, 1)), 1))%)</text>\n"
        for l in profile.layerStats {
            let total = Double(max(l.experts.reduce(0) { $0 + $1.selected }, 1))
            let y = top + l.index * cell
            s += "<text x=\"\(left - 8)\" y=\"\(y + cell / 2 + 4)\" class=\"label\" text-anchor=\"end\">layer \(l.index)</text>\n"
            for (e, x) in l.experts.enumerated() {
                let share = Double(x.selected) / total
                let fill = x.selected == 0 ? "#d9d9d9" : color(share / maxShare)
                s += "<rect x=\"\(left + e * cell)\" y=\"\(y)\" width=\"\(cell - 1)\" height=\"\(cell - 1)\" fill=\"\(fill)\"><title>layer \(l.index), expert \(e): \(fmt(share * 100, 2))% (\(x.selected) choices)</title></rect>\n"
            }
        }
        let axisY = top + trace.layers * cell + 14
        let step = trace.experts > 32 ? 8 : trace.experts > 16 ? 4 : 1
        for e in stride(from: 0, to: trace.experts, by: step) {
            s += "<text x=\"\(left + e * cell + cell / 2)\" y=\"\(axisY)\" class=\"label\" text-anchor=\"middle\">\(e)</text>\n"
        }
        s += "<text x=\"\(left)\" y=\"\(axisY + 18)\" class=\"small\">expert</text>\n"
        // Legend.
        let ly = axisY + 30
        for i in 0..<20 {
            s += "<rect x=\"\(left + i * 10)\" y=\"\(ly)\" width=\"10\" height=\"12\" fill=\"\(color(Double(i) / 19))\"/>\n"
        }
        s += "<text x=\"\(left)\" y=\"\(ly + 26)\" class=\"small\">0%</text>\n"
        s += "<text x=\"\(left + 200)\" y=\"\(ly + 26)\" class=\"small\" text-anchor=\"end\">\(fmt(maxShare * 100, 1))%</text>\n"
        s += "<rect x=\"\(left + 230)\" y=\"\(ly)\" width=\"12\" height=\"12\" fill=\"#d9d9d9\"/>\n"
        s += "<text x=\"\(left + 248)\" y=\"\(ly + 10)\" class=\"small\">never chosen</text>\n"
        return s + "</svg>\n"
    }

    /// Hit rate against budget, one line per policy.
    public func cacheCurveSVG() -> String {
        let w = 640, h = 400, left = 70, right = 150, top = 40, bottom = 60
        let pw = w - left - right, ph = h - top - bottom
        let n = max(trace.experts, 1)
        var s = svgOpen(width: w, height: h)
        s += "<text x=\"\(left)\" y=\"22\" class=\"title\">Expert cache hit rate against budget</text>\n"
        s += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(pw)\" height=\"\(ph)\" fill=\"none\" stroke=\"#999\"/>\n"
        for i in 0...5 {
            let y = top + ph - ph * i / 5
            s += "<line x1=\"\(left)\" y1=\"\(y)\" x2=\"\(left + pw)\" y2=\"\(y)\" stroke=\"#e4e4e4\"/>\n"
            s += "<text x=\"\(left - 6)\" y=\"\(y + 4)\" class=\"label\" text-anchor=\"end\">\(i * 20)%</text>\n"
        }
        let ticks = Array(Set([1, n / 4, n / 2, 3 * n / 4, n].filter { $0 >= 1 })).sorted()
        for t in ticks {
            let x = left + pw * (t - 1) / max(n - 1, 1)
            s += "<line x1=\"\(x)\" y1=\"\(top + ph)\" x2=\"\(x)\" y2=\"\(top + ph + 4)\" stroke=\"#999\"/>\n"
            s += "<text x=\"\(x)\" y=\"\(top + ph + 17)\" class=\"label\" text-anchor=\"middle\">\(bytes(budgetBytes(slots: t)))</text>\n"
            s += "<text x=\"\(x)\" y=\"\(top + ph + 31)\" class=\"small\" text-anchor=\"middle\">\(t)/\(n)</text>\n"
        }
        s += "<text x=\"\(left + pw / 2)\" y=\"\(h - 8)\" class=\"small\" text-anchor=\"middle\">expert budget (resident experts per layer)</text>\n"
        let styles: [(CacheSimulator.Policy, String, String, String)] = [
            (.lru, "#1f77b4", "", "LRU"), (.lfu, "#d62728", "6,3", "LFU (decay)"), (.belady, "#2ca02c", "2,3", "optimal (Belady)"),
        ]
        for (i, (policy, colour, dash, name)) in styles.enumerated() {
            let curve = profile.cacheCurves[policy] ?? []
            let points = curve.enumerated().map { j, rate in
                "\(left + pw * j / max(n - 1, 1)),\(fmt(Double(top + ph) - Double(ph) * rate, 1))"
            }.joined(separator: " ")
            s += "<polyline points=\"\(points)\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2.5\"\(dash.isEmpty ? "" : " stroke-dasharray=\"\(dash)\"")/>\n"
            let ly = top + 16 + i * 22
            s += "<line x1=\"\(left + pw + 12)\" y1=\"\(ly)\" x2=\"\(left + pw + 36)\" y2=\"\(ly)\" stroke=\"\(colour)\" stroke-width=\"2.5\"\(dash.isEmpty ? "" : " stroke-dasharray=\"\(dash)\"")/>\n"
            s += "<text x=\"\(left + pw + 42)\" y=\"\(ly + 4)\" class=\"label\">\(name)</text>\n"
        }
        return s + "</svg>\n"
    }

    // MARK: HTML

    /// One self-contained page (inline SVG, inline CSS, no scripts, no network).
    public func html() -> String {
        var rows = ""
        for l in profile.layerStats {
            rows += "<tr><td>\(l.index)</td><td>\(fmt(l.maxOverMean, 2))</td><td>\(fmt(l.coefficientOfVariation, 2))</td><td>\(fmt(l.entropyBits, 2)) / \(fmt(log2(Double(max(trace.experts, 1))), 2))</td><td>\(l.expertsForHalf)</td><td>\(l.unused)</td><td>\(fmt(l.medianReuseDistance, 1))</td><td>\(fmt(l.nextTokenReuse * 100, 0))%</td></tr>\n"
        }
        let readingItems = readings().map { "<li>\(escape($0))</li>" }.joined(separator: "\n")
        return """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8"/>
            <title>swift-moe expert profile</title>
            <style>
            body { font-family: 'DejaVu Sans', Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }
            h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
            table { border-collapse: collapse; font-size: 0.9em; }
            th, td { border: 1px solid #ccc; padding: 3px 9px; text-align: right; }
            th { background: #f2f2f2; }
            .meta { color: #555; font-size: 0.9em; }
            li { margin: 0.3em 0; }
            </style>
            </head>
            <body>
            <h1>Expert profile</h1>
            <p class="meta">\(escape(subject.modelPath)) (\(escape(subject.architecture))): \(trace.layers) layers, \(trace.experts) experts per layer, \(trace.k) per token; \(trace.tokens) tokens (\(subject.promptTokens) prompt, \(max(trace.tokens - subject.promptTokens, 0)) generated); one expert is \(bytes(subject.bytesPerExpert)).</p>
            <h2>What it says</h2>
            <ul>
            \(readingItems)
            </ul>
            <h2>Usage</h2>
            \(heatmapSVG())
            <h2>Expert cache</h2>
            \(cacheCurveSVG())
            <h2>Load balance per layer</h2>
            <table>
            <tr><th>layer</th><th>max / mean</th><th>CV</th><th>entropy (bits) / max</th><th>experts for 50%</th><th>unused</th><th>median reuse distance</th><th>next-token reuse</th></tr>
            \(rows)</table>
            <p class="meta">Generated by swift-moe <code>moe profile</code>. Data: report.json, trace.jsonl, usage.csv.</p>
            </body>
            </html>

            """
    }

    // MARK: Helpers

    private func svgOpen(width: Int, height: Int) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
            + "<style>.title { font-size: 16px; font-weight: bold; fill: #222; } .label { font-size: 12px; fill: #333; } .small { font-size: 11px; fill: #666; }</style>\n"
            + "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    }

    /// White to dark blue through a perceptually even ramp.
    private func color(_ t: Double) -> String {
        let x = max(0, min(1, t))
        let stops: [(Double, Double, Double)] = [(255, 255, 255), (198, 219, 239), (107, 174, 214), (33, 113, 181), (8, 48, 107)]
        let pos = x * Double(stops.count - 1)
        let i = min(Int(pos), stops.count - 2)
        let f = pos - Double(i)
        let (a, b) = (stops[i], stops[i + 1])
        func hex(_ v: Double) -> String {
            let n = Int((v).rounded())
            let h = String(n, radix: 16)
            return h.count == 1 ? "0" + h : h
        }
        return "#" + hex(a.0 + (b.0 - a.0) * f) + hex(a.1 + (b.1 - a.1) * f) + hex(a.2 + (b.2 - a.2) * f)
    }

    private func escape(_ s: String) -> String {
        s.replacing("&", with: "&amp;").replacing("<", with: "&lt;").replacing(">", with: "&gt;").replacing("\"", with: "&quot;")
    }

    private func round6(_ v: Double) -> Double { v.isFinite ? (v * 1e6).rounded() / 1e6 : 0 }

    private func fmt(_ v: Double, _ digits: Int) -> String { v.isFinite ? formatFixed(v, digits) : "0" }

    private func bytes(_ n: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = Double(n), u = 0
        while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
        return u == 0 ? "\(n) B" : "\(fmt(v, v < 10 ? 2 : 1)) \(units[u])"
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
