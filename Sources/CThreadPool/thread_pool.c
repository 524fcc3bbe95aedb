// See thread_pool.h. Why spin: between two kernels of a batch-1 forward the workers idle for only microseconds, and a
// worker that went to sleep takes tens of microseconds to wake on a virtual machine (its vCPU halts), against ~1 ms
// kernels: with Dispatch's pool two threads ran a bert-mini batch-1 forward only 1.3–1.5× faster than one.
#define _GNU_SOURCE
#include "thread_pool.h"

#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/// How long an idle worker spins before it sleeps, in nanoseconds.
#define SPIN_NS 100000L
#define MAX_WORKERS 255

/// A job, in one of two slots by generation parity: a worker that read the generation may still read its slot while
/// the next job is written into the other. A worker delayed past two jobs may read a slot being rewritten; its
/// compare-and-swap then fails and it drops what it read, so the fields are read and written atomically (relaxed).
typedef struct {
    tp_body body;
    void *context;
    long chunks;
    int threads;
} Job;

static Job slots[2];
/// The generation (high 32 bits) and the next chunk to take (low 32): a chunk is taken by a compare-and-swap that
/// also proves the job is still current.
static _Atomic uint64_t next_chunk;
/// The generation alone, as the futex sleeping workers wait on.
static _Atomic uint32_t generation;
static _Atomic int sleepers;
/// Chunks of the current job finished.
static _Atomic long finished;
/// 1 while a job is in flight.
static _Atomic int busy;
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
/// Workers started (only grows, under `start_lock`).
static _Atomic int started;
/// Set on pool workers: a call from one of them is nested.
static _Thread_local int on_worker;

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

static inline void pause_cpu(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
}

/// Takes and runs chunks of generation `g` until none is left; `index` is the caller's place in the pool (0 the
/// submitting thread), which the job's thread count may leave out.
static void work(uint32_t g, int index) {
    for (;;) {
        uint64_t v = atomic_load_explicit(&next_chunk, memory_order_acquire);
        if ((uint32_t)(v >> 32) != g) return;
        Job *slot = &slots[g & 1];
        tp_body body = __atomic_load_n(&slot->body, __ATOMIC_RELAXED);
        void *context = __atomic_load_n(&slot->context, __ATOMIC_RELAXED);
        long chunks = __atomic_load_n(&slot->chunks, __ATOMIC_RELAXED);
        if (index >= __atomic_load_n(&slot->threads, __ATOMIC_RELAXED) || (long)(uint32_t)v >= chunks) return;
        if (!atomic_compare_exchange_weak_explicit(&next_chunk, &v, v + 1, memory_order_acq_rel, memory_order_relaxed))
            continue;
        body(context, (long)(uint32_t)v);
        atomic_fetch_add_explicit(&finished, 1, memory_order_release);
    }
}

static void *worker(void *argument) {
    int index = (int)(intptr_t)argument;
    on_worker = 1;
    uint32_t seen = atomic_load(&generation);
    for (;;) {
        long deadline = now_ns() + SPIN_NS;
        uint32_t g;
        for (unsigned spins = 1; (g = atomic_load_explicit(&generation, memory_order_acquire)) == seen; spins++) {
            pause_cpu();
            if (spins % 64 == 0 && now_ns() > deadline) {
                atomic_fetch_add(&sleepers, 1);
                // Sleeps only while the generation is still `seen` (the kernel compares it atomically).
                syscall(SYS_futex, &generation, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
                atomic_fetch_sub(&sleepers, 1);
                deadline = now_ns() + SPIN_NS;
            }
        }
        seen = g;
        work(g, index);
    }
    return NULL;
}

/// Starts workers 1 ..< threads that are not running yet; returns how many threads the pool has, the caller included.
/// Every job asks, so once they run it costs one load, not the lock.
static int start_workers(int threads) {
    if (threads > MAX_WORKERS + 1) threads = MAX_WORKERS + 1;
    int count = atomic_load_explicit(&started, memory_order_relaxed) + 1;
    if (count >= threads) return count;
    pthread_mutex_lock(&start_lock);
    for (int n = atomic_load(&started); n < threads - 1; n++) {
        pthread_t thread;
        if (pthread_create(&thread, NULL, worker, (void *)(intptr_t)(n + 1)) != 0) break;
        pthread_detach(thread);
        atomic_store(&started, n + 1);
    }
    count = atomic_load(&started) + 1;
    pthread_mutex_unlock(&start_lock);
    return count;
}

int tp_run(long chunks, int threads, tp_body body, void *context) {
    int expected = 0;
    if (on_worker || !atomic_compare_exchange_strong(&busy, &expected, 1)) return 0;
    if (start_workers(threads) < threads) {
        atomic_store(&busy, 0);
        return 0;
    }
    uint32_t g = atomic_load_explicit(&generation, memory_order_relaxed) + 1;
    Job *slot = &slots[g & 1];
    __atomic_store_n(&slot->body, body, __ATOMIC_RELAXED);
    __atomic_store_n(&slot->context, context, __ATOMIC_RELAXED);
    __atomic_store_n(&slot->chunks, chunks, __ATOMIC_RELAXED);
    __atomic_store_n(&slot->threads, threads, __ATOMIC_RELAXED);
    atomic_store_explicit(&finished, 0, memory_order_relaxed);
    atomic_store_explicit(&next_chunk, (uint64_t)g << 32, memory_order_release);
    // Sequentially consistent with the workers' `sleepers` increment: either a worker sees the new generation before
    // it sleeps, or this sees it asleep and wakes it.
    atomic_store(&generation, g);
    if (atomic_load(&sleepers) > 0) syscall(SYS_futex, &generation, FUTEX_WAKE_PRIVATE, MAX_WORKERS, NULL, NULL, 0);
    work(g, 0);
    for (unsigned spins = 1; atomic_load_explicit(&finished, memory_order_acquire) < chunks; spins++) {
        pause_cpu();
        // A worker descheduled mid-chunk: give up the core now and then rather than spin against it.
        if (spins % 4096 == 0) sched_yield();
    }
    atomic_store_explicit(&busy, 0, memory_order_release);
    return 1;
}
