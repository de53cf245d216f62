/* test_support.c — the harness behind test.h. */
#define _GNU_SOURCE
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

int t_failures = 0;
const char *t_current = "(setup)";
static int current_failed = 0;

void t_fail(const char *file, int line, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    fprintf(stderr, "%s:%d: [%s] ", file, line, t_current);
    vfprintf(stderr, fmt, args);
    fputc('\n', stderr);
    va_end(args);
    fflush(stderr);
    t_failures++;
    current_failed = 1;
}

/* ---- Scratch files ----------------------------------------------------------- */

static char scratch[4096];

static void remove_tree(const char *path) {
    DIR *dir = opendir(path);
    if (!dir) return;
    struct dirent *entry;
    char child[4096];
    while ((entry = readdir(dir)) != NULL) {
        if (!strcmp(entry->d_name, ".") || !strcmp(entry->d_name, "..")) continue;
        snprintf(child, sizeof child, "%s/%s", path, entry->d_name);
        struct stat st;
        if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode)) remove_tree(child);
        else unlink(child);
    }
    closedir(dir);
    rmdir(path);
}

const char *t_dir(void) {
    if (scratch[0]) return scratch;
    const char *base = getenv("PIER_TEST_TMPDIR");
    if (!base || !*base) base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    snprintf(scratch, sizeof scratch, "%s/pier-ctest-XXXXXX", base);
    if (!mkdtemp(scratch)) {
        fprintf(stderr, "cannot create a scratch directory under %s: %s\n", base, strerror(errno));
        exit(2);
    }
    return scratch;
}

const char *t_path(const char *name) {
    static char paths[8][4200];
    static int next = 0;
    static int serial = 0;
    char *out = paths[next];
    next = (next + 1) % 8;
    snprintf(out, sizeof paths[0], "%s/%s-%d.pier", t_dir(), name, ++serial);
    return out;
}

pier_db *t_open(const char *name) {
    pier_db *db = NULL;
    int rc = pier_db_open(&db, t_path(name), NULL);
    if (rc != PIER_OK) {
        t_fail(__FILE__, __LINE__, "pier_db_open failed: %s: %s", pier_errname(rc), pier_errmsg());
        return NULL;
    }
    return db;
}

pier_server *t_open_server(const char *name, const char *config_json) {
    pier_server *server = NULL;
    int rc = pier_server_open(&server, t_path(name), config_json);
    if (rc != PIER_OK) t_fail(__FILE__, __LINE__, "pier_server_open: %s: %s", pier_errname(rc), pier_errmsg());
    return server;
}

int t_put(pier_db *db, const char *collection, const char *id, const char *json) {
    return pier_db_put(db, collection, id, json, strlen(json));
}

int64_t t_count(pier_db *db, const char *collection) {
    int64_t n = -1;
    if (pier_db_count(db, &n, collection) != PIER_OK) return -1;
    return n;
}

unsigned char *t_read_file(const char *path, size_t *out_len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    unsigned char *data = malloc(cap);
    size_t n;
    while (data && (n = fread(data + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            unsigned char *bigger = realloc(data, cap *= 2);
            if (!bigger) { free(data); data = NULL; }
            else data = bigger;
        }
    }
    fclose(f);
    if (out_len) *out_len = len;
    return data;
}

int t_write_file(const char *path, const void *bytes, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t written = fwrite(bytes, 1, len, f);
    return (fclose(f) == 0 && written == len) ? 0 : -1;
}

int t_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- JSON inspection ------------------------------------------------------------ */

static sqlite3 *json_db;

static sqlite3_stmt *json_stmt(const char *sql) {
    if (!json_db && sqlite3_open(":memory:", &json_db) != SQLITE_OK) {
        fprintf(stderr, "cannot open an in-memory SQLite database\n");
        exit(2);
    }
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(json_db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        fprintf(stderr, "harness SQL does not compile: %s: %s\n", sql, sqlite3_errmsg(json_db));
        exit(2);
    }
    return stmt;
}

int t_json_valid(const char *json) {
    if (!json) return 0;
    sqlite3_stmt *stmt = json_stmt("SELECT json_valid(?1)");
    sqlite3_bind_text(stmt, 1, json, -1, SQLITE_TRANSIENT);
    int valid = sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_int(stmt, 0) == 1;
    sqlite3_finalize(stmt);
    return valid;
}

static const char *eval2(const char *sql, const char *json, const char *path) {
    static char results[8][8192];
    static int next = 0;
    char *out = results[next];
    next = (next + 1) % 8;
    out[0] = 0;
    if (!json) return strcpy(out, "(no json)");
    sqlite3_stmt *stmt = json_stmt(sql);
    sqlite3_bind_text(stmt, 1, json, -1, SQLITE_TRANSIENT);
    if (path) sqlite3_bind_text(stmt, 2, path, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        const unsigned char *text = sqlite3_column_text(stmt, 0);
        snprintf(out, sizeof results[0], "%s", text ? (const char *)text : "(null)");
    } else {
        snprintf(out, sizeof results[0], "(error: %s)", sqlite3_errmsg(json_db));
    }
    sqlite3_finalize(stmt);
    return out;
}

const char *t_json_type(const char *json, const char *path) {
    const char *type = eval2("SELECT coalesce(json_type(?1, ?2), '')", json, path);
    return type;
}

const char *t_json_text(const char *json, const char *path) {
    return eval2("SELECT CASE json_type(?1, ?2) WHEN 'object' THEN json(json_extract(?1, ?2)) "
                 "WHEN 'array' THEN json(json_extract(?1, ?2)) ELSE json_extract(?1, ?2) END",
                 json, path);
}

int64_t t_json_int(const char *json, const char *path) {
    return strtoll(eval2("SELECT coalesce(json_extract(?1, ?2), 0)", json, path), NULL, 10);
}

const char *t_json_eval(const char *sql, const char *json) {
    return eval2(sql, json, NULL);
}

const char *t_repeat(char c, size_t n) {
    static char buffers[4][4096];
    static int next = 0;
    char *out = buffers[next];
    next = (next + 1) % 4;
    if (n >= sizeof buffers[0]) n = sizeof buffers[0] - 1;
    memset(out, c, n);
    out[n] = 0;
    return out;
}

void t_cleanup(void) {
    if (json_db) {
        sqlite3_close(json_db);
        json_db = NULL;
    }
    if (scratch[0]) {
        const char *keep = getenv("PIER_TEST_KEEP");
        if (keep && *keep && strcmp(keep, "0") != 0) fprintf(stderr, "kept scratch directory %s\n", scratch);
        else remove_tree(scratch);
        scratch[0] = 0;
    }
}

int run_tests(const pier_test *tests, size_t count, int argc, char **argv) {
    const char *only = argc > 1 ? argv[1] : NULL;
    int ran = 0, failed = 0;
    for (size_t i = 0; i < count; i++) {
        if (only && strcmp(only, tests[i].name) != 0) continue;
        t_current = tests[i].name;
        current_failed = 0;
        tests[i].run();
        ran++;
        if (current_failed) failed++;
        printf("%s %s\n", current_failed ? "FAIL" : "ok  ", tests[i].name);
        fflush(stdout);
    }
    t_current = "(teardown)";
    t_cleanup();
    if (only && ran == 0) {
        fprintf(stderr, "no test named %s\n", only);
        return 2;
    }
    printf("%d of %d tests passed (%d failed checks)\n", ran - failed, ran, t_failures);
    return t_failures ? 1 : 0;
}
