/* mproc — Python's multiprocessing for C. The umbrella header: include this
 * one. Each layer's API is documented in its own header under mproc/. */
#ifndef MPROC_H
#define MPROC_H

#include "mproc/base.h"
#include "mproc/context.h"
#include "mproc/future.h"
#include "mproc/pool.h"
#include "mproc/arena.h"
#include "mproc/conn.h"
#include "mproc/manager.h"
#include "mproc/listener.h"
#include "mproc/process.h"
#include "mproc/queue.h"
#include "mproc/shm.h"
#include "mproc/sync.h"
#include "mproc/value.h"
#include "mproc/wait.h"

#endif
