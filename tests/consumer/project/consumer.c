/* consumer.c: a tiny program that uses an installed wref exactly as a user project does
 * (tests/consumer/run_install_test.sh builds it with find_package and with pkg-config).
 *
 *   consumer        a weak reference whose callback runs when its object dies; prints
 *                   "checker active: 0|1" (wref/check.h), "callback ran: 1", "alive after: 0";
 *                   exits 0, with no finding under the checker
 *   consumer leak   the same, then one object it never releases: a clean exit 0 without the
 *                   checker, a leak finding (exit 23) under it
 */
#include <wref.h>
#include <wref/check.h>

#include <stdio.h>
#include <string.h>

struct point {
    wref_object ob_base;
    double x, y;
};

static const wref_type point_type = {
    .name = "point", .size = sizeof(struct point), .flags = WREF_TYPE_WEAKREFABLE};

static int died;

static int on_dead(wref_object *ref, void *data)
{
    (void)ref;
    (void)data;
    died++;
    return 0;
}

int main(int argc, char **argv)
{
    int leak = argc > 1 && strcmp(argv[1], "leak") == 0;

    wref_object *p = wref_new(&point_type);
    wref_object *cb = wref_callback_new(on_dead, NULL, NULL);
    wref_object *ref = p && cb ? wref_ref_new(p, cb) : NULL;
    if (!ref) {
        fprintf(stderr, "consumer: %s\n", wref_err_message());
        return 1;
    }
    wref_decref(cb);

    wref_object *obj;
    if (wref_get_ref(ref, &obj) != 1)
        return 1;
    ((struct point *)obj)->x = 1.0;
    wref_decref(obj);

    wref_decref(p);   /* the last reference: the callback runs */
    int alive = wref_get_ref(ref, &obj);
    wref_decref(ref);

    printf("checker active: %d\n", wref_check_active());
    printf("callback ran: %d\n", died);
    printf("alive after: %d\n", alive);

    if (leak && !wref_new(&point_type))   /* never released */
        return 1;
    return died == 1 && alive == 0 ? 0 : 1;
}
