/* Shared by the bench_mproc source files: one file per layer of mproc, each
 * with its table of rows; bench_mproc.c holds main and the process helpers. */
#ifndef BENCH_MPROC_H
#define BENCH_MPROC_H

#include "bench_pool.h"
#include "bench_util.h"

#include <mproc.h>

#include <stdio.h>

/* Creates and starts a child running target(copy of arg) under the fork
 * method. 0 or -1. */
int start_child(mproc_process **p, mproc_target_fn target, const void *arg, size_t arglen);

/* Joins and frees p; 0 if it exited with code 0. With kill set, kills it
 * first (for a child left waiting by a failed parent). */
int join_free(mproc_process *p, bool kill);

/* Starts the default start method's server if it has one (forkserver),
 * before a clock starts; 0 or -1 (bench_mproc_pool.c). */
int ensure_server(void);

/* The rows of bench_mproc_sync.c: locks, wake-ups, shared values, arena. */
extern const bench_table bench_mproc_sync;
/* The rows of bench_mproc_queue.c: queues and the value codec. */
extern const bench_table bench_mproc_queue;
/* The rows of bench_mproc_pool.c: pools and executors. */
extern const bench_table bench_mproc_pool;
/* The rows of bench_mproc_manager.c: managers and proxies. */
extern const bench_table bench_mproc_manager;

#endif
