/* wrbench.h: what the harness (wrbench.c) shares with the C++ peer (peer_std.cpp). */
#ifndef WRBENCH_H
#define WRBENCH_H

/* The cold get-ref cases visit WRB_COLD_N objects in the order wrb_perm gives (a random
 * permutation of 0..WRB_COLD_N-1, the same for every implementation). */
#define WRB_COLD_N 1000000L
extern long *wrb_perm;

/* The timed region of a case: in timing mode a monotonic clock, in --callgrind mode
 * CALLGRIND_ZERO_STATS / CALLGRIND_DUMP_STATS_AT(case name). wrb_t_stop returns nanoseconds
 * (0 in --callgrind mode). */
void wrb_t_start(void);
double wrb_t_stop(void);

/* peer_std.cpp */
void std_init(void);
double std_create(long n);
double std_create_destroy(long n);
double std_ref_first(long n);
double std_ref_reuse(long n);
double std_get_hot(long n);
double std_get_miss(long n);
double std_get_cold(long n);
double std_drop(long n);
double std_destroy(long n, int k);
void std_get_loop(int slot, long n);

#endif /* WRBENCH_H */
