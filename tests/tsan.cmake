# The test cases run under ThreadSanitizer (`make tsan-check`: build-tsan,
# MPROC_SANITIZE=thread, clang). Each Check case (a tu_tcase or q_tcase of
# the program's source, tests/test_<program>.c or tests/<layer>/test_<program>.c)
# of the programs below is one CTest test,
# tsan.<program>.<case>, label "tsan", run with CK_RUN_CASE; a TSan report
# from any process of the test fails it. Every case of these programs runs
# unless excluded below by name, with its reason: <program>.<case> leaves
# out a case, <program>.<case>.<test> one test of it (TU_EXCLUDE, see
# testutil.h).
#
# The programs: the ones whose library code runs threads (pool result and
# worker-feeding threads, executors, futures, manager servers, listener
# accept threads) or whose tests use the library from several threads
# (queues, locks, sync objects, the arena allocator, named shared memory,
# process start from threads). Of the queue programs, only queue_contention
# uses queues from threads; the others are left out whole: one thread per
# process (queue_messages, queue_blocking, queue_bounded, queue_lifetime,
# queue_simple_joinable: queues between processes), and owner death
# (queue_faults: producers and consumers SIGKILLed mid-put and mid-get,
# holding a queue's locks in the arena).
set(MPROC_TSAN_PROGRAMS arena future pool queue_contention conn listener manager start lock sync
                        process shm_named)
if(NOT MPROC_TESTING_ON) # not built without the test hooks (tests/CMakeLists.txt)
  list(REMOVE_ITEM MPROC_TSAN_PROGRAMS ${MPROC_HOOK_TESTS})
endif()

# Excluded, each with its reason. TSan sees one process: memory and
# futexes shared with other processes are invisible to it. So it has
# nothing to say about a holder killed in another process (owner death),
# nor about a test whose processes each run one thread; under its slowdown
# those would only take most of the time budget (each runs every start
# method).
set(MPROC_TSAN_EXCLUDE
    # Single-threaded allocator checks; and its address tests check the
    # address chosen outside TSan (TSan builds map the arena elsewhere).
    arena.alloc
    # One thread per process.
    arena.family.pointers_are_valid_in_children
    arena.family.many_processes_allocate_at_once
    arena.family.a_fork_child_does_not_reuse_its_parents_cache
    # Owner death: a process SIGKILLed inside the allocator.
    arena.family.sigkill_mid_allocation_keeps_the_arena_sound
    # One thread per process (a million messages among eight processes;
    # queues used from threads are queue_contention's
    # threads_in_processes_produce_and_consume).
    queue_contention.contention.four_producers_four_consumers_a_million_messages
    # Owner death: workers SIGKILLed or stopped mid-task (the result thread
    # is covered by pool.calls, without kills).
    pool.faults
    # Owner death: lock holders SIGKILLed inside the lock, in other
    # processes (robust mutexes, the tid_lock's dead-holder takeover).
    lock.faults
    # One thread per process (pipes between processes).
    conn.processes
    # Interop with a python3 process over a socket: no threads of ours.
    conn.python
    listener.python
    # One thread per process (segments shared between processes).
    shm_named.segments
    shm_named.shareable_list
    # Owner death: processes SIGKILLed while they hold the tracker's table
    # or a segment.
    shm_named.tracker.killed_mid_update_keeps_the_table_sound
    shm_named.crash_cleanup
    # A signal handler in the child of a fork made while the process had
    # threads: TSan keeps its interceptors off in such a child (until
    # exec) and may never run a handler it deferred. Daemons started from
    # a thread (a manager's server too) die with their parent through such
    # a handler; a plain fork() of a manager's server, terminated, runs
    # the server's.
    process.family.daemon_outlives_its_starting_thread
    manager.custom_and_refs.server_fork_leaves_the_socket
    manager.remote_and_shutdown.owner_killed_after_thread_start
)

add_custom_target(tsan_tests) # what `make tsan-check` builds
set(MPROC_TSAN_OPTIONS "die_after_fork=0:halt_on_error=1:exitcode=66:second_deadlock_stack=1")
foreach(p ${MPROC_TSAN_PROGRAMS})
  add_dependencies(tsan_tests test_${p})
  set(src ${MPROC_TEST_SOURCE_${p}})
  if(NOT src)
    message(FATAL_ERROR "tsan.cmake: no test program ${p} (tests/CMakeLists.txt)")
  endif()
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${src})
  file(STRINGS ${src} lines REGEX "_tcase\\(s, \"[a-z0-9_]+\"")
  foreach(line ${lines})
    string(REGEX MATCH "_tcase\\(s, \"([a-z0-9_]+)\"" unused "${line}")
    set(case ${CMAKE_MATCH_1})
    if("${p}.${case}" IN_LIST MPROC_TSAN_EXCLUDE)
      continue()
    endif()
    set(skip "")
    foreach(x ${MPROC_TSAN_EXCLUDE})
      if(x MATCHES "^${p}\\.${case}\\.(.+)$")
        list(APPEND skip ${CMAKE_MATCH_1})
      endif()
    endforeach()
    string(REPLACE ";" " " skip "${skip}")
    add_test(NAME tsan.${p}.${case} COMMAND test_${p})
    # Slower under TSan: every Check timeout times 4.
    set_tests_properties(tsan.${p}.${case} PROPERTIES
      LABELS tsan TIMEOUT 900
      FAIL_REGULAR_EXPRESSION "WARNING: ThreadSanitizer"
      ENVIRONMENT "CK_RUN_CASE=${case};TU_EXCLUDE=${skip};CK_DEFAULT_TIMEOUT=60;CK_TIMEOUT_MULTIPLIER=4;TSAN_OPTIONS=${MPROC_TSAN_OPTIONS}")
  endforeach()
endforeach()
