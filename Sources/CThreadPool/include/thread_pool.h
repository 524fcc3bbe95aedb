// A fork-join pool whose workers spin briefly between jobs before they sleep: the parallel kernels' pool
// (Parallel.swift). In C for atomics with explicit ordering, the CPU's pause instruction and futexes.
#ifndef THREAD_POOL_H
#define THREAD_POOL_H

/// One chunk of a job: `body(context, chunk)`.
typedef void (*tp_body)(void *context, long chunk);

/// Runs `body(context, c)` for every c in 0 ..< chunks on the calling thread and up to `threads − 1` pool workers
/// (started on first use, kept), each taking the next chunk not yet taken, and returns when all are done. Returns 0
/// without running anything when the pool is in use (a job in flight from another thread, or this call nested in one
/// of its chunks): the caller then runs the job some other way.
int tp_run(long chunks, int threads, tp_body body, void *context);

#endif
