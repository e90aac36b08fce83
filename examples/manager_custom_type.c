/* manager_custom_type — C twin of seed 004's "Customized managers"
 * (practical example 9): a type of our own registered with a manager and
 * used through a proxy.
 *
 * The seed describes the steps (subclass BaseManager, register a class,
 * start the manager, use the proxy) without the example's code; this
 * program from the Python documentation of multiprocessing.managers, which
 * does exactly those steps, stands for it:
 *
 *     from multiprocessing.managers import BaseManager
 *
 *     class MathsClass:
 *         def add(self, x, y):
 *             return x + y
 *         def mul(self, x, y):
 *             return x * y
 *
 *     class MyManager(BaseManager):
 *         pass
 *
 *     MyManager.register('Maths', MathsClass)
 *
 *     if __name__ == '__main__':
 *         with MyManager() as manager:
 *             maths = manager.Maths()
 *             print(maths.add(4, 3))         # prints 7
 *             print(maths.mul(7, 8))         # prints 56
 *
 * Output:
 *
 *     7
 *     56
 *
 * In C, register() is a table: an mproc_type_def names the type ("Maths"),
 * its constructor (the class: it makes the object's state from the
 * creation arguments) and its methods, each a C function on the state
 * taking its arguments as a list value and giving back a value. Only the
 * methods in the table can be called, as only a class's public methods are
 * exposed by BaseManager. The table goes to mproc_manager_start in
 * mproc_manager_opts.types (MyManager() then __enter__'s start()); the
 * server process finds the functions again under every start method,
 * because they are functions of this program. manager.Maths() is
 * mproc_manager_create(manager, "Maths", ...), and maths.add(4, 3) is
 * mproc_proxy_call(maths, "add", [4, 3], &result); the calls run in the
 * server process. A method fails as a Python method raises, with
 * mproc_task_fail: the caller gets MPROC_EMETHOD and the message from
 * mproc_manager_last_error (here, for arguments that are not numbers).
 */
#include <mproc.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

/* Prints what failed and why, then exits: every mproc call is checked. A
 * method's own failure is shown with its message. */
static void check(int rc, const char *what)
{
    if (rc < 0) {
        const char *msg = "";
        if (rc == MPROC_EMETHOD) mproc_manager_last_error(NULL, &msg);
        fprintf(stderr, "manager_custom_type: %s: %s%s%s\n", what, mproc_strerror(rc),
                msg[0] ? ": " : "", msg);
        exit(1);
    }
}

/* Exits when an allocating call returned NULL (memory ran out). */
static void *check_alloc(void *p, const char *what)
{
    if (p == NULL) check(MPROC_ENOMEM, what);
    return p;
}

/* ---- the MathsClass, run by the server process --------------------------------------- */

/* MathsClass() has no state of its own: the state is NULL. */
static int maths_create(const mproc_value *args, void **state)
{
    if (mproc_value_len(args) != 0) return mproc_task_fail("Maths() takes no arguments");
    *state = NULL;
    return 0;
}

/* x and y of (self, x, y), both ints (Python's int; floats are not needed
 * by this example, so they are refused as any other type). */
static int two_ints(const mproc_value *args, const char *name, int64_t *x, int64_t *y)
{
    if (mproc_value_len(args) != 2)
        return mproc_task_fail("%s() takes 2 arguments (%zu given)", name, mproc_value_len(args));
    if (mproc_value_get_int(mproc_value_list_get(args, 0), x) != 0 ||
        mproc_value_get_int(mproc_value_list_get(args, 1), y) != 0)
        return mproc_task_fail("unsupported operand type(s) for %s", name);
    return 0;
}

/* def add(self, x, y): return x + y */
static int maths_add(void *state, const mproc_value *args, mproc_value **result)
{
    (void)state;
    int64_t x, y, sum;
    int rc = two_ints(args, "add", &x, &y);
    if (rc != 0) return rc;
    if (__builtin_add_overflow(x, y, &sum)) return mproc_task_fail("add: integer overflow");
    return (*result = mproc_value_int(sum)) != NULL ? 0 : MPROC_ENOMEM;
}

/* def mul(self, x, y): return x * y */
static int maths_mul(void *state, const mproc_value *args, mproc_value **result)
{
    (void)state;
    int64_t x, y, product;
    int rc = two_ints(args, "mul", &x, &y);
    if (rc != 0) return rc;
    if (__builtin_mul_overflow(x, y, &product)) return mproc_task_fail("mul: integer overflow");
    return (*result = mproc_value_int(product)) != NULL ? 0 : MPROC_ENOMEM;
}

/* MyManager.register('Maths', MathsClass) */
static const mproc_method_def maths_methods[] = {
    {.name = "add", .fn = maths_add},
    {.name = "mul", .fn = maths_mul},
};

static const mproc_type_def my_manager_types[] = {
    {
        .typeid = "Maths",
        .create = maths_create,
        .destroy = NULL, /* no state to free */
        .methods = maths_methods,
        .nmethods = sizeof maths_methods / sizeof maths_methods[0],
    },
};

/* ---- the program ------------------------------------------------------------------ */

/* maths.<method>(x, y), printed as Python's print() of an int. */
static void call_and_print(mproc_proxy *maths, const char *method, int64_t x, int64_t y)
{
    mproc_value *args = check_alloc(mproc_value_list(), "mproc_value_list");
    check(mproc_value_list_append(args, check_alloc(mproc_value_int(x), "mproc_value_int")),
          "mproc_value_list_append");
    check(mproc_value_list_append(args, check_alloc(mproc_value_int(y), "mproc_value_int")),
          "mproc_value_list_append");
    mproc_value *result = NULL;
    check(mproc_proxy_call(maths, method, args, &result), method);
    mproc_value_free(args);

    int64_t n;
    if (mproc_value_get_int(result, &n) != 0) {
        fprintf(stderr, "manager_custom_type: %s did not return an int\n", method);
        exit(1);
    }
    printf("%" PRId64 "\n", n);
    mproc_value_free(result);
}

int main(void)
{
    /* with MyManager() as manager: a manager serving the built-in types
     * and "Maths". */
    mproc_manager_opts opts = {
        .types = my_manager_types,
        .ntypes = sizeof my_manager_types / sizeof my_manager_types[0],
    };
    mproc_manager *manager;
    check(mproc_manager_start(&manager, &opts), "mproc_manager_start");

    /* maths = manager.Maths() */
    mproc_proxy *maths;
    check(mproc_manager_create(manager, "Maths", NULL, &maths), "manager.Maths()");

    call_and_print(maths, "add", 4, 3); /* prints 7 */
    call_and_print(maths, "mul", 7, 8); /* prints 56 */

    /* The end of the with block: the proxy, then the manager. */
    mproc_proxy_free(maths);
    mproc_manager_free(manager);
    return 0;
}
