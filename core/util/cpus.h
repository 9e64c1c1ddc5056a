/* How many CPUs this process may use (affinity mask, cgroup CPU quota) and how
 * many of them other processes keep busy, so the OpenMP/OpenBLAS thread count
 * can follow a shared machine: on 2 cores with one busy competitor, 2 threads
 * that meet at barriers keep ~37% of their quiet speed, 1 thread keeps ~65%. */
#ifndef LFL_UTIL_CPUS_H
#define LFL_UTIL_CPUS_H

#include <stdbool.h>
#include <stdint.h>

/* CPUs in the affinity mask, capped by a cgroup v2 cpu.max / v1 cfs quota
 * (rounded up). Read once; at least 1. */
int lfl_cpus_available(void);
/* "affinity 2, cgroup quota none" and whether adapting is possible: it needs
 * the busy time of exactly the CPUs we run on, which /proc/stat gives per CPU
 * for an affinity mask but not for a quota over a larger host. */
const char *lfl_cpus_describe(void);
bool lfl_cpus_can_adapt(void);

/* A reading of the CPUs in the affinity mask: their busy and total jiffies
 * from /proc/stat and this process's own CPU time. */
typedef struct {
    uint64_t busy, total; /* jiffies summed over the masked CPUs */
    double self_s;        /* this process's CPU seconds */
    bool valid;
} lfl_cpu_sample;

void lfl_cpus_sample(lfl_cpu_sample *s);
/* CPUs' worth of busy time other processes used between two readings;
 * negative when it cannot tell (too short an interval, unreadable /proc). */
double lfl_cpus_others(const lfl_cpu_sample *a, const lfl_cpu_sample *b, long ticks_per_s);
/* The thread count for `avail` CPUs when others keep `others` CPUs busy:
 * a CPU counts as taken when another process uses it half the time or more. */
int lfl_cpus_pick(int avail, double others);

/* Parsers, exposed for tests: "max 100000" / "150000 100000" (cgroup v2
 * cpu.max) -> CPUs (rounded up), 0 for no limit, -1 when malformed. */
int lfl_cpus_parse_quota(const char *cpu_max);
/* Busy and total jiffies of a /proc/stat "cpuN ..." line; false if not one. */
bool lfl_cpus_parse_stat_line(const char *line, int *cpu, uint64_t *busy, uint64_t *total);

/* Called between units of work (the trainer's micro-batches): takes a new
 * reading every >= 0.25 s and, when adapting is on, sets the OpenMP and
 * OpenBLAS thread count. Returns the thread count now; *changed tells whether
 * this call changed it and *others what it measured. Adapting is off when
 * OMP_NUM_THREADS is set (the user chose) or LFL_ADAPT_THREADS=0. */
int lfl_cpus_adapt(bool *changed, double *others);
bool lfl_cpus_adapting(void);
/* A thread count set by the program (lfl.sys.threads(n)) stays: adapting stops. */
void lfl_cpus_fix(void);
/* At start-up: without OMP_NUM_THREADS, OpenMP and OpenBLAS use
 * lfl_cpus_available() threads (libgomp's default counts the affinity mask
 * but not a cgroup quota, and more threads than the quota stall at barriers). */
void lfl_cpus_default_threads(void);

#endif
