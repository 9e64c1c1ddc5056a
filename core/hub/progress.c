/* The download progress line: one aggregate bar over all files of a call
 * (files done, bytes, rate), redrawn at most 10 times a second on stderr and
 * only when stderr is a terminal (or progress was asked for). */
#include <string.h>
#include <time.h>
#include "internal.h"

double hub_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void hub_progress_init(hub_progress *p, bool on, const char *label, int files_total)
{
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    p->on = on;
    snprintf(p->label, sizeof p->label, "%s", label);
    p->files_total = files_total;
    p->t0 = hub_now();
}

static void human(double b, char *out, size_t n)
{
    const char *u[] = {"B", "kB", "MB", "GB", "TB"};
    int i = 0;
    while (b >= 1000 && i < 4) { b /= 1000; i++; }
    snprintf(out, n, i ? "%.1f %s" : "%.0f %s", b, u[i]);
}

/* caller holds the mutex */
static void draw(hub_progress *p, bool final)
{
    double now = hub_now();
    if (!final && now - p->last_draw < 0.1) return;
    p->last_draw = now;
    char done[32], total[32], rate[32];
    human((double)p->done, done, sizeof done);
    human((double)p->total, total, sizeof total);
    double dt = now - p->t0;
    human(dt > 0 ? (double)(p->done - p->done_at_t0) / dt : 0, rate, sizeof rate);
    int width = 24, fill = p->total > 0 ? (int)((double)width * (double)p->done / (double)p->total) : 0;
    if (fill > width) fill = width;
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    double pct = p->total > 0 ? 100.0 * (double)p->done / (double)p->total : (final ? 100.0 : 0.0);
    fprintf(stderr, "\r\033[K%s: %d/%d files [%s] %3.0f%% %s/%s %s/s", p->label, p->files_done,
            p->files_total, bar, pct, done, total, rate);
    if (final) fputc('\n', stderr);
    fflush(stderr);
    p->drawn = true;
}

void hub_progress_add_total(hub_progress *p, int64_t bytes, int64_t already)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    if (bytes > 0 && !p->preset) p->total += bytes;
    p->done += already;
    p->done_at_t0 += already;
    if (p->on) draw(p, false);
    pthread_mutex_unlock(&p->mu);
}

void hub_progress_add(hub_progress *p, int64_t delta)
{
    if (!p || !delta) return;
    pthread_mutex_lock(&p->mu);
    p->done += delta;
    if (p->on) draw(p, false);
    pthread_mutex_unlock(&p->mu);
}

void hub_progress_skip(hub_progress *p, int64_t bytes)
{
    if (!p || !p->preset || bytes <= 0) return;
    pthread_mutex_lock(&p->mu);
    p->done += bytes;
    p->done_at_t0 += bytes;
    pthread_mutex_unlock(&p->mu);
}

void hub_progress_file_done(hub_progress *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->files_done++;
    if (p->on) draw(p, false);
    pthread_mutex_unlock(&p->mu);
}

void hub_progress_finish(hub_progress *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    if (p->on && p->drawn) draw(p, true);
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_destroy(&p->mu);
}
