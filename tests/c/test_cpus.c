/* core/util/cpus.c: the cgroup quota and /proc/stat parsers on the kernel's
 * real formats, the thread pick, the "CPUs others keep busy" arithmetic on
 * readings made by hand, a real reading of this machine, and that a busy
 * child process on the CPUs we run on is measured as about one CPU taken. */
#define _GNU_SOURCE
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "util/cpus.h"

static int passed, failed;

#define CHECK(cond, ...)                                 \
    do {                                                 \
        if (cond) passed++;                              \
        else {                                           \
            failed++;                                    \
            printf("FAIL  %s:%d: ", __FILE__, __LINE__); \
            printf(__VA_ARGS__);                         \
            printf("\n");                                \
        }                                                \
    } while (0)

static void test_quota(void)
{
    CHECK(lfl_cpus_parse_quota("max 100000\n") == 0, "no limit");
    CHECK(lfl_cpus_parse_quota("200000 100000\n") == 2, "2 CPUs");
    CHECK(lfl_cpus_parse_quota("150000 100000") == 2, "1.5 CPUs round up");
    CHECK(lfl_cpus_parse_quota("50000 100000") == 1, "half a CPU is 1");
    CHECK(lfl_cpus_parse_quota("400000") == 4, "no period: the default 100000");
    CHECK(lfl_cpus_parse_quota("") == -1, "empty");
    CHECK(lfl_cpus_parse_quota("abc 100000") == -1, "not a number");
    CHECK(lfl_cpus_parse_quota("-5 100000") == -1, "negative");
}

static void test_stat_line(void)
{
    int cpu;
    uint64_t busy, total;
    /* user nice system idle iowait irq softirq steal guest guest_nice */
    CHECK(lfl_cpus_parse_stat_line("cpu1 100 5 50 1000 20 3 2 7 40 0\n", &cpu, &busy, &total), "cpu1 line");
    CHECK(cpu == 1 && busy == 100 + 5 + 50 + 3 + 2 + 7 && total == busy + 1000 + 20,
          "cpu %d busy %llu total %llu", cpu, (unsigned long long)busy, (unsigned long long)total);
    CHECK(!lfl_cpus_parse_stat_line("cpu  100 5 50 1000 20 3 2 7 0 0\n", &cpu, &busy, &total), "aggregate line");
    CHECK(!lfl_cpus_parse_stat_line("intr 12345 0 0\n", &cpu, &busy, &total), "other line");
    CHECK(!lfl_cpus_parse_stat_line("cpu3 1 2\n", &cpu, &busy, &total), "too few fields");
    /* old kernels: 4 fields only */
    CHECK(lfl_cpus_parse_stat_line("cpu0 10 0 5 85\n", &cpu, &busy, &total) && busy == 15 && total == 100, "4 fields");
}

static void test_pick(void)
{
    CHECK(lfl_cpus_pick(2, 0.0) == 2, "quiet");
    CHECK(lfl_cpus_pick(2, 0.4) == 2, "under half a CPU");
    CHECK(lfl_cpus_pick(2, 0.67) == 1, "a competitor at 2 of 3 threads' share");
    CHECK(lfl_cpus_pick(2, 1.0) == 1, "one busy competitor");
    CHECK(lfl_cpus_pick(2, 3.0) == 1, "never below 1");
    CHECK(lfl_cpus_pick(64, 2.6) == 61, "3 CPUs taken of 64");
    CHECK(lfl_cpus_pick(8, -1) == 8, "no reading");
}

static void test_others(void)
{
    int n = lfl_cpus_available();
    /* n CPUs for 1 s at 100 ticks/s: 100 n ticks; we used 0.5 s, others 1 CPU */
    lfl_cpu_sample a = {.busy = 1000, .total = 5000, .self_s = 2.0, .valid = true};
    lfl_cpu_sample b = {.busy = 1000 + 50 + 100, .total = 5000 + 100 * (uint64_t)n, .self_s = 2.5, .valid = true};
    double o = lfl_cpus_others(&a, &b, 100);
    CHECK(fabs(o - 1.0) < 1e-9, "others %.3f, want 1", o);
    b.self_s = 4.0; /* we used more than the busy time: clamped to 0 */
    CHECK(lfl_cpus_others(&a, &b, 100) == 0, "clamped");
    lfl_cpu_sample c = {.busy = 1001, .total = 5000 + (uint64_t)n, .self_s = 2.0, .valid = true};
    CHECK(lfl_cpus_others(&a, &c, 100) < 0, "10 ms is too short to tell");
    lfl_cpu_sample bad = {0};
    CHECK(lfl_cpus_others(&a, &bad, 100) < 0, "invalid reading");
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* a real reading, and a child spinning on our CPUs counted as ~1 CPU busy */
static void test_real(void)
{
    int n = lfl_cpus_available();
    CHECK(n >= 1 && n <= sysconf(_SC_NPROCESSORS_ONLN), "available %d", n);
    CHECK(strstr(lfl_cpus_describe(), "affinity") != NULL, "describe: %s", lfl_cpus_describe());
    lfl_cpu_sample a, b;
    lfl_cpus_sample(&a);
    CHECK(a.valid && a.total > 0 && a.busy <= a.total, "sample of /proc/stat");
    pid_t pid = fork();
    if (pid == 0) {
        volatile unsigned long x = 0;
        for (;;) x++;
    }
    double t0 = now();
    while (now() - t0 < 1.0) usleep(20000); /* we stay nearly idle */
    lfl_cpus_sample(&b);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    double o = lfl_cpus_others(&a, &b, sysconf(_SC_CLK_TCK));
    /* the child holds one CPU; other load on a shared machine only adds */
    CHECK(o >= 0.8 && o <= n + 0.2, "a busy child measured as %.2f CPUs", o);
    if (n >= 2) CHECK(lfl_cpus_pick(n, o) <= n - 1, "pick %d of %d with %.2f busy", lfl_cpus_pick(n, o), n, o);
}

int main(void)
{
    test_quota();
    test_stat_line();
    test_pick();
    test_others();
    test_real();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
