# The typed short forms of mproc/pool.h check element types at compile
# time, and MPROC_FREE (mproc.h) refuses a type it does not know: tests/pool/typed_mismatch.c compiles as it is, and fails to compile
# with each -DMISMATCH=n, naming the macro. Run with -DCC=... -DSRC=... -DINC=...
set(base ${CC} -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -fsyntax-only -I${INC} ${SRC})
execute_process(COMMAND ${base} RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the matching forms do not compile:\n${err}")
endif()
foreach(n 1 2 3 4 5 6 7 8)
  execute_process(COMMAND ${base} -DMISMATCH=${n} RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(rc EQUAL 0)
    message(FATAL_ERROR "mismatch ${n} compiled")
  endif()
  if(NOT err MATCHES "MPROC_POOL_(I?MAP|APPLY)|MPROC_FREE")
    message(FATAL_ERROR "mismatch ${n} failed without naming the macro:\n${err}")
  endif()
endforeach()
