/* CPUs available to this process and the busy time of other processes on
 * them (see cpus.h for why the thread count follows it). */
#define _GNU_SOURCE
#include "cpus.h"

#include <math.h>
#include <omp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "../blas.h"

static int n_affinity = 0, n_quota = 0, n_avail = 0;
static cpu_set_t mask;
static char describe_buf[160];

int lfl_cpus_parse_quota(const char *cpu_max)
{
    char q[32];
    long long period = 0;
    if (sscanf(cpu_max, "%31s %lld", q, &period) < 1) return -1;
    if (strcmp(q, "max") == 0) return 0;
    char *end;
    long long quota = strtoll(q, &end, 10);
    if (*end || quota <= 0) return -1;
    if (period <= 0) period = 100000; /* the kernel's default period */
    return (int)((quota + period - 1) / period);
}

/* cgroup v2 cpu.max, else v1's cfs quota and period; 0 = no limit */
static int read_quota(void)
{
    char buf[128];
    FILE *f = fopen("/sys/fs/cgroup/cpu.max", "r");
    if (f) {
        int n = fgets(buf, sizeof buf, f) ? lfl_cpus_parse_quota(buf) : -1;
        fclose(f);
        return n > 0 ? n : 0;
    }
    long long quota = -1, period = 0;
    f = fopen("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "r");
    if (f) {
        if (fscanf(f, "%lld", &quota) != 1) quota = -1;
        fclose(f);
    }
    f = fopen("/sys/fs/cgroup/cpu/cpu.cfs_period_us", "r");
    if (f) {
        if (fscanf(f, "%lld", &period) != 1) period = 0;
        fclose(f);
    }
    if (quota <= 0 || period <= 0) return 0;
    return (int)((quota + period - 1) / period);
}

static void init(void)
{
    if (n_avail) return;
    CPU_ZERO(&mask);
    if (sched_getaffinity(0, sizeof mask, &mask) == 0) {
        n_affinity = CPU_COUNT(&mask);
    } else {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_affinity = n > 0 ? (int)n : 1;
        for (int i = 0; i < n_affinity && i < CPU_SETSIZE; i++) CPU_SET(i, &mask);
    }
    if (n_affinity < 1) n_affinity = 1;
    n_quota = read_quota();
    n_avail = n_quota > 0 && n_quota < n_affinity ? n_quota : n_affinity;
    if (n_quota > 0)
        snprintf(describe_buf, sizeof describe_buf, "affinity %d, cgroup quota %d", n_affinity, n_quota);
    else
        snprintf(describe_buf, sizeof describe_buf, "affinity %d, cgroup quota none", n_affinity);
}

int lfl_cpus_available(void)
{
    init();
    return n_avail;
}

const char *lfl_cpus_describe(void)
{
    init();
    return describe_buf;
}

bool lfl_cpus_can_adapt(void)
{
    init();
    return n_avail == n_affinity && n_avail > 1;
}

bool lfl_cpus_parse_stat_line(const char *line, int *cpu, uint64_t *busy, uint64_t *total)
{
    /* cpuN user nice system idle iowait irq softirq steal [guest guest_nice];
     * guest time is already inside user, so it is not added again */
    if (strncmp(line, "cpu", 3) != 0 || line[3] < '0' || line[3] > '9') return false;
    unsigned long long v[8] = {0};
    int id;
    int got = sscanf(line + 3, "%d %llu %llu %llu %llu %llu %llu %llu %llu", &id, &v[0], &v[1], &v[2], &v[3], &v[4],
                     &v[5], &v[6], &v[7]);
    if (got < 5) return false;
    uint64_t idle = v[3] + v[4];
    uint64_t all = 0;
    for (int i = 0; i < 8; i++) all += v[i];
    *cpu = id;
    *busy = all - idle;
    *total = all;
    return true;
}

void lfl_cpus_sample(lfl_cpu_sample *s)
{
    init();
    memset(s, 0, sizeof *s);
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return;
    char line[512];
    int seen = 0;
    while (fgets(line, sizeof line, f)) {
        int cpu;
        uint64_t busy, total;
        if (!lfl_cpus_parse_stat_line(line, &cpu, &busy, &total)) continue;
        if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &mask)) continue;
        s->busy += busy;
        s->total += total;
        seen++;
    }
    fclose(f);
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    s->self_s = (double)ts.tv_sec + ts.tv_nsec * 1e-9;
    s->valid = seen > 0;
}

double lfl_cpus_others(const lfl_cpu_sample *a, const lfl_cpu_sample *b, long ticks_per_s)
{
    if (!a->valid || !b->valid || b->total <= a->total || ticks_per_s <= 0) return -1;
    double total = (double)(b->total - a->total), busy = (double)(b->busy - a->busy);
    int ncpu = n_avail > 0 ? n_avail : 1;
    double wall_s = total / ncpu / ticks_per_s;
    if (wall_s < 0.1) return -1; /* jiffies are 10 ms: too coarse below that */
    double others_s = busy / ticks_per_s - (b->self_s - a->self_s);
    double r = others_s / wall_s;
    return r < 0 ? 0 : r;
}

int lfl_cpus_pick(int avail, double others)
{
    if (others < 0) return avail;
    int taken = (int)floor(others + 0.5);
    int n = avail - taken;
    return n < 1 ? 1 : n;
}

static int adapt_state = -1; /* -1 undecided, 0 off, 1 on */
static lfl_cpu_sample last;
static double last_wall;

bool lfl_cpus_adapting(void)
{
    if (adapt_state < 0) {
        const char *omp = getenv("OMP_NUM_THREADS"), *env = getenv("LFL_ADAPT_THREADS");
        adapt_state = !(omp && *omp) && !(env && strcmp(env, "0") == 0) && lfl_cpus_can_adapt();
    }
    return adapt_state == 1;
}

void lfl_cpus_fix(void)
{
    adapt_state = 0;
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Fewer threads can hide a free CPU: at 1 of 2 threads an idle-priority or
 * elastic job fills the CPU we left and looks like a competitor. So a lowered
 * count is retried at every CPU after 30 s, then after twice as long each time
 * the retry still finds the CPU taken (at most every 10 min). A retry is not
 * reported unless it changes the settled count. */
static bool probing;
static double probe_every = 30, next_probe;
static int settled;

int lfl_cpus_adapt(bool *changed, double *others)
{
    *changed = false;
    *others = -1;
    int now_threads = omp_get_max_threads();
    if (!lfl_cpus_adapting()) return now_threads;
    double t = wall_now();
    if (!last.valid) {
        lfl_cpus_sample(&last);
        last_wall = t;
        settled = now_threads;
        return now_threads;
    }
    if (t - last_wall < 0.25) return now_threads;
    lfl_cpu_sample s;
    lfl_cpus_sample(&s);
    double o = lfl_cpus_others(&last, &s, sysconf(_SC_CLK_TCK));
    last = s;
    last_wall = t;
    if (o < 0) return now_threads;
    *others = o;
    int want = lfl_cpus_pick(n_avail, o);
    if (probing) {
        probing = false;
        if (want < n_avail) {
            probe_every = fmin(probe_every * 2, 600);
            next_probe = t + probe_every;
        } else {
            probe_every = 30;
        }
    } else if (want < n_avail) {
        if (now_threads == n_avail) {
            next_probe = t + probe_every;
        } else if (t >= next_probe) {
            want = n_avail;
            probing = true;
        }
    } else {
        probe_every = 30;
    }
    if (want != now_threads) {
        omp_set_num_threads(want);
        lfl_blas_set_threads(want);
    }
    if (!probing && want != settled) {
        settled = want;
        *changed = true;
    }
    return probing ? settled : want;
}

void lfl_cpus_default_threads(void)
{
    const char *omp = getenv("OMP_NUM_THREADS");
    if (omp && *omp) return;
    int n = lfl_cpus_available();
    if (n != omp_get_max_threads()) {
        omp_set_num_threads(n);
        lfl_blas_set_threads(n);
    }
}
