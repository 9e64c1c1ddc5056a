/* Line plots written as PNG (cairo): training and evaluation loss curves. */
#ifndef LFL_PLOT_H
#define LFL_PLOT_H

#include "../status.h"

typedef struct {
    const char *label;     /* legend text, or NULL */
    int n;
    const double *x, *y;
    double rgb[3];
    double width;          /* line width in pixels */
    double alpha;
} lfl_plot_series;

/* Writes a width x height PNG with axes, ticks, title and legend (atomically). */
lfl_status lfl_plot_png(const char *path, const char *title, const char *xlabel, const char *ylabel,
                        int nseries, const lfl_plot_series *series, int width, int height);

#endif
