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
 * mproc_proxy_callf_unpack(maths, "add", "ii", "I", 4, 3, &n): the
 * arguments packed from a format, the result read into an int64_t; the
 * calls run in the server process. A method reads its arguments with
 * mproc_value_unpack and packs its result with mproc_value_pack. A method fails as a Python method
 * raises, with mproc_task_fail: the caller gets MPROC_EMETHOD and the message from
 * mproc_manager_last_error (here, for arguments that are not numbers).
 */
#include <mproc.h>

#include <inttypes.h>
#include <stdio.h>

/* ---- the MathsClass, run by the server process --------------------------------------- */

/* MathsClass() has no state of its own: the state is NULL. */
static int maths_create(const mproc_value *args, void **state)
{
    if (mproc_value_len(args) != 0) return mproc_task_fail("Maths() takes no arguments");
    *state = NULL;
    return 0;
}

/* def add(self, x, y): return x + y (ints: Python's int; floats are not
 * needed by this example, so they are refused as any other type) */
static int maths_add(void *state, const mproc_value *args, mproc_value **result)
{
    (void)state;
    int64_t x, y, sum;
    if (mproc_value_unpack(args, "[II]", &x, &y) != 0) return mproc_task_fail("add(x, y): ints");
    if (__builtin_add_overflow(x, y, &sum)) return mproc_task_fail("add: integer overflow");
    return mproc_value_pack(result, "I", sum);
}

/* def mul(self, x, y): return x * y */
static int maths_mul(void *state, const mproc_value *args, mproc_value **result)
{
    (void)state;
    int64_t x, y, product;
    if (mproc_value_unpack(args, "[II]", &x, &y) != 0) return mproc_task_fail("mul(x, y): ints");
    if (__builtin_mul_overflow(x, y, &product)) return mproc_task_fail("mul: integer overflow");
    return mproc_value_pack(result, "I", product);
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

int main(void)
{
    /* with MyManager() as manager: a manager serving the built-in types
     * and "Maths". */
    mproc_manager_opts opts = {
        .types = my_manager_types,
        .ntypes = sizeof my_manager_types / sizeof my_manager_types[0],
    };
    mproc_manager *manager;
    MPROC_CHECK(mproc_manager_start(&manager, &opts));

    /* maths = manager.Maths() */
    mproc_proxy *maths;
    MPROC_CHECK(mproc_manager_create(manager, "Maths", NULL, &maths));

    /* print(maths.add(4, 3)); print(maths.mul(7, 8)) */
    int64_t n;
    MPROC_CHECK(mproc_proxy_callf_unpack(maths, "add", "ii", "I", 4, 3, &n));
    printf("%" PRId64 "\n", n); /* prints 7 */
    MPROC_CHECK(mproc_proxy_callf_unpack(maths, "mul", "ii", "I", 7, 8, &n));
    printf("%" PRId64 "\n", n); /* prints 56 */

    /* The end of the with block: the proxy, then the manager. */
    mproc_proxy_free(maths);
    mproc_manager_free(manager);
    return 0;
}
