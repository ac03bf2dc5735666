import MoEKernels
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A fixed set of persistent worker threads that run parallel loops. The calling thread takes part
/// in every loop, so `threads` counts it: a pool of 2 has one worker. Starting a loop allocates
/// nothing and takes no lock: workers spin on a generation counter for a short while, then sleep
/// on a condition variable until the next loop.
///
/// A pool has a second lane (`secondLane`) over the same workers: `together(_:_:)` runs two chains
/// of loops at once, the first on the calling thread and this lane, the second on a worker and the
/// second lane. A thread waiting for the rest of its own loop runs tasks of the other lane's loop
/// meanwhile, so one chain's serial parts and stragglers are filled with the other's work.
///
/// One loop runs at a time per lane; `parallelFor` must not be called from inside a loop body.
public final class ThreadPool: @unchecked Sendable {
    /// The number of threads that run loop bodies, the caller included.
    public let threads: Int

    private let crew: Crew
    /// This lane's loop, and the other lane's (helped while waiting).
    private let loop: LoopSlot
    private let other: LoopSlot
    /// Whether this is the first lane, which owns the workers (and stops them in deinit).
    private let ownsCrew: Bool

    /// Nanoseconds the calling thread has spent waiting, with nothing to do, for other threads to
    /// finish their share of a loop (or, in `together`, the other chain), summed over all loops
    /// (written only by the thread that drives this lane).
    public private(set) var idleNanoseconds: UInt64 = 0

    /// The pool's second lane: the same threads, a loop of its own. Nil on the second lane itself.
    let secondLane: ThreadPool?

    /// A pool of `threads` threads (at least 1), the caller included.
    public init(threads: Int) {
        self.threads = max(1, threads)
        crew = Crew(workers: self.threads - 1)
        loop = crew.lanes[0]
        other = crew.lanes[1]
        ownsCrew = true
        secondLane = ThreadPool(secondLaneOf: crew, threads: self.threads)
    }

    private init(secondLaneOf crew: Crew, threads: Int) {
        self.threads = threads
        self.crew = crew
        loop = crew.lanes[1]
        other = crew.lanes[0]
        ownsCrew = false
        secondLane = nil
    }

    /// The number of online processors (the default thread count).
    public static var processorCount: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    deinit {
        if ownsCrew { crew.stop() }
    }

    /// Runs `body(i)` for every `i` in `0..<count`, spread over the pool's threads, and returns
    /// when all have finished. Tasks are handed out one at a time from a shared counter, so
    /// uneven tasks balance themselves.
    public func parallelFor(_ count: Int, _ body: (Int) -> Void) {
        guard count > 0 else { return }
        if threads == 1 || count == 1 {
            for i in 0..<count { body(i) }
            return
        }
        withoutActuallyEscaping(body) { escapable in
            var slot: LoopSlot.Body = escapable
            withUnsafeMutablePointer(to: &slot) { pointer in
                loop.post(pointer, count: count)
                crew.signal()
                loop.runTasks(pointer.pointee)
                if loop.unfinished.load(ordering: .acquiring) > 0 {
                    let idleSince = moek_monotonic_ns()
                    var helped: UInt64 = 0
                    while loop.unfinished.load(ordering: .acquiring) > 0 {
                        let spent = other.help()
                        if spent == 0 { moek_cpu_relax() } else { helped &+= spent }
                    }
                    idleNanoseconds &+= (moek_monotonic_ns() &- idleSince) &- helped
                }
                loop.withdraw()
            }
        }
    }

    /// Runs `first` on the calling thread and `second` on a worker at the same time, and returns
    /// when both have finished. `first` drives this lane (its loops go through this pool),
    /// `second` the second lane (its loops go through `secondLane`); each thread waiting on its
    /// own loop helps with the other's. When no worker picks `second` up before `first` is done,
    /// the caller runs it itself. Call only on the first lane, never from inside a loop body.
    func together(_ first: () -> Void, _ second: () -> Void) {
        guard threads > 1, secondLane != nil else {
            first()
            second()
            return
        }
        withoutActuallyEscaping(second) { escapable in
            var slot: Crew.Fork = escapable
            withUnsafeMutablePointer(to: &slot) { pointer in
                crew.forkJob.store(UnsafeMutableRawPointer(pointer), ordering: .sequentiallyConsistent)
                crew.forkState.store(Crew.forkPosted, ordering: .sequentiallyConsistent)
                crew.signal()
                first()
                if crew.forkState.compareExchange(expected: Crew.forkPosted, desired: Crew.forkTaken,
                                                  ordering: .sequentiallyConsistent).exchanged {
                    pointer.pointee()  // nobody took it: run it here
                } else {
                    let idleSince = moek_monotonic_ns()
                    var helped: UInt64 = 0
                    while crew.forkState.load(ordering: .acquiring) != Crew.forkDone {
                        let spent = other.help()
                        if spent == 0 { moek_cpu_relax() } else { helped &+= spent }
                    }
                    idleNanoseconds &+= (moek_monotonic_ns() &- idleSince) &- helped
                }
                crew.forkJob.store(nil, ordering: .sequentiallyConsistent)
                crew.forkState.store(Crew.forkIdle, ordering: .sequentiallyConsistent)
            }
        }
    }
}

/// One lane's loop: the body (a pointer to the poster's stack slot, nil between loops), its
/// task counters, and how many threads may still be reading the body.
final class LoopSlot: @unchecked Sendable {
    typealias Body = (Int) -> Void
    let job = Atomic<UnsafeMutableRawPointer?>(nil)
    let active = Atomic<Int>(0)
    let taskCount = Atomic<Int>(0)
    let nextTask = Atomic<Int>(0)
    let unfinished = Atomic<Int>(0)

    /// Publishes a loop of `count` tasks running `body`.
    func post(_ body: UnsafeMutablePointer<Body>, count: Int) {
        taskCount.store(count, ordering: .relaxed)
        nextTask.store(0, ordering: .relaxed)
        unfinished.store(count, ordering: .relaxed)
        job.store(UnsafeMutableRawPointer(body), ordering: .sequentiallyConsistent)
    }

    /// Takes tasks of the current loop until none are left.
    func runTasks(_ body: Body) {
        let count = taskCount.load(ordering: .relaxed)
        while true {
            let i = nextTask.add(1, ordering: .relaxed).oldValue
            if i >= count { return }
            body(i)
            unfinished.subtract(1, ordering: .releasing)
        }
    }

    /// Runs tasks of this lane's loop, if one is posted and has tasks left; returns the
    /// nanoseconds spent (0: there was nothing to do).
    func help() -> UInt64 {
        // Cheap checks first: a waiting thread calls this in a spin loop.
        guard job.load(ordering: .relaxed) != nil,
              nextTask.load(ordering: .relaxed) < taskCount.load(ordering: .relaxed) else { return 0 }
        let start = moek_monotonic_ns()
        active.add(1, ordering: .sequentiallyConsistent)
        if let pointer = job.load(ordering: .sequentiallyConsistent) {
            runTasks(pointer.assumingMemoryBound(to: Body.self).pointee)
        }
        active.subtract(1, ordering: .sequentiallyConsistent)
        return max(1, moek_monotonic_ns() &- start)
    }

    /// Ends the loop: no thread may touch the poster's slot after this returns, so the body is
    /// withdrawn and the threads that already picked it up are waited for.
    func withdraw() {
        job.store(nil, ordering: .sequentiallyConsistent)
        while active.load(ordering: .sequentiallyConsistent) > 0 { moek_cpu_relax() }
    }
}

/// The worker threads of a pool and its two lanes, the wake-up machinery, and the fork slot
/// `together` hands its second chain through.
final class Crew: @unchecked Sendable {
    typealias Fork = () -> Void
    static let forkIdle = 0, forkPosted = 1, forkTaken = 2, forkDone = 3

    let lanes = [LoopSlot(), LoopSlot()]
    let forkJob = Atomic<UnsafeMutableRawPointer?>(nil)
    let forkState = Atomic<Int>(0)
    private let generation = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private let sleepers = Atomic<Int>(0)
    private var mutex = pthread_mutex_t()
    private var wake = pthread_cond_t()
    private var workers: [pthread_t] = []

    /// Spin iterations before a worker sleeps; about 50-100 µs on current CPUs.
    private static let spinLimit = 20_000

    init(workers count: Int) {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&wake, nil)
        for _ in 0..<count {
            let context = Unmanaged.passRetained(self).toOpaque()
            var thread = pthread_t()
            let started = pthread_create(&thread, nil, { raw in
                let crew = Unmanaged<Crew>.fromOpaque(raw!).takeRetainedValue()
                crew.workerLoop()
                return nil
            }, context)
            if started == 0 { workers.append(thread) } else { Unmanaged<Crew>.fromOpaque(context).release() }
        }
    }

    /// Tells the workers there is new work: bumps the generation, waking sleepers.
    func signal() {
        generation.add(1, ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
            pthread_mutex_lock(&mutex)
            pthread_cond_broadcast(&wake)
            pthread_mutex_unlock(&mutex)
        }
    }

    /// Stops and joins the workers (they hold the crew, so this is not left to deinit).
    func stop() {
        stopping.store(true, ordering: .releasing)
        signal()
        pthread_mutex_lock(&mutex)
        pthread_cond_broadcast(&wake)
        pthread_mutex_unlock(&mutex)
        for thread in workers { pthread_join(thread, nil) }
        workers = []
    }

    deinit {
        pthread_cond_destroy(&wake)
        pthread_mutex_destroy(&mutex)
    }

    private func workerLoop() {
        // Generation 0, not the current one: work posted before this thread started is not missed.
        var seen = 0
        while true {
            var spins = 0
            while generation.load(ordering: .acquiring) == seen {
                spins += 1
                if spins < Self.spinLimit {
                    moek_cpu_relax()
                    continue
                }
                pthread_mutex_lock(&mutex)
                sleepers.add(1, ordering: .sequentiallyConsistent)
                while generation.load(ordering: .sequentiallyConsistent) == seen {
                    pthread_cond_wait(&wake, &mutex)
                }
                sleepers.subtract(1, ordering: .relaxed)
                pthread_mutex_unlock(&mutex)
            }
            seen = generation.load(ordering: .acquiring)
            if stopping.load(ordering: .acquiring) { return }
            // Work posted after `seen` was read bumps the generation again, so nothing is missed.
            var busy = true
            while busy {
                busy = false
                if forkState.compareExchange(expected: Self.forkPosted, desired: Self.forkTaken,
                                             ordering: .sequentiallyConsistent).exchanged {
                    if let pointer = forkJob.load(ordering: .sequentiallyConsistent) {
                        pointer.assumingMemoryBound(to: Fork.self).pointee()
                    }
                    forkState.store(Self.forkDone, ordering: .sequentiallyConsistent)
                    busy = true
                }
                if lanes[0].help() > 0 { busy = true }
                if lanes[1].help() > 0 { busy = true }
            }
        }
    }
}
