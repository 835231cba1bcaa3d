/* cpu_relax.h: the spin-wait hint shared by the runtime's and the checker's spin loops. Below
 * both: it includes nothing and knows neither. */
#ifndef WREF_COMMON_CPU_RELAX_H
#define WREF_COMMON_CPU_RELAX_H

/* x86 `pause`, Arm `yield`, and on other targets a compiler barrier only (still correct, the
 * loop just spins harder). */
static inline void wref__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
    __asm__ __volatile__("yield" ::: "memory");
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

#endif /* WREF_COMMON_CPU_RELAX_H */
