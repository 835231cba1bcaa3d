// peer_std.cpp: the C++ peer, std::shared_ptr / std::weak_ptr (libstdc++), behind a C
// interface so wrbench.c can drive it like the other peers. Every function runs the timed
// region itself between wrb_t_start() and wrb_t_stop() and returns its elapsed nanoseconds.
#include <atomic>
#include <memory>
#include <pthread.h>
#include <vector>

extern "C" {
#include "wrbench.h"
}

namespace {

struct Obj {
    long payload[1];   // a 24-byte control block + 8 bytes: close to wref's 24-byte header
};

std::shared_ptr<Obj> hot_sp;
std::weak_ptr<Obj> hot_wp, dead_wp;
std::vector<std::shared_ptr<Obj>> cold_sp;
std::vector<std::weak_ptr<Obj>> cold_wp;
std::shared_ptr<Obj> thr_sp[2];
std::weak_ptr<Obj> thr_wp[2];

inline void keep(const void *p)
{
    __asm__ volatile("" ::"r"(p) : "memory");
}

}  // namespace

extern "C" void std_init(void)
{
    hot_sp = std::make_shared<Obj>();
    hot_wp = hot_sp;
    {
        auto d = std::make_shared<Obj>();
        dead_wp = d;
    }
    for (int i = 0; i < 2; i++) {
        thr_sp[i] = std::make_shared<Obj>();
        thr_wp[i] = thr_sp[i];
        keep(new char[256]);   // spacer: the two control blocks never share a cache line
    }
}

extern "C" double std_create(long n)
{
    std::vector<std::shared_ptr<Obj>> v(n);
    wrb_t_start();
    for (long i = 0; i < n; i++)
        v[i] = std::make_shared<Obj>();
    return wrb_t_stop();
}

extern "C" double std_create_destroy(long n)
{
    wrb_t_start();
    for (long i = 0; i < n; i++) {
        auto p = std::make_shared<Obj>();
        keep(p.get());
    }
    return wrb_t_stop();
}

// First weak_ptr to each of n objects.
extern "C" double std_ref_first(long n)
{
    std::vector<std::shared_ptr<Obj>> v(n);
    for (long i = 0; i < n; i++)
        v[i] = std::make_shared<Obj>();
    std::vector<std::weak_ptr<Obj>> w(n);
    wrb_t_start();
    for (long i = 0; i < n; i++)
        w[i] = v[i];
    return wrb_t_stop();
}

// No canonical weak_ptr exists: the closest analog is a weak_ptr made and dropped.
extern "C" double std_ref_reuse(long n)
{
    wrb_t_start();
    for (long i = 0; i < n; i++) {
        std::weak_ptr<Obj> w(hot_sp);
        keep(&w);
    }
    return wrb_t_stop();
}

extern "C" double std_get_hot(long n)
{
    wrb_t_start();
    for (long i = 0; i < n; i++) {
        std::shared_ptr<Obj> p = hot_wp.lock();
        keep(p.get());
    }
    return wrb_t_stop();
}

extern "C" double std_get_miss(long n)
{
    wrb_t_start();
    for (long i = 0; i < n; i++) {
        std::shared_ptr<Obj> p = dead_wp.lock();
        keep(p.get());
    }
    return wrb_t_stop();
}

extern "C" double std_get_cold(long n)
{
    if (cold_sp.empty()) {
        cold_sp.resize(WRB_COLD_N);
        cold_wp.resize(WRB_COLD_N);
        for (long i = 0; i < WRB_COLD_N; i++) {
            cold_sp[i] = std::make_shared<Obj>();
            cold_wp[i] = cold_sp[i];
        }
    }
    static long pos;
    wrb_t_start();
    for (long i = 0; i < n; i++) {
        std::shared_ptr<Obj> p = cold_wp[wrb_perm[pos]].lock();
        keep(p.get());
        if (++pos == WRB_COLD_N)
            pos = 0;
    }
    return wrb_t_stop();
}

// Drop weak_ptrs while their object lives: n weak_ptrs over n/16 objects.
extern "C" double std_drop(long n)
{
    long objs = (n + 15) / 16;
    std::vector<std::shared_ptr<Obj>> v(objs);
    for (auto &p : v)
        p = std::make_shared<Obj>();
    auto *w = new std::weak_ptr<Obj>[objs * 16];
    for (long i = 0; i < objs * 16; i++)
        w[i] = v[i / 16];
    wrb_t_start();
    for (long i = 0; i < objs * 16; i++)
        w[i].reset();
    double t = wrb_t_stop();
    delete[] w;
    return t * (double)n / (double)(objs * 16);
}

// Destroy n objects that each have k weak_ptrs (no callbacks exist in std).
extern "C" double std_destroy(long n, int k)
{
    std::vector<std::shared_ptr<Obj>> v(n);
    std::vector<std::weak_ptr<Obj>> w((size_t)n * k);
    for (long i = 0; i < n; i++) {
        v[i] = std::make_shared<Obj>();
        for (int j = 0; j < k; j++)
            w[(size_t)i * k + j] = v[i];
    }
    wrb_t_start();
    for (long i = 0; i < n; i++)
        v[i].reset();
    return wrb_t_stop();
}

// One thread's loop of a 2-thread get-ref case: slot 0 for both (same) or its own (distinct).
extern "C" void std_get_loop(int slot, long n)
{
    std::weak_ptr<Obj> &wp = thr_wp[slot];
    for (long i = 0; i < n; i++) {
        std::shared_ptr<Obj> p = wp.lock();
        keep(p.get());
    }
}
