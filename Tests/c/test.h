/*
 * test.h — the tiny harness of Pier's C tests (no external framework).
 *
 * CHECK(cond)            records a failure (file:line and the expression) and goes on.
 * REQUIRE(cond)          records a failure and returns from the current test function.
 * CHECK_RC(expr, code)   checks a Pier status code; on a mismatch prints both code names
 *                        and pier_errmsg().
 * CHECK_STR(a, b)        string equality (NULL-safe).
 * CHECK_CONTAINS(h, n)   h contains n (NULL-safe).
 *
 * Each test executable lists its tests in a `pier_test tests[]` array and calls
 * run_tests(); a test name given on the command line runs that test only. The exit
 * status is 1 if any check failed, so CTest sees the failure.
 *
 * Tests that fail because of a known library bug are marked with a comment
 * starting "LIBRARY BUG" (grep for it); they assert the documented behaviour and stay on.
 */
#ifndef PIER_TEST_H
#define PIER_TEST_H

#include "pier.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

extern int t_failures;      /* failed checks in the whole run */
extern const char *t_current; /* the running test's name */

void t_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) t_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);            \
    } while (0)

#define REQUIRE(cond)                                                            \
    do {                                                                         \
        if (!(cond)) {                                                           \
            t_fail(__FILE__, __LINE__, "REQUIRE(%s)", #cond);                   \
            return;                                                              \
        }                                                                        \
    } while (0)

#define CHECK_RC(expr, expected)                                                 \
    do {                                                                         \
        int t_rc_ = (expr);                                                      \
        int t_ex_ = (expected);                                                  \
        if (t_rc_ != t_ex_)                                                      \
            t_fail(__FILE__, __LINE__, "%s returned %s (%d), expected %s (%d); pier_errmsg: %s", \
                   #expr, pier_errname(t_rc_), t_rc_, pier_errname(t_ex_), t_ex_, pier_errmsg()); \
    } while (0)

/* Like CHECK_RC, but returns from the test on a mismatch. */
#define REQUIRE_RC(expr, expected)                                               \
    do {                                                                         \
        int t_rc_ = (expr);                                                      \
        int t_ex_ = (expected);                                                  \
        if (t_rc_ != t_ex_) {                                                    \
            t_fail(__FILE__, __LINE__, "%s returned %s (%d), expected %s (%d); pier_errmsg: %s", \
                   #expr, pier_errname(t_rc_), t_rc_, pier_errname(t_ex_), t_ex_, pier_errmsg()); \
            return;                                                              \
        }                                                                        \
    } while (0)

#define CHECK_STR(actual, expected)                                              \
    do {                                                                         \
        const char *t_a_ = (actual);                                             \
        const char *t_e_ = (expected);                                           \
        if (!t_a_ || !t_e_ || strcmp(t_a_, t_e_) != 0)                           \
            t_fail(__FILE__, __LINE__, "%s is \"%s\", expected \"%s\"", #actual, \
                   t_a_ ? t_a_ : "(null)", t_e_ ? t_e_ : "(null)");              \
    } while (0)

#define CHECK_CONTAINS(haystack, needle)                                         \
    do {                                                                         \
        const char *t_h_ = (haystack);                                           \
        const char *t_n_ = (needle);                                             \
        if (!t_h_ || !t_n_ || !strstr(t_h_, t_n_))                               \
            t_fail(__FILE__, __LINE__, "%s is \"%s\", expected it to contain \"%s\"", #haystack, \
                   t_h_ ? t_h_ : "(null)", t_n_ ? t_n_ : "(null)");              \
    } while (0)

/* An error message is present: not NULL, not empty, not the "no error" text. */
#define CHECK_ERRMSG()                                                           \
    do {                                                                         \
        const char *t_m_ = pier_errmsg();                                        \
        if (!t_m_ || !*t_m_ || strcmp(t_m_, "not an error") == 0)                \
            t_fail(__FILE__, __LINE__, "expected a failure message, got \"%s\"", t_m_ ? t_m_ : "(null)"); \
    } while (0)

/* A value no Pier call returns, to see that out-pointers are really written. */
#define T_SENTINEL ((void *)0x5a5a5a5a)

/* An out-pointer is NULL after a failed call. If it is not, the failure is reported and
 * whatever came back is freed, so a library bug does not also show up as a leak in the
 * memcheck run. */
#define CHECK_NULL_OUT(p)                                                        \
    do {                                                                         \
        if ((p) != NULL) {                                                       \
            t_fail(__FILE__, __LINE__, "%s is not NULL after the call", #p);     \
            if ((void *)(p) != T_SENTINEL && (void *)(p) != (void *)0x1) pier_free((void *)(p)); \
            (p) = NULL;                                                          \
        }                                                                        \
    } while (0)

/* The same for a pier_db ** out-parameter of pier_db_open. */
#define CHECK_NULL_DB(p)                                                         \
    do {                                                                         \
        if ((p) != NULL) {                                                       \
            t_fail(__FILE__, __LINE__, "%s is not NULL after the call", #p);     \
            if ((void *)(p) != T_SENTINEL && (void *)(p) != (void *)0x1) pier_db_free(p); \
            (p) = NULL;                                                          \
        }                                                                        \
    } while (0)

typedef struct pier_test {
    const char *name;
    void (*run)(void);
} pier_test;

/* Runs the tests (or the one named in argv[1]); returns the process exit status. */
int run_tests(const pier_test *tests, size_t count, int argc, char **argv);
#define RUN_TESTS(tests) run_tests((tests), sizeof(tests) / sizeof((tests)[0]), argc, argv)

/* ---- Scratch files ----------------------------------------------------------- */

/* A fresh directory for the current executable, removed at exit (set PIER_TEST_KEEP=1
 * to keep it). */
const char *t_dir(void);
/* A new path "<t_dir>/<name>-<n>.pier" that does not exist yet. Static buffer rotation:
 * the result stays valid for the next 7 calls. */
const char *t_path(const char *name);
/* Opens a fresh store at t_path(name) with default options; NULL (and a failure) if it
 * cannot. */
pier_db *t_open(const char *name);
/* Opens a sync server on a fresh file named after name, with config_json (NULL: defaults);
 * a failure fails the test and returns NULL. */
pier_server *t_open_server(const char *name, const char *config_json);
/* pier_db_put of a NUL-terminated JSON body. */
int t_put(pier_db *db, const char *collection, const char *id, const char *json);
/* pier_db_count, or -1 if it fails. */
int64_t t_count(pier_db *db, const char *collection);

/* Reads a whole file into malloc'd memory; returns NULL if it cannot. */
unsigned char *t_read_file(const char *path, size_t *out_len);
/* Writes bytes to a file (created or truncated); returns 0 on success. */
int t_write_file(const char *path, const void *bytes, size_t len);
int t_file_exists(const char *path);

/* ---- JSON inspection (through SQLite's JSON functions) ------------------------ */

/* 1 if text is valid JSON. */
int t_json_valid(const char *json);
/* The SQL json_type() of a path in json ("object", "integer", "text", "true", "null",
 * ...), or "" when the path is missing; static buffer. */
const char *t_json_type(const char *json, const char *path);
/* json_extract(json, path) rendered as text (objects/arrays as compact JSON, NULL as
 * "(null)"); static buffer. */
const char *t_json_text(const char *json, const char *path);
/* json_extract(json, path) as an integer (0 when missing). */
int64_t t_json_int(const char *json, const char *path);
/* Evaluates one SQL expression over ?1 = json (for anything else), returns it as text. */
const char *t_json_eval(const char *sql, const char *json);

/* Repeats a character n times into a static buffer (n < 4096). */
const char *t_repeat(char c, size_t n);

/* Frees the harness's own resources (called by run_tests at exit). */
void t_cleanup(void);

#endif
