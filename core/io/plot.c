/* PNG line plots with cairo: axes with "nice" ticks, labels, a legend. */
#define _GNU_SOURCE
#include <cairo.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "plot.h"

/* 1, 2 or 5 times a power of ten, giving about `want` intervals over span */
static double nice_step(double span, int want)
{
    double raw = span / want, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

/* A span with no room for distinct ticks at its magnitude (one point, or a
 * raw and a smoothed loss 1 ulp apart) is drawn as flat, one unit either side:
 * a step below the values' ulp would never advance the tick loop. */
static void widen_flat(double *lo, double *hi)
{
    double mag = fmax(fabs(*lo), fabs(*hi));
    if (*hi - *lo > mag * 1e-9) return;
    double mid = *lo / 2 + *hi / 2;
    *lo = mid - 1;
    *hi = mid + 1;
}

lfl_status lfl_plot_png(const char *path, const char *title, const char *xlabel, const char *ylabel,
                        int nseries, const lfl_plot_series *series, int width, int height)
{
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int s = 0; s < nseries; s++)
        for (int i = 0; i < series[s].n; i++) {
            double x = series[s].x[i], y = series[s].y[i];
            if (!isfinite(x) || !isfinite(y)) continue;
            x0 = fmin(x0, x); x1 = fmax(x1, x); y0 = fmin(y0, y); y1 = fmax(y1, y);
        }
    if (!isfinite(x0)) return lfl_fail(LFL_ERR_ARG, "plot %s: no finite points", path);
    widen_flat(&x0, &x1);
    widen_flat(&y0, &y1);
    double pad = (y1 - y0) * 0.05;
    y0 -= pad; y1 += pad;
    cairo_surface_t *sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
    cairo_t *cr = cairo_create(sf);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    double L = 70, R = width - 20.0, T = 40, B = height - 55.0;
    #define PX(x) (L + ((x) - x0) / (x1 - x0) * (R - L))
    #define PY(y) (B - ((y) - y0) / (y1 - y0) * (B - T))
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, 12);
    /* grid and ticks */
    char buf[64];
    cairo_set_line_width(cr, 1);
    double xs = nice_step(x1 - x0, 6), ys = nice_step(y1 - y0, 6);
    /* ticks counted by an integer (at most ~7 of them), never by adding a step to a double */
    for (double k = ceil(x0 / xs), v = k * xs; v <= x1 + 1e-9 && k < ceil(x0 / xs) + 50; k++, v = k * xs) {
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        cairo_move_to(cr, PX(v), T); cairo_line_to(cr, PX(v), B); cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        snprintf(buf, sizeof buf, "%g", v);
        cairo_text_extents_t e; cairo_text_extents(cr, buf, &e);
        cairo_move_to(cr, PX(v) - e.width / 2, B + 16); cairo_show_text(cr, buf);
    }
    for (double k = ceil(y0 / ys), v = k * ys; v <= y1 + 1e-9 && k < ceil(y0 / ys) + 50; k++, v = k * ys) {
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        cairo_move_to(cr, L, PY(v)); cairo_line_to(cr, R, PY(v)); cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        snprintf(buf, sizeof buf, "%.4g", fabs(v) < ys * 1e-6 ? 0.0 : v); /* no "-0" */
        cairo_text_extents_t e; cairo_text_extents(cr, buf, &e);
        cairo_move_to(cr, L - e.width - 6, PY(v) + 4); cairo_show_text(cr, buf);
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_rectangle(cr, L, T, R - L, B - T); cairo_stroke(cr);
    /* series */
    for (int s = 0; s < nseries; s++) {
        const lfl_plot_series *se = &series[s];
        cairo_set_source_rgba(cr, se->rgb[0], se->rgb[1], se->rgb[2], se->alpha > 0 ? se->alpha : 1);
        cairo_set_line_width(cr, se->width > 0 ? se->width : 1.5);
        bool pen = false;
        for (int i = 0; i < se->n; i++) {
            if (!isfinite(se->y[i])) { pen = false; continue; }
            if (pen) cairo_line_to(cr, PX(se->x[i]), PY(se->y[i]));
            else cairo_move_to(cr, PX(se->x[i]), PY(se->y[i]));
            pen = true;
        }
        if (se->n == 1) cairo_arc(cr, PX(se->x[0]), PY(se->y[0]), 3, 0, 2 * M_PI);
        cairo_stroke(cr);
    }
    /* legend */
    double ly = T + 14;
    for (int s = 0; s < nseries; s++) {
        if (!series[s].label) continue;
        cairo_set_source_rgb(cr, series[s].rgb[0], series[s].rgb[1], series[s].rgb[2]);
        cairo_set_line_width(cr, 2);
        cairo_move_to(cr, R - 130, ly - 4); cairo_line_to(cr, R - 110, ly - 4); cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        cairo_move_to(cr, R - 104, ly); cairo_show_text(cr, series[s].label);
        ly += 16;
    }
    /* titles */
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_font_size(cr, 15);
    cairo_text_extents_t e;
    if (title) { cairo_text_extents(cr, title, &e); cairo_move_to(cr, (width - e.width) / 2, 24); cairo_show_text(cr, title); }
    cairo_set_font_size(cr, 13);
    if (xlabel) { cairo_text_extents(cr, xlabel, &e); cairo_move_to(cr, (L + R - e.width) / 2, height - 14); cairo_show_text(cr, xlabel); }
    if (ylabel) {
        cairo_save(cr);
        cairo_text_extents(cr, ylabel, &e);
        cairo_move_to(cr, 18, (T + B + e.width) / 2);
        cairo_rotate(cr, -M_PI / 2);
        cairo_show_text(cr, ylabel);
        cairo_restore(cr);
    }
    cairo_destroy(cr);
    char *tmp = NULL;
    lfl_status st = LFL_OK;
    if (asprintf(&tmp, "%s.tmp.%d", path, (int)getpid()) < 0) tmp = NULL;
    if (!tmp || cairo_surface_write_to_png(sf, tmp) != CAIRO_STATUS_SUCCESS || rename(tmp, path) != 0) {
        st = lfl_fail(LFL_ERR_IO, "plot: cannot write %s", path);
        if (tmp) unlink(tmp);
    }
    free(tmp);
    cairo_surface_destroy(sf);
    return st;
}
