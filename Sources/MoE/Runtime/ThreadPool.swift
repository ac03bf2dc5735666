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
/// One loop runs at a time per pool; `parallelFor` must not be called from inside a loop body.
public final class ThreadPool: @unchecked Sendable {
    /// The number of threads that run loop bodies, the caller included.
    public let threads: Int

    private typealias Body = (Int) -> Void
    /// The running loop's body: a pointer to the caller's stack slot, nil between loops.
    private let job = Atomic<UnsafeMutableRawPointer?>(nil)
    /// Workers that have picked up `job` and may still read it.
    private let active = Atomic<Int>(0)
    private let taskCount = Atomic<Int>(0)
    private let nextTask = Atomic<Int>(0)
    private let unfinished = Atomic<Int>(0)
    private let generation = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private let sleepers = Atomic<Int>(0)
    private var mutex = pthread_mutex_t()
    private var wake = pthread_cond_t()
    private var workers: [pthread_t] = []

    /// Nanoseconds the calling thread has spent waiting for workers to finish their share of a
    /// loop, summed over all loops (written only by the thread that calls `parallelFor`).
    public private(set) var idleNanoseconds: UInt64 = 0

    /// Spin iterations before a worker sleeps; about 50-100 µs on current CPUs.
    private static let spinLimit = 20_000

    /// A pool of `threads` threads (at least 1), the caller included.
    public init(threads: Int) {
        self.threads = max(1, threads)
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&wake, nil)
        for _ in 1..<self.threads {
            let context = Unmanaged.passRetained(WorkerContext(pool: self)).toOpaque()
            var thread = pthread_t()
            let started = pthread_create(&thread, nil, { raw in
                let context = Unmanaged<WorkerContext>.fromOpaque(raw!).takeRetainedValue()
                context.pool.workerLoop()
                return nil
            }, context)
            if started == 0 { workers.append(thread) } else { Unmanaged<WorkerContext>.fromOpaque(context).release() }
        }
    }

    /// The number of online processors (the default thread count).
    public static var processorCount: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    deinit {
        stopping.store(true, ordering: .releasing)
        generation.add(1, ordering: .releasing)
        pthread_mutex_lock(&mutex)
        pthread_cond_broadcast(&wake)
        pthread_mutex_unlock(&mutex)
        for thread in workers { pthread_join(thread, nil) }
        pthread_cond_destroy(&wake)
        pthread_mutex_destroy(&mutex)
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
            var slot: Body = escapable
            withUnsafeMutablePointer(to: &slot) { pointer in
                taskCount.store(count, ordering: .relaxed)
                nextTask.store(0, ordering: .relaxed)
                unfinished.store(count, ordering: .relaxed)
                job.store(UnsafeMutableRawPointer(pointer), ordering: .sequentiallyConsistent)
                generation.add(1, ordering: .sequentiallyConsistent)
                if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                    pthread_mutex_lock(&mutex)
                    pthread_cond_broadcast(&wake)
                    pthread_mutex_unlock(&mutex)
                }
                runTasks(pointer.pointee)
                if unfinished.load(ordering: .acquiring) > 0 {
                    let idleSince = moek_monotonic_ns()
                    while unfinished.load(ordering: .acquiring) > 0 { spinPause() }
                    idleNanoseconds &+= moek_monotonic_ns() &- idleSince
                }
                // No worker may touch the slot after this function returns: withdraw the job,
                // then wait for the workers that already picked it up.
                job.store(nil, ordering: .sequentiallyConsistent)
                while active.load(ordering: .sequentiallyConsistent) > 0 { spinPause() }
            }
        }
    }

    private func runTasks(_ body: Body) {
        let count = taskCount.load(ordering: .relaxed)
        while true {
            let i = nextTask.add(1, ordering: .relaxed).oldValue
            if i >= count { return }
            body(i)
            unfinished.subtract(1, ordering: .releasing)
        }
    }

    private func workerLoop() {
        var seen = generation.load(ordering: .acquiring)
        while true {
            var spins = 0
            while generation.load(ordering: .acquiring) == seen {
                spins += 1
                if spins < Self.spinLimit {
                    spinPause()
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
            active.add(1, ordering: .sequentiallyConsistent)
            if let pointer = job.load(ordering: .sequentiallyConsistent) {
                runTasks(pointer.assumingMemoryBound(to: Body.self).pointee)
            }
            active.subtract(1, ordering: .sequentiallyConsistent)
        }
    }

    @inline(__always) private func spinPause() {
        moek_cpu_relax()
    }
}

/// What a worker thread starts with: its pool, retained until the thread begins.
private final class WorkerContext {
    let pool: ThreadPool
    init(pool: ThreadPool) { self.pool = pool }
}
