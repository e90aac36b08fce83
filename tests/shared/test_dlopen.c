/* mproc brought in by dlopen: the host links neither mproc nor the module;
 * it dlopens dlopen_module.so, which links libmproc.so. A new image of the
 * host (spawn, forkserver) runs mproc's start-up code only because mproc
 * puts itself in the new image's LD_PRELOAD; the child still sees the
 * parent's LD_PRELOAD. */
#include "mproc/context.h"

#include <check.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/wait.h>

#ifndef DLOPEN_MODULE
#error "DLOPEN_MODULE: the path of dlopen_module.so"
#endif

START_TEST(children_of_a_dlopened_mproc_run)
{
    unsetenv("LD_PRELOAD");
    void *h = dlopen(DLOPEN_MODULE, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(h, "dlopen: %s", dlerror());
    int (*run)(int) = (int (*)(int))dlsym(h, "dlopen_module_run");
    void (*done)(void) = (void (*)(void))dlsym(h, "dlopen_module_done");
    ck_assert(run && done);
    const int methods[] = {MPROC_START_FORK, MPROC_START_SPAWN, MPROC_START_FORKSERVER};
    for (int i = 0; i < 3; i++) {
        int code = run(methods[i]);
        ck_assert_msg(code == 42, "method %d: the child gave %d", methods[i], code);
    }
    done();
    ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1); /* nothing left behind */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dlopen");
    TCase *tc = tcase_create("dlopen");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, children_of_a_dlopened_mproc_run);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
