/*
 * The small helpers every C benchmark program needs (benchmarks/store/bench_store.c,
 * benchmarks/store/ladder_store.c, benchmarks/peers/bench_local.c). Define BENCH_NAME
 * (the program's name, for its error messages) before including this file; include it
 * after <sqlite3.h> and "pier.h".
 */
#ifndef PIER_BENCH_UTIL_H
#define PIER_BENCH_UTIL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Prints "<BENCH_NAME>: FAILED: <message>" and exits 1: a benchmark stops at the first
 * thing that did not work rather than print figures of a broken run. */
static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, BENCH_NAME ": FAILED: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* Seconds on the monotonic clock. */
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
