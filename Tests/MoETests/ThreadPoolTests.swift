import Synchronization
import Testing
@testable import MoE

@Suite("Thread pool")
struct ThreadPoolTests {
    @Test("every index runs exactly once, across thousands of loops and pool sizes", arguments: [1, 2, 3, 8])
    func everyIndexOnce(threads: Int) {
        let pool = ThreadPool(threads: threads)
        // Each index is written by the one task that owns it, so plain memory is enough; a task
        // run twice or skipped shows up in the counts.
        let counts = UnsafeMutablePointer<Int>.allocate(capacity: 257)
        counts.initialize(repeating: 0, count: 257)
        defer { counts.deallocate() }
        for round in 0..<2_000 {
            let n = round % 257 + 1
            pool.parallelFor(n) { i in counts[i] += 1 }
        }
        var expected = [Int](repeating: 0, count: 257)
        for round in 0..<2_000 { for i in 0..<(round % 257 + 1) { expected[i] += 1 } }
        #expect(Array(UnsafeBufferPointer(start: counts, count: 257)) == expected)
    }

    @Test("matrices split into chunks that cover every row once, 2-4 tasks per thread, a multiple of the threads where one fits")
    func chunking() {
        // (rows, threads, matrices) -> chunks per matrix: olmoe's 16 gate/up matrices of 1024 rows
        // and 8 down matrices on two threads whole; Q/K/V in two chunks each (6 tasks, not 9).
        let cases: [(rows: Int, threads: Int, matrices: Int, chunks: Int)] = [
            (1024, 2, 16, 1), (2048, 2, 8, 1), (2048, 2, 3, 2), (2048, 2, 1, 4), (50304, 16, 1, 32),
            (1024, 16, 16, 2), (1024, 16, 18, 2), (1024, 3, 2, 3), (1024, 1, 1, 1), (40, 8, 1, 2), (8, 4, 1, 1),
        ]
        for c in cases {
            let chunks = Linear.chunkCount(rows: c.rows, threads: c.threads, matrices: c.matrices)
            #expect(chunks == c.chunks, "\(c)")
            var covered = 0
            for i in 0..<chunks {
                let range = Linear.chunk(i, of: chunks, rows: c.rows)
                #expect(range.lowerBound == covered)
                covered = range.upperBound
            }
            #expect(covered == c.rows)
        }
    }

    @Test("a loop of zero does nothing, and the pool survives long idle gaps (workers asleep)")
    func zeroAndIdle() async throws {
        let pool = ThreadPool(threads: 2)
        pool.parallelFor(0) { _ in Issue.record("ran a task of an empty loop") }
        try await Task.sleep(for: .milliseconds(50))  // long enough for the worker to go to sleep
        let total = Atomic<Int>(0)
        pool.parallelFor(100) { i in total.add(i, ordering: .relaxed) }
        #expect(total.load(ordering: .relaxed) == 4950)
    }

    @Test("together runs its two chains at the same time, each on its own lane, and every loop index once", arguments: [2, 3])
    func togetherRunsBothAtOnce(threads: Int) {
        let pool = ThreadPool(threads: threads)
        let lane = pool.secondLane!
        let a = UnsafeMutablePointer<Int>.allocate(capacity: 64), b = UnsafeMutablePointer<Int>.allocate(capacity: 64)
        a.initialize(repeating: 0, count: 64)
        b.initialize(repeating: 0, count: 64)
        defer { a.deallocate(); b.deallocate() }
        for round in 0..<500 {
            // Each chain waits for the other to have started: this finishes only if both run at once.
            let started = Atomic<Int>(0)
            pool.together({
                started.add(1, ordering: .sequentiallyConsistent)
                while started.load(ordering: .sequentiallyConsistent) < 2 {}
                pool.parallelFor(round % 64 + 1) { a[$0] += 1 }
            }, {
                started.add(1, ordering: .sequentiallyConsistent)
                while started.load(ordering: .sequentiallyConsistent) < 2 {}
                lane.parallelFor(64 - round % 64) { b[$0] += 1 }
            })
        }
        var expectA = [Int](repeating: 0, count: 64), expectB = expectA
        for round in 0..<500 {
            for i in 0..<(round % 64 + 1) { expectA[i] += 1 }
            for i in 0..<(64 - round % 64) { expectB[i] += 1 }
        }
        #expect(Array(UnsafeBufferPointer(start: a, count: 64)) == expectA)
        #expect(Array(UnsafeBufferPointer(start: b, count: 64)) == expectB)
    }

    @Test("a thread done with its own chain runs the other lane's tasks: a loop that needs two threads at once completes")
    func waitingThreadHelpsTheOtherLane() {
        let pool = ThreadPool(threads: 2)
        let lane = pool.secondLane!
        for _ in 0..<200 {
            // Task 0 waits for task 1; the second lane's driver is in task 0, so task 1 can only be
            // run by the first lane's thread, waiting for the second chain to end.
            let done = Atomic<Bool>(false)
            pool.together({}, {
                lane.parallelFor(2) { i in
                    if i == 0 {
                        while !done.load(ordering: .sequentiallyConsistent) {}
                    } else {
                        done.store(true, ordering: .sequentiallyConsistent)
                    }
                }
            })
            let finished = done.load(ordering: .relaxed)
            #expect(finished)
        }
    }

    @Test("on one thread, together runs the chains one after the other")
    func togetherOnOneThread() {
        let pool = ThreadPool(threads: 1)
        var order: [Int] = []
        pool.together({ order.append(1) }, { order.append(2) })
        #expect(order == [1, 2])
    }

    @Test("the forward pass gives bitwise the same logits on 1, 2 and 3 threads", arguments: ["forward/qwen3moe-q4_k_m.gguf", "forward/qwen2moe-q8_0.gguf", "forward/llama-f16.gguf"])
    func threadCountDoesNotChangeResults(fixture: String) throws {
        let model = try Model(path: Fixtures.path(fixture))
        let tokens: [Int32] = [256, 72, 101, 108, 108, 111]
        let one = try model.makeSession(contextLength: 16, threads: 1).evaluate(tokens, logits: .all)
        for threads in [2, 3] {
            #expect(try model.makeSession(contextLength: 16, threads: threads).evaluate(tokens, logits: .all) == one)
        }
        #expect(throws: MoEError.self) { try model.makeSession(contextLength: 16, threads: 0) }
    }

    @Test("Locked serializes its users: 8 threads x 20,000 unsynchronized read-modify-writes lose none")
    func lockedCounts() async {
        let counter = Locked<Int>(0)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    for _ in 0..<20_000 {
                        // A plain read, a yield point for the other threads, then the write.
                        counter.withLock { value in let read = value; value = read &+ 1 }
                    }
                }
            }
        }
        #expect(counter.withLock { $0 } == 160_000)
    }
}
