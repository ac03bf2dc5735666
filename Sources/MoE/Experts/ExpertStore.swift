import MoEKernels

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Where one expert matrix family (`ffn_gate_exps`, `ffn_up_exps` or `ffn_down_exps`) of a layer
/// lies in the file.
struct ExpertPart: Sendable {
    /// File offset of expert 0's matrix.
    let offset: Int
    /// Bytes of one expert's matrix.
    let expertBytes: Int
    let type: GGMLType
    let inputs: Int
    let outputs: Int
}

/// Routed expert weights served from a fixed RAM arena of expert-sized slots. A slot holds one
/// expert's gate, up and down matrices, read from the file by dedicated I/O threads with
/// page-cache-bypassing reads; the mapping's pages of experts are never touched, so they never
/// enter the process's RSS.
///
/// Sessions `acquire` a layer's chosen experts (hits are pinned at once, misses are queued for
/// reading), compute with the ones that are ready first, wait for the rest, then `release` them.
/// Pinned and loading slots are never evicted. Waiting callers hold no pins, so sessions sharing
/// a store cannot deadlock; a budget below one layer's working set (k experts) is refused at load.
///
/// The budget is split across layers by need: each layer's quota comes from a greedy allocation
/// over (decayed) routing counts, so a layer whose routing concentrates on few experts gets
/// fewer slots. A layer under its quota takes its victims from layers over theirs.
final class ExpertStore: @unchecked Sendable {
    enum SlotState: UInt8 { case empty, loading, ready, failed }

    let layers: Int, experts: Int, k: Int
    /// [layer][0 gate, 1 up, 2 down]; empty for dense layers.
    let parts: [[ExpertPart]]
    /// Where each part starts inside a slot (aligned).
    let partOffsets: [Int]
    let slotBytes: Int
    let slotCount: Int
    private let firstMoELayer: Int
    /// Which layers have routed experts, and how many do.
    private let isMoELayer: [Bool]
    private let moeLayerCount: Int
    let options: ExpertStoreOptions
    let path: String
    private let alignment = 4096
    private let arena: UnsafeMutableRawPointer
    private let bufferedDescriptor: Int32
    private var uncachedDescriptor: Int32
    private let needsAlignment: Bool

    // Everything below is guarded by `mutex`.
    private var mutex = pthread_mutex_t()
    /// Signalled when a read completes or a slot is unpinned.
    private var changed = pthread_cond_t()
    /// Signalled when reads are queued.
    private var work = pthread_cond_t()
    private var slotKey: [Int]
    private var slotState: [SlotState]
    private var slotPins: [Int32]
    private var slotPrefetched: [Bool]
    private var slotLastUse: [UInt64]
    private var slotError: [MoEError?]
    private var residentSlot: [Int32]        // key -> slot, -1
    private var frequency: [Double]          // key -> LFU count
    private var layerUses: [Int]
    private var recentCounts: [Double]       // key -> decayed routing counts, for the split
    private var occupancy: [Int]
    private(set) var quota: [Int]
    private var demandQueue: [Int] = [], demandHead = 0
    private var prefetchQueue: [Int] = [], prefetchHead = 0
    private var clock: UInt64 = 0
    private var tokensSinceSplit = 0
    private var counters: [ExpertStoreStats.Counters]
    private var stopping = false
    private var waiters = 0
    private var ioThreads: [pthread_t] = []

    /// A store for `weights`' routed experts inside `options.budget` bytes. Refuses a budget
    /// that cannot hold one layer's `k` experts, and memory that cannot be reserved.
    init(file: MappedFile, config c: ModelConfig, weights: ModelWeights, options: ExpertStoreOptions) throws(MoEError) {
        layers = c.layers
        experts = c.experts
        k = c.expertsUsed
        self.options = options
        path = file.path
        let parts = ExpertStore.parts(of: weights)
        self.parts = parts
        firstMoELayer = parts.firstIndex { !$0.isEmpty } ?? 0
        isMoELayer = parts.map { !$0.isEmpty }
        moeLayerCount = isMoELayer.filter { $0 }.count
        guard c.isMoE, k > 0, experts > 0, parts.contains(where: { !$0.isEmpty }) else {
            throw MoEError(.invalidArgument, "an expert memory budget needs a model with routed experts; this one is dense", path: file.path)
        }
        (partOffsets, slotBytes) = ExpertStore.slotLayout(parts)
        guard options.budget >= 0 else {
            throw MoEError(.invalidArgument, "the expert memory budget \(options.budget) is negative")
        }
        // More slots than experts would never be used.
        slotCount = min(options.budget / slotBytes, moeLayerCount * experts)
        guard slotCount >= k else {
            throw MoEError(.invalidArgument, "an expert memory budget of \(Self.describe(options.budget)) holds \(slotCount) experts of \(Self.describe(slotBytes)); one layer's working set is \(k) experts, so the budget must be at least \(Self.describe(k * slotBytes))", path: file.path)
        }
        guard options.ioThreads >= 1 && options.ioThreads <= 64 else {
            throw MoEError(.invalidArgument, "expert I/O threads \(options.ioThreads) must be between 1 and 64")
        }
        var seeded = [Double](repeating: 1, count: c.layers * c.experts)
        if let seed = options.seedCounts {
            guard seed.count == c.layers, seed.allSatisfy({ $0.count == c.experts }) else {
                throw MoEError(.invalidArgument, "the expert profile has \(seed.count) layers x \(seed.first?.count ?? 0) experts; this model has \(c.layers) x \(c.experts)")
            }
            // Scale the seed to weigh like 64 tokens of routing, so the run's own routing takes over.
            for l in 0..<c.layers {
                let sum = seed[l].reduce(0, +)
                for e in 0..<c.experts { seeded[l * c.experts + e] = 1 + (sum > 0 ? seed[l][e] / sum * Double(64 * c.expertsUsed) : 0) }
            }
        }
        let (total, overflow) = slotCount.multipliedReportingOverflow(by: slotBytes)
        let physical = Session.physicalMemory
        guard overflow || physical == 0 || total <= physical else {
            throw MoEError(.outOfMemory, "an expert memory budget of \(Self.describe(total)) (\(slotCount) slots) is more than this machine's \(Self.describe(physical)) of memory; use a smaller --expert-memory", path: file.path)
        }
        var raw: UnsafeMutableRawPointer?
        guard !overflow, posix_memalign(&raw, alignment, total) == 0, let raw else {
            throw MoEError(.outOfMemory, "cannot reserve \(Self.describe(slotCount * slotBytes)) for \(slotCount) expert slots", path: file.path)
        }
        arena = raw
        bufferedDescriptor = file.descriptor
        uncachedDescriptor = options.directIO ? moek_open_uncached(file.path) : -1
        needsAlignment = moek_uncached_needs_alignment() != 0

        let keys = layers * experts
        slotKey = [Int](repeating: -1, count: slotCount)
        slotState = [SlotState](repeating: .empty, count: slotCount)
        slotPins = [Int32](repeating: 0, count: slotCount)
        slotPrefetched = [Bool](repeating: false, count: slotCount)
        slotLastUse = [UInt64](repeating: 0, count: slotCount)
        slotError = [MoEError?](repeating: nil, count: slotCount)
        residentSlot = [Int32](repeating: -1, count: keys)
        frequency = [Double](repeating: 0, count: keys)
        layerUses = [Int](repeating: 0, count: layers)
        occupancy = [Int](repeating: 0, count: layers)
        counters = [ExpertStoreStats.Counters](repeating: .init(), count: layers)
        recentCounts = seeded
        quota = ExpertStore.split(counts: recentCounts, layers: layers, experts: experts, active: isMoELayer, slots: slotCount, minimum: k)
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&changed, nil)
        pthread_cond_init(&work, nil)
        for _ in 0..<options.ioThreads {
            let context = Unmanaged.passRetained(self).toOpaque()
            var thread = pthread_t()
            let started = pthread_create(&thread, nil, { raw in
                let store = Unmanaged<ExpertStore>.fromOpaque(raw!).takeRetainedValue()
                store.ioLoop()
                return nil
            }, context)
            if started == 0 { ioThreads.append(thread) } else { Unmanaged<ExpertStore>.fromOpaque(context).release() }
        }
        guard !ioThreads.isEmpty else {
            arena.deallocate()
            if uncachedDescriptor >= 0 { close(uncachedDescriptor) }
            throw MoEError(.outOfMemory, "cannot start expert I/O threads")
        }
    }

    /// Stops the I/O threads (they hold references until then) and frees the arena.
    func shutdown() {
        pthread_mutex_lock(&mutex)
        stopping = true
        pthread_cond_broadcast(&work)
        pthread_mutex_unlock(&mutex)
        for thread in ioThreads { pthread_join(thread, nil) }
        ioThreads.removeAll()
    }

    deinit {
        arena.deallocate()
        if uncachedDescriptor >= 0 { close(uncachedDescriptor) }
        pthread_cond_destroy(&changed)
        pthread_cond_destroy(&work)
        pthread_mutex_destroy(&mutex)
    }

    /// Where each part starts in a slot and the slot's size: room for each part's largest matrix
    /// plus the lead an aligned read puts before it, rounded to 4096.
    static func slotLayout(_ parts: [[ExpertPart]]) -> (offsets: [Int], bytes: Int) {
        var offsets: [Int] = [], bytes = 0
        for p in 0..<3 {
            offsets.append(bytes)
            let widest = parts.map { $0.isEmpty ? 0 : $0[p].expertBytes }.max() ?? 0
            bytes += (widest + 2 * 4096 - 1) / 4096 * 4096
        }
        return (offsets, bytes)
    }

    /// The file layout of `weights`' routed experts ([layer][gate, up, down]; empty for dense layers).
    static func parts(of weights: ModelWeights) -> [[ExpertPart]] {
        weights.layers.map { layer in
            guard case .experts(_, let gate, let up, let down, _) = layer.feedForward else { return [] }
            return [gate, up, down].map { ExpertPart(offset: $0.fileOffset, expertBytes: $0.expertBytes, type: $0.type, inputs: $0.inputs, outputs: $0.outputs) }
        }
    }

    static func describe(_ bytes: Int) -> String {
        if bytes >= 1 << 30 { return formatFixed(Double(bytes) / Double(1 << 30), 2) + " GiB" }
        if bytes >= 1 << 20 { return formatFixed(Double(bytes) / Double(1 << 20), 2) + " MiB" }
        if bytes >= 1 << 10 { return formatFixed(Double(bytes) / Double(1 << 10), 2) + " KiB" }
        return "\(bytes) B"
    }

    // MARK: Using experts

    /// The gate, up and down matrices of the expert held in `slot` (valid while it is pinned and ready).
    func matrices(slot: Int32, layer: Int, expert e: Int) -> (gate: Linear, up: Linear, down: Linear) {
        let base = arena + Int(slot) * slotBytes
        func linear(_ p: Int) -> Linear {
            let part = parts[layer][p]
            let lead = needsAlignment ? (part.offset + e * part.expertBytes) % alignment : 0
            return Linear(base: UnsafeRawPointer(base + partOffsets[p] + lead), type: part.type, inputs: part.inputs, outputs: part.outputs)
        }
        return (linear(0), linear(1), linear(2))
    }

    /// Pins the `count` experts `ids` of `layer` into `slots` (same order). Resident ones are hits;
    /// missing ones get a slot (evicting by policy) and a queued read. Waits, holding no pins,
    /// when every slot is pinned or loading. `predicted` (when given) are the ids prefetching
    /// guessed for this step, for precision and recall.
    func acquire(layer: Int, ids: UnsafePointer<Int32>, count: Int, slots: UnsafeMutablePointer<Int32>,
                 predicted: UnsafePointer<Int32>?, predictedCount: Int) {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        if let predicted, predictedCount > 0 {
            var correct = 0
            for j in 0..<count { for i in 0..<predictedCount where predicted[i] == ids[j] { correct += 1 } }
            counters[layer].predicted += predictedCount
            counters[layer].predictedCorrectly += correct
            counters[layer].chosenAfterPrediction += count
        }
        var stalledSince: UInt64 = 0
        while true {
            // Pin what is resident and count how many slots the rest need.
            var missing = 0
            for j in 0..<count {
                let s = residentSlot[layer * experts + Int(ids[j])]
                slots[j] = s
                if s < 0 { missing += 1 }
            }
            if missing <= evictableSlots(slots: slots, count: count) {
                for j in 0..<count { use(key: layer * experts + Int(ids[j]), layer: layer) }
                // Pin the hits first so that no miss of this call evicts them.
                for j in 0..<count where slots[j] >= 0 {
                    let s = Int(slots[j])
                    slotPins[s] += 1
                    counters[layer].hits += 1
                    if slotPrefetched[s] {
                        slotPrefetched[s] = false
                        counters[layer].prefetchHits += 1
                    }
                }
                for j in 0..<count where slots[j] < 0 {
                    guard let s = takeSlot(for: layer) else { fatalError("expert store: counted slots vanished") }
                    load(slot: s, key: layer * experts + Int(ids[j]), layer: layer, prefetched: false)
                    slotPins[s] += 1
                    slots[j] = Int32(s)
                    counters[layer].misses += 1
                }
                // Recency in rank order, as the profiler's simulator counts it.
                for j in 0..<count { slotLastUse[Int(slots[j])] = tick() }
                if stalledSince != 0 { counters[layer].stallNanoseconds += Int(moek_monotonic_ns() - stalledSince) }
                return
            }
            if stalledSince == 0 { stalledSince = moek_monotonic_ns() }
            waiters += 1
            pthread_cond_wait(&changed, &mutex)
            waiters -= 1
        }
    }

    /// Records one token's routing at `layer` for the split across layers (and counts tokens at
    /// the first MoE layer, re-splitting every `rebalanceInterval` tokens).
    func noteRouting(layer: Int, ids: UnsafePointer<Int32>, count: Int) {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        if layer == firstMoELayer { noteToken() }
        for j in 0..<count { recentCounts[layer * experts + Int(ids[j])] += 1 }
    }

    /// Waits until at least one of the acquired slots whose `pending` flag is set is ready, clears
    /// those flags and returns how many became ready. A failed read is thrown (the caller then
    /// releases every slot it acquired).
    func waitForReady(layer: Int, slots: UnsafePointer<Int32>, pending: UnsafeMutablePointer<Bool>, count: Int,
                      ready: UnsafeMutablePointer<Bool>) throws(MoEError) -> Int {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        var stalledSince: UInt64 = 0
        while true {
            var found = 0
            for j in 0..<count where pending[j] {
                let s = Int(slots[j])
                switch slotState[s] {
                case .ready:
                    pending[j] = false
                    ready[j] = true
                    found += 1
                case .failed:
                    if stalledSince != 0 { counters[layer].stallNanoseconds += Int(moek_monotonic_ns() - stalledSince) }
                    throw slotError[s] ?? MoEError(.io, "reading an expert failed", path: path)
                default:
                    ready[j] = false
                }
            }
            if found > 0 || !(0..<count).contains(where: { pending[$0] }) {
                if stalledSince != 0 { counters[layer].stallNanoseconds += Int(moek_monotonic_ns() - stalledSince) }
                return found
            }
            if stalledSince == 0 { stalledSince = moek_monotonic_ns() }
            waiters += 1
            pthread_cond_wait(&changed, &mutex)
            waiters -= 1
        }
    }

    /// After `acquire`: calls `body` each time some of the `count` slots have become ready, with
    /// their `ready` flags set (body clears the ones it ran), until all have run; then releases
    /// the slots. A failed read releases them too and is thrown. Adds the time spent waiting for
    /// reads (and for the store's lock) to `waited`, in nanoseconds.
    func runAsReady(layer: Int, slots: UnsafeMutablePointer<Int32>, count: Int, pending: UnsafeMutablePointer<Bool>,
                    ready: UnsafeMutablePointer<Bool>, waited: inout UInt64, _ body: () -> Void) throws(MoEError) {
        for j in 0..<count { pending[j] = true }
        var left = count
        do throws(MoEError) {
            while left > 0 {
                let since = moek_monotonic_ns()
                left -= try waitForReady(layer: layer, slots: slots, pending: pending, count: count, ready: ready)
                waited &+= moek_monotonic_ns() &- since
                body()
            }
        } catch {
            release(slots: slots, count: count)
            throw error
        }
        release(slots: slots, count: count)
    }

    /// Reorders `ids` so that the experts of `layer` resident now come first (stable), under one lock.
    func orderResidentFirst(layer: Int, ids: UnsafeMutablePointer<Int32>, count: Int) {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        var front = 0
        for i in 0..<count where residentSlot[layer * experts + Int(ids[i])] >= 0 {
            let e = ids[i]
            for m in stride(from: i, to: front, by: -1) { ids[m] = ids[m - 1] }
            ids[front] = e
            front += 1
        }
    }

    /// Unpins slots taken by `acquire` (entries below 0 are skipped).
    func release(slots: UnsafePointer<Int32>, count: Int) {
        pthread_mutex_lock(&mutex)
        for j in 0..<count where slots[j] >= 0 {
            let s = Int(slots[j])
            slotPins[s] -= 1
            if slotPins[s] == 0 && slotState[s] == .failed { slotState[s] = .empty }
        }
        if waiters > 0 { pthread_cond_broadcast(&changed) }
        pthread_mutex_unlock(&mutex)
    }

    /// Starts reading the `count` experts `ids` of `layer` that are not resident, into slots that
    /// are free or cold: a prefetch never waits, never evicts a pinned or loading slot, and never
    /// evicts an expert used in about the last two tokens (a wrong guess must not cost a hit).
    func prefetch(layer: Int, ids: UnsafePointer<Int32>, count: Int) {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        let horizon = UInt64(2 * moeLayerCount * k)
        let coldBefore = clock > horizon ? clock - horizon : 0
        for j in 0..<count {
            let key = layer * experts + Int(ids[j])
            if residentSlot[key] >= 0 { continue }
            guard let s = takeSlot(for: layer, usedBefore: coldBefore) else { return }
            load(slot: s, key: key, layer: layer, prefetched: true)
            // As old as a cold slot: until used, a guess is the first thing a miss evicts.
            slotLastUse[s] = coldBefore
            counters[layer].prefetches += 1
        }
    }

    // MARK: Slots (callers hold the mutex)


    private func tick() -> UInt64 {
        clock &+= 1
        return clock
    }

    /// LFU bookkeeping for one use of `key`.
    private func use(key: Int, layer: Int) {
        layerUses[layer] += 1
        if layerUses[layer] % max(2 * experts, 1) == 0 {
            for e in 0..<experts { frequency[layer * experts + e] *= 0.5 }
        }
        frequency[key] += 1
    }

    /// How many slots a new expert could take now: unpinned and not loading, less the resident
    /// slots among `slots` (this acquisition's hits, about to be pinned).
    private func evictableSlots(slots: UnsafePointer<Int32>, count: Int) -> Int {
        var available = 0
        for s in 0..<slotCount where slotPins[s] == 0 && slotState[s] != .loading {
            available += 1
        }
        // Resident slots this call pins are not available to its own misses.
        for j in 0..<count where slots[j] >= 0 && slotPins[Int(slots[j])] == 0 && slotState[Int(slots[j])] != .loading {
            available -= 1
        }
        return available
    }

    /// A slot for a new expert of `layer`: a free one, else a victim chosen by the policy and the
    /// layers' quotas. Nil when every slot is pinned or loading.
    private func takeSlot(for layer: Int, usedBefore: UInt64 = .max) -> Int? {
        if let free = (0..<slotCount).first(where: { slotState[$0] == .empty && slotPins[$0] == 0 }) {
            return free
        }
        let below = occupancy[layer] < quota[layer]
        let victim: Int?
        if below {
            victim = pickVictim(usedBefore) { self.occupancy[$0] > self.quota[$0] } ?? pickVictim(usedBefore) { $0 == layer } ?? pickVictim(usedBefore) { _ in true }
        } else {
            victim = pickVictim(usedBefore) { $0 == layer } ?? pickVictim(usedBefore) { self.occupancy[$0] > self.quota[$0] } ?? pickVictim(usedBefore) { _ in true }
        }
        guard let victim else { return nil }
        evict(victim)
        return victim
    }

    /// The policy's choice among unpinned ready slots last used before `usedBefore` whose layer
    /// passes `layerFilter`.
    private func pickVictim(_ usedBefore: UInt64, _ layerFilter: (Int) -> Bool) -> Int? {
        var best = -1
        var bestFrequency = Double.infinity, bestUse = UInt64.max
        for s in 0..<slotCount where slotPins[s] == 0 && slotState[s] == .ready && slotLastUse[s] < usedBefore {
            let key = slotKey[s]
            guard layerFilter(key / experts) else { continue }
            let f = options.policy == .lfu ? frequency[key] : 0
            if f < bestFrequency || (f == bestFrequency && slotLastUse[s] < bestUse) {
                best = s
                bestFrequency = f
                bestUse = slotLastUse[s]
            }
        }
        return best < 0 ? nil : best
    }

    private func evict(_ s: Int) {
        let key = slotKey[s]
        if key >= 0 {
            residentSlot[key] = -1
            occupancy[key / experts] -= 1
            if slotPrefetched[s] { counters[key / experts].wastedPrefetches += 1 }
        }
        slotKey[s] = -1
        slotPrefetched[s] = false
        slotState[s] = .empty
    }

    private func load(slot s: Int, key: Int, layer: Int, prefetched: Bool) {
        slotKey[s] = key
        slotState[s] = .loading
        slotPrefetched[s] = prefetched
        slotError[s] = nil
        residentSlot[key] = Int32(s)
        occupancy[layer] += 1
        if prefetched { prefetchQueue.append(s) } else { demandQueue.append(s) }
        pthread_cond_signal(&work)
    }

    /// Counts a token and re-splits the budget every `rebalanceInterval` tokens.
    private func noteToken() {
        guard options.rebalanceInterval > 0 else { return }
        tokensSinceSplit += 1
        guard tokensSinceSplit >= options.rebalanceInterval else { return }
        tokensSinceSplit = 0
        quota = ExpertStore.split(counts: recentCounts, layers: layers, experts: experts, active: isMoELayer, slots: slotCount, minimum: k)
        for i in 0..<recentCounts.count { recentCounts[i] = recentCounts[i] * 0.5 }
    }

    /// Splits `slots` across layers by need: each active layer first gets `minimum` (or an even
    /// share when there are not enough), then each further slot goes to the layer whose most
    /// used expert without a slot has the highest count: the greedy split that maximises the
    /// expected hits if each layer kept its most used experts.
    static func split(counts: [Double], layers: Int, experts: Int, active: [Bool], slots: Int, minimum: Int) -> [Int] {
        var quota = [Int](repeating: 0, count: layers)
        let activeLayers = (0..<layers).filter { active[$0] }
        guard !activeLayers.isEmpty else { return quota }
        let base = min(minimum, slots / activeLayers.count, experts)
        for l in activeLayers { quota[l] = base }
        var left = slots - base * activeLayers.count
        var sorted: [[Double]] = [[Double]](repeating: [], count: layers)
        for l in activeLayers {
            let row = counts[(l * experts)..<((l + 1) * experts)]
            let total = max(row.reduce(0, +), 1e-9)
            sorted[l] = row.map { $0 / total }.sorted(by: >)
        }
        while left > 0 {
            var best = -1, bestValue = -1.0
            for l in activeLayers where quota[l] < experts {
                let value = sorted[l][quota[l]]
                if value > bestValue { best = l; bestValue = value }
            }
            if best < 0 { break }
            quota[best] += 1
            left -= 1
        }
        return quota
    }

    // MARK: Reading

    private func ioLoop() {
        while true {
            pthread_mutex_lock(&mutex)
            while !stopping && demandHead == demandQueue.count && prefetchHead == prefetchQueue.count {
                pthread_cond_wait(&work, &mutex)
            }
            if stopping {
                pthread_mutex_unlock(&mutex)
                return
            }
            let s: Int
            if demandHead < demandQueue.count {
                s = demandQueue[demandHead]
                demandHead += 1
                if demandHead == demandQueue.count { demandQueue.removeAll(keepingCapacity: true); demandHead = 0 }
            } else {
                s = prefetchQueue[prefetchHead]
                prefetchHead += 1
                if prefetchHead == prefetchQueue.count { prefetchQueue.removeAll(keepingCapacity: true); prefetchHead = 0 }
            }
            let key = slotKey[s]
            pthread_mutex_unlock(&mutex)

            let layer = key / experts, e = key % experts
            var failure: MoEError?
            var read = 0
            for p in 0..<3 {
                let part = parts[layer][p]
                do throws(MoEError) {
                    read += try readPart(part, expert: e, into: arena + s * slotBytes + partOffsets[p])
                } catch {
                    failure = MoEError(.io, "reading expert \(e) of layer \(layer) failed: \(error.message)", path: path, cause: error.cause)
                    break
                }
            }

            pthread_mutex_lock(&mutex)
            counters[layer].bytesRead += read
            if let failure {
                slotError[s] = failure
                slotState[s] = .failed
                residentSlot[key] = -1
                occupancy[layer] -= 1
                slotKey[s] = -1
                slotPrefetched[s] = false
                if slotPins[s] == 0 { slotState[s] = .empty }
            } else {
                slotState[s] = .ready
            }
            pthread_cond_broadcast(&changed)
            pthread_mutex_unlock(&mutex)
        }
    }

    /// Reads expert `e`'s matrix of `part` to `destination` (aligned; the matrix starts at the
    /// read's lead when reads must be aligned). Returns the bytes read.
    private func readPart(_ part: ExpertPart, expert e: Int, into destination: UnsafeMutableRawPointer) throws(MoEError) -> Int {
        let offset = part.offset + e * part.expertBytes, length = part.expertBytes
        if uncachedDescriptor >= 0 {
            let lead = needsAlignment ? offset % alignment : 0
            let start = offset - lead
            let span = needsAlignment ? (lead + length + alignment - 1) / alignment * alignment : length
            var done = 0
            while done < span {
                let n = pread(uncachedDescriptor, destination + done, span - done, off_t(start + done))
                if n > 0 {
                    done += n
                    if needsAlignment && done % alignment != 0 { break }  // an unaligned short read: finish below
                    continue
                }
                if n == 0 { break }
                if errno == EINTR { continue }
                if errno == EINVAL && done == 0 {
                    // The file system refuses O_DIRECT: use buffered reads from now on.
                    disableUncachedReads()
                    return try readBuffered(offset: offset, length: length, into: destination + lead)
                }
                throw MoEError(.io, "pread of \(span) bytes at offset \(start) failed", path: path, cause: String(cString: strerror(errno)))
            }
            if done >= lead + length { return length }
            // Short: either the end of the file (truncated since it was opened) or an unaligned
            // partial read; finish through the buffered descriptor, which reports the truth.
            let have = max(done - lead, 0)
            return have + (try readBuffered(offset: offset + have, length: length - have, into: destination + lead + have))
        }
        let lead = needsAlignment ? offset % alignment : 0
        return try readBuffered(offset: offset, length: length, into: destination + lead)
    }

    private func readBuffered(offset: Int, length: Int, into destination: UnsafeMutableRawPointer) throws(MoEError) -> Int {
        var done = 0
        while done < length {
            let n = pread(bufferedDescriptor, destination + done, length - done, off_t(offset + done))
            if n > 0 { done += n; continue }
            if n == 0 {
                throw MoEError(.io, "the file ends at \(offset + done) but expert data runs to \(offset + length): it was truncated or replaced after it was opened", path: path)
            }
            if errno == EINTR { continue }
            throw MoEError(.io, "pread of \(length) bytes at offset \(offset) failed", path: path, cause: String(cString: strerror(errno)))
        }
        moek_drop_cached_range(bufferedDescriptor, Int64(offset), Int64(length))
        return length
    }

    private func disableUncachedReads() {
        pthread_mutex_lock(&mutex)
        if uncachedDescriptor >= 0 {
            close(uncachedDescriptor)
            uncachedDescriptor = -1
        }
        pthread_mutex_unlock(&mutex)
    }

    // MARK: Reporting

    /// A snapshot of the counters, with each layer's current slots and quota.
    func stats() -> ExpertStoreStats {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        var layersOut = counters
        for l in 0..<layers {
            layersOut[l].residentSlots = occupancy[l]
            layersOut[l].quota = quota[l]
        }
        return ExpertStoreStats(layers: layersOut, budget: options.budget, slotBytes: slotBytes, slots: slotCount,
                                policy: options.policy, directIO: uncachedDescriptor >= 0, prefetch: options.prefetch)
    }

    /// Zeroes the counters (slots stay resident).
    func resetStats() {
        pthread_mutex_lock(&mutex)
        counters = [ExpertStoreStats.Counters](repeating: .init(), count: layers)
        pthread_mutex_unlock(&mutex)
    }

    /// Which experts of `layer` are resident now (for tests and reports).
    func residentExperts(layer: Int) -> [Int] {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return (0..<experts).filter { residentSlot[layer * experts + $0] >= 0 }
    }

    /// Pins currently held across all slots (for tests: zero between steps).
    func pinnedSlots() -> Int {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return slotPins.reduce(0) { $0 + ($1 > 0 ? 1 : 0) }
    }
}
