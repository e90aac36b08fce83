# Compiles tests/test_deprecated_names.c with its deprecation warnings on
# and -Werror: the compile must fail, and the compiler must name every old
# name the file uses. Run with -DCC=... -DSRC=... -DINC=... -DTESTS=...
execute_process(
  COMMAND ${CMAKE_COMMAND} -E env LC_ALL=C ${CC} -std=c11 -D_GNU_SOURCE -DMPROC_WANT_DEPRECATION_WARNINGS -Wall -Werror
          -fsyntax-only -I${INC} -I${TESTS} ${SRC}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc EQUAL 0)
  message(FATAL_ERROR "the old names compiled without a warning")
endif()
set(names mproc_shm_alloc mproc_shm_calloc mproc_shm_alloc_aligned mproc_shm_free
          mproc_shm_usable_size mproc_shm_contains mproc_sl mproc_sl_item mproc_sl_type
          MPROC_SL_INT MPROC_SL_DOUBLE MPROC_SL_BOOL MPROC_SL_STR MPROC_SL_BYTES MPROC_SL_NIL
          mproc_sl_create mproc_sl_attach mproc_sl_len mproc_sl_get mproc_sl_set
          mproc_sl_shm mproc_sl_close MPROC_ETASKTIMEDOUT)
foreach(n ${names})
  if(NOT err MATCHES "'${n}' is deprecated")
    message(FATAL_ERROR "no deprecation warning for ${n}:\n${err}")
  endif()
endforeach()
if(err MATCHES "error: [^\n]*(undeclared|implicit|incompatible)")
  message(FATAL_ERROR "the file has errors besides the deprecations:\n${err}")
endif()
