import NIOCore

/// An event loop as a task executor (SE-0417): the jobs of tasks that prefer it run on the loop.
///
/// A task that does its work between I/O on one loop — a link's requests, a database
/// connection's statements — and prefers that loop's executor wakes no other thread between one
/// step and the next: the loop reads, the task runs, the task writes, on one thread. A task on
/// Swift's global executor instead hands each step across threads (the loop wakes a pool thread,
/// the pool thread wakes the loop), a context switch each way.
public final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {  // the loop is thread-safe
    public let loop: any EventLoop

    public init(_ loop: any EventLoop) { self.loop = loop }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
