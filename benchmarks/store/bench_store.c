/*
 * bench_store.c — libpier's local store against the raw sqlite3 C API.
 *
 * One process, the same rows for both sides: N = 100,000 and 1,000,000 records (10,000
 * with --quick) of ~200-byte JSON object bodies made by a seeded PRNG, with UUIDv7 ids
 * from pier_uuid7 made up front. Both sides link the same libsqlite3 and use the pragmas
 * Pier sets (journal_mode=WAL, synchronous=NORMAL, temp_store=MEMORY, cache_size=-16384).
 *
 * Timed, Pier vs raw:
 *   a) bulk put of N records in one transaction (fresh database files every run);
 *   b) one put per transaction, new records into the filled store;
 *   c) point get by id of random existing records, copying the body out;
 *   d) a query on a JSON field (city), without and then with an expression index.
 *
 * Every timed section runs several times, Pier and raw interleaved, and the best run
 * (highest operations per second) is reported. The program checks correctness (counts
 * after the bulk put, bodies read back, query rows equal on both sides) and exits with
 * status 1 if a check fails; it never fails because of a timing. The report is Markdown
 * on stdout; progress goes to stderr. See benchmarks/run-store.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "pier.h"

#define BENCH_NAME "bench_store"
#include "../bench_util.h"

#define COLLECTION "customers"
#define QUERY_CITY "Oslo"
#define PIER_QUERY_SQL \
    "SELECT id, body FROM records WHERE collection='" COLLECTION "' AND json_extract(body,'$.city') = ?1"
#define RAW_QUERY_SQL "SELECT id, body FROM records WHERE json_extract(body,'$.city') = ?1"
#define RAW_INDEX_SQL "CREATE INDEX records_city ON records(json_extract(body,'$.city'))"
#define PRAGMAS \
    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-16384;"

/* Targets from issue 2, point 9 (Pier rate / raw rate). */
#define TARGET_BULK 0.85
#define TARGET_SINGLE 0.90
#define TARGET_GET 0.80
#define TARGET_SIZE_BYTES (20.0 * 1000 * 1000)

/* ------------------------------------------------------------------------------------ */
/* Helpers                                                                              */
/* ------------------------------------------------------------------------------------ */

static double start_time;

static void progress(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[%7.1fs] ", now_s() - start_time);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

static void check_pier(int rc, const char *what) {
    if (rc != PIER_OK) die("%s: %s (%s)", what, pier_errname(rc), pier_errmsg());
}

static void check_sqlite(sqlite3 *db, int rc, int expected, const char *what) {
    if (rc != expected) die("%s: sqlite rc=%d: %s", what, rc, sqlite3_errmsg(db));
}

static void raw_exec(sqlite3 *db, const char *sql) {
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) die("raw: %s: %s", sql, err ? err : "?");
}

static void *xmalloc(size_t n) {
    void *p = malloc(n);
    if (!p) die("out of memory (%zu bytes)", n);
    return p;
}

/* splitmix64: small, fast, and deterministic for a given seed. */
static uint64_t rng_state;
static uint64_t rng_next(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static uint32_t rng_below(uint32_t n) { return (uint32_t)(rng_next() % n); }

/* Formats with thousands separators into one of a few rotating static buffers. */
static const char *fmt_int(double value) {
    static char bufs[16][32];
    static int next;
    char *out = bufs[next++ % 16];
    char digits[32];
    snprintf(digits, sizeof digits, "%.0f", value);
    int len = (int)strlen(digits), o = 0;
    for (int i = 0; i < len; i++) {
        out[o++] = digits[i];
        if (digits[i] != '-' && (len - i - 1) % 3 == 0 && i != len - 1) out[o++] = ',';
    }
    out[o] = 0;
    return out;
}

static const char *fmt_rate(double value) {
    static char bufs[16][32];
    static int next;
    char *out = bufs[next++ % 16];
    if (value >= 100) snprintf(out, 32, "%s", fmt_int(value));
    else if (value >= 10) snprintf(out, 32, "%.1f", value);
    else snprintf(out, 32, "%.2f", value);
    return out;
}

/* ------------------------------------------------------------------------------------ */
/* Data                                                                                 */
/* ------------------------------------------------------------------------------------ */

static const char *const cities[] = {
    "Oslo", "Bergen", "Trondheim", "Stavanger", "Tromso", "Stockholm", "Gothenburg", "Malmo",
    "Uppsala", "Copenhagen", "Aarhus", "Odense", "Helsinki", "Espoo", "Tampere", "Reykjavik",
    "Berlin", "Hamburg", "Munich", "Cologne", "Frankfurt", "Vienna", "Zurich", "Geneva",
    "Amsterdam", "Rotterdam", "Brussels", "Antwerp", "Paris", "Lyon", "Marseille", "Toulouse",
    "Madrid", "Barcelona", "Valencia", "Lisbon", "Porto", "Rome", "Milan", "Naples",
    "Turin", "Warsaw", "Krakow", "Prague", "Budapest", "Dublin", "London", "Manchester",
    "Edinburgh", "Tallinn",
};
#define CITY_COUNT (sizeof cities / sizeof cities[0])
#define QUERY_CITY_INDEX 0

static const char *const first_names[] = {
    "Astrid", "Ola", "Ingrid", "Lars", "Sofia", "Erik", "Maja", "Johan", "Elsa", "Nils",
    "Freya", "Anders", "Linnea", "Henrik", "Ida", "Magnus", "Emma", "Oskar", "Sara", "Jonas",
    "Clara", "Lukas", "Marta", "Tomas", "Alva", "Mikkel", "Nora", "Felix", "Hanna", "Emil",
};
static const char *const last_names[] = {
    "Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Pedersen", "Nilsson", "Karlsson",
    "Eriksson", "Lindqvist", "Virtanen", "Korhonen", "Jensen", "Nielsen", "Schmidt", "Muller",
    "Dubois", "Moreau", "Garcia", "Rossi", "Novak", "Kowalski", "Horvath", "Murphy",
    "Smith", "Berg", "Dahl", "Strand", "Holm", "Lund",
};
#define NAMES(a) (sizeof a / sizeof a[0])

typedef struct {
    size_t n;           /* records */
    char *ids;          /* n_ids * PIER_UUID_BUFFER_SIZE */
    size_t n_ids;       /* n plus the extra ids for single puts */
    char *body_text;    /* all bodies back to back, each NUL-terminated */
    size_t *body_off;   /* n offsets */
    size_t *body_len;   /* n lengths */
    unsigned char *city;/* n city indexes */
    size_t body_bytes;  /* total body bytes */
} dataset;

static const char *id_at(const dataset *d, size_t i) { return d->ids + i * PIER_UUID_BUFFER_SIZE; }
static const char *body_at(const dataset *d, size_t i) { return d->body_text + d->body_off[i]; }

static void make_dataset(dataset *d, size_t n, size_t extra_ids) {
    d->n = n;
    d->n_ids = n + extra_ids;
    d->ids = xmalloc(d->n_ids * PIER_UUID_BUFFER_SIZE);
    for (size_t i = 0; i < d->n_ids; i++) check_pier(pier_uuid7(d->ids + i * PIER_UUID_BUFFER_SIZE), "pier_uuid7");
    for (size_t i = 1; i < d->n_ids; i++)
        if (strcmp(id_at(d, i - 1), id_at(d, i)) >= 0) die("pier_uuid7 ids are not increasing at %zu", i);

    size_t cap = n * 256 + 1;
    d->body_text = xmalloc(cap);
    d->body_off = xmalloc(n * sizeof(size_t));
    d->body_len = xmalloc(n * sizeof(size_t));
    d->city = xmalloc(n);
    d->body_bytes = 0;
    rng_state = 0x5049455242454e43ULL; /* "PIERBENC" */
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        const char *first = first_names[rng_below(NAMES(first_names))];
        const char *last = last_names[rng_below(NAMES(last_names))];
        unsigned city = rng_below(CITY_COUNT);
        char lower_first[32], lower_last[32];
        size_t k;
        for (k = 0; first[k]; k++) lower_first[k] = (char)(first[k] | 0x20);
        lower_first[k] = 0;
        for (k = 0; last[k]; k++) lower_last[k] = (char)(last[k] | 0x20);
        lower_last[k] = 0;
        int len = snprintf(d->body_text + off, cap - off,
            "{\"name\":\"%s %s\",\"email\":\"%s.%s%u@example.com\",\"city\":\"%s\",\"zip\":\"%04u\","
            "\"phone\":\"+47 %03u %02u %03u\",\"age\":%u,\"orders\":%u,\"balance\":%u.%02u,"
            "\"rating\":%u.%u,\"active\":%s,\"since\":%u}",
            first, last, lower_first, lower_last, rng_below(1000), cities[city], rng_below(10000),
            400 + rng_below(600), rng_below(100), rng_below(1000), 18 + rng_below(70), rng_below(500),
            rng_below(100000), rng_below(100), 1 + rng_below(5), rng_below(10),
            rng_below(5) ? "true" : "false", 2000 + rng_below(26));
        if (len < 0 || (size_t)len >= cap - off) die("body buffer too small");
        d->body_off[i] = off;
        d->body_len[i] = (size_t)len;
        d->city[i] = (unsigned char)city;
        d->body_bytes += (size_t)len;
        off += (size_t)len + 1;
    }
}

static void free_dataset(dataset *d) {
    free(d->ids);
    free(d->body_text);
    free(d->body_off);
    free(d->body_len);
    free(d->city);
}

/* ------------------------------------------------------------------------------------ */
/* Files                                                                                */
/* ------------------------------------------------------------------------------------ */

static char workdir[PATH_MAX];

static void remove_db_files(const char *path) {
    char p[PATH_MAX + 80];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-journal", path);
    unlink(p);
}

/* Removes the work directory and whatever is left in it (runs at exit, also after a failed check). */
static void cleanup_workdir(void) {
    if (!workdir[0]) return;
    DIR *dir = opendir(workdir);
    if (dir) {
        struct dirent *entry;
        char p[PATH_MAX + 300];
        while ((entry = readdir(dir)) != NULL) {
            if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
            snprintf(p, sizeof p, "%s/%s", workdir, entry->d_name);
            unlink(p);
        }
        closedir(dir);
    }
    rmdir(workdir);
    workdir[0] = 0;
}

static void db_path(char *out, size_t size, const char *side, size_t n) {
    snprintf(out, size, "%s/%s-%zu.db", workdir, side, n);
}

/* ------------------------------------------------------------------------------------ */
/* The two sides                                                                        */
/* ------------------------------------------------------------------------------------ */

typedef struct {
    sqlite3 *db;
    sqlite3_stmt *insert;      /* bulk: INSERT */
    sqlite3_stmt *upsert;      /* single: INSERT OR REPLACE */
    sqlite3_stmt *begin_imm, *begin, *commit;
    sqlite3_stmt *get;
} raw_store;

static raw_store raw_open(const char *path) {
    raw_store r = {0};
    int rc = sqlite3_open_v2(path, &r.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    check_sqlite(r.db, rc, SQLITE_OK, "raw: open");
    raw_exec(r.db, PRAGMAS);
    raw_exec(r.db, "CREATE TABLE IF NOT EXISTS records(id TEXT PRIMARY KEY, body TEXT NOT NULL)");
    struct { sqlite3_stmt **stmt; const char *sql; } list[] = {
        {&r.insert, "INSERT INTO records(id, body) VALUES(?1, ?2)"},
        {&r.upsert, "INSERT OR REPLACE INTO records(id, body) VALUES(?1, ?2)"},
        {&r.begin_imm, "BEGIN IMMEDIATE"},
        {&r.begin, "BEGIN"},
        {&r.commit, "COMMIT"},
        {&r.get, "SELECT body FROM records WHERE id = ?1"},
    };
    for (size_t i = 0; i < sizeof list / sizeof list[0]; i++)
        check_sqlite(r.db, sqlite3_prepare_v3(r.db, list[i].sql, -1, SQLITE_PREPARE_PERSISTENT, list[i].stmt, NULL),
                     SQLITE_OK, list[i].sql);
    return r;
}

static void raw_close(raw_store *r) {
    sqlite3_finalize(r->insert);
    sqlite3_finalize(r->upsert);
    sqlite3_finalize(r->begin_imm);
    sqlite3_finalize(r->begin);
    sqlite3_finalize(r->commit);
    sqlite3_finalize(r->get);
    if (sqlite3_close(r->db) != SQLITE_OK) die("raw: close: %s", sqlite3_errmsg(r->db));
    memset(r, 0, sizeof *r);
}

static void raw_step_done(sqlite3 *db, sqlite3_stmt *stmt, const char *what) {
    check_sqlite(db, sqlite3_step(stmt), SQLITE_DONE, what);
    sqlite3_reset(stmt);
}

static int64_t raw_count(raw_store *r) {
    sqlite3_stmt *stmt;
    check_sqlite(r->db, sqlite3_prepare_v2(r->db, "SELECT count(*) FROM records", -1, &stmt, NULL), SQLITE_OK, "raw count");
    check_sqlite(r->db, sqlite3_step(stmt), SQLITE_ROW, "raw count");
    int64_t n = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return n;
}

/* a) bulk put: returns seconds for begin .. commit. */
static double pier_bulk(pier_db **out, const char *path, const dataset *d) {
    remove_db_files(path);
    pier_db *db;
    check_pier(pier_db_open(&db, path, NULL), "pier_db_open");
    double t0 = now_s();
    check_pier(pier_db_begin(db), "pier_db_begin");
    for (size_t i = 0; i < d->n; i++)
        check_pier(pier_db_put(db, COLLECTION, id_at(d, i), body_at(d, i), d->body_len[i]), "pier_db_put (bulk)");
    check_pier(pier_db_commit(db), "pier_db_commit");
    double t = now_s() - t0;
    *out = db;
    return t;
}

static double raw_bulk(raw_store *out, const char *path, const dataset *d) {
    remove_db_files(path);
    raw_store r = raw_open(path);
    double t0 = now_s();
    raw_step_done(r.db, r.begin, "raw BEGIN");
    for (size_t i = 0; i < d->n; i++) {
        sqlite3_bind_text(r.insert, 1, id_at(d, i), 36, SQLITE_STATIC);
        sqlite3_bind_text(r.insert, 2, body_at(d, i), (int)d->body_len[i], SQLITE_STATIC);
        raw_step_done(r.db, r.insert, "raw INSERT (bulk)");
    }
    raw_step_done(r.db, r.commit, "raw COMMIT");
    double t = now_s() - t0;
    *out = r;
    return t;
}

/* b) one put per transaction: ids [first, first + count), bodies reused from the dataset. */
static double pier_singles(pier_db *db, const dataset *d, size_t first, size_t count) {
    double t0 = now_s();
    for (size_t i = 0; i < count; i++) {
        size_t b = (first + i) % d->n;
        check_pier(pier_db_put(db, COLLECTION, id_at(d, first + i), body_at(d, b), d->body_len[b]), "pier_db_put (single)");
    }
    return now_s() - t0;
}

static double raw_singles(raw_store *r, const dataset *d, size_t first, size_t count) {
    double t0 = now_s();
    for (size_t i = 0; i < count; i++) {
        size_t b = (first + i) % d->n;
        raw_step_done(r->db, r->begin_imm, "raw BEGIN IMMEDIATE");
        sqlite3_bind_text(r->upsert, 1, id_at(d, first + i), 36, SQLITE_STATIC);
        sqlite3_bind_text(r->upsert, 2, body_at(d, b), (int)d->body_len[b], SQLITE_STATIC);
        raw_step_done(r->db, r->upsert, "raw INSERT OR REPLACE (single)");
        raw_step_done(r->db, r->commit, "raw COMMIT (single)");
    }
    return now_s() - t0;
}

/* c) point gets: the body is copied out on both sides (Pier hands back an owned buffer). */
static double pier_gets(pier_db *db, const dataset *d, const uint32_t *picks, size_t count, size_t *bytes) {
    size_t total = 0;
    double t0 = now_s();
    for (size_t i = 0; i < count; i++) {
        char *body;
        size_t len;
        check_pier(pier_db_get(db, &body, &len, COLLECTION, id_at(d, picks[i])), "pier_db_get");
        total += len + (unsigned char)body[len / 2];
        pier_free(body);
    }
    double t = now_s() - t0;
    *bytes = total;
    return t;
}

static double raw_gets(raw_store *r, const dataset *d, const uint32_t *picks, size_t count, size_t *bytes) {
    size_t total = 0;
    double t0 = now_s();
    for (size_t i = 0; i < count; i++) {
        sqlite3_bind_text(r->get, 1, id_at(d, picks[i]), 36, SQLITE_STATIC);
        if (sqlite3_step(r->get) != SQLITE_ROW) die("raw get: no row for %s: %s", id_at(d, picks[i]), sqlite3_errmsg(r->db));
        const unsigned char *text = sqlite3_column_text(r->get, 0);
        size_t len = (size_t)sqlite3_column_bytes(r->get, 0);
        char *body = malloc(len + 1);
        if (!body) die("out of memory");
        memcpy(body, text, len);
        body[len] = 0;
        sqlite3_reset(r->get);
        total += len + (unsigned char)body[len / 2];
        free(body);
    }
    double t = now_s() - t0;
    *bytes = total;
    return t;
}

/* d) query. Pier returns [{"id":"...","body":{...}},...]; the raw side builds exactly
 * that text by hand from the rows (ids are UUIDs, so they need no escaping) into a
 * malloc'd buffer that it hands back the same way. Both sides compile the statement on
 * every call, as pier_db_query has to. */
typedef struct { char *text; size_t len; size_t rows; } query_result;

static size_t count_rows(const char *json) {
    size_t rows = 0;
    for (const char *p = json; (p = strstr(p, "{\"id\":\"")) != NULL; p += 7) rows++;
    return rows;
}

static query_result pier_query(pier_db *db) {
    query_result q = {0};
    check_pier(pier_db_query(db, &q.text, &q.len, PIER_QUERY_SQL, "[\"" QUERY_CITY "\"]"), "pier_db_query");
    return q;
}

static void buf_put(query_result *q, size_t *cap, const void *bytes, size_t n) {
    if (q->len + n + 1 > *cap) {
        while (q->len + n + 1 > *cap) *cap *= 2;
        char *grown = realloc(q->text, *cap);
        if (!grown) die("out of memory");
        q->text = grown;
    }
    memcpy(q->text + q->len, bytes, n);
    q->len += n;
}

static query_result raw_query(raw_store *r) {
    query_result q = {0};
    size_t cap = 1024;
    q.text = xmalloc(cap);
    sqlite3_stmt *stmt;
    check_sqlite(r->db, sqlite3_prepare_v2(r->db, RAW_QUERY_SQL, -1, &stmt, NULL), SQLITE_OK, "raw query prepare");
    sqlite3_bind_text(stmt, 1, QUERY_CITY, -1, SQLITE_STATIC);
    buf_put(&q, &cap, "[", 1);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (q.rows++) buf_put(&q, &cap, ",", 1);
        buf_put(&q, &cap, "{\"id\":\"", 7);
        buf_put(&q, &cap, sqlite3_column_text(stmt, 0), (size_t)sqlite3_column_bytes(stmt, 0));
        buf_put(&q, &cap, "\",\"body\":", 9);
        buf_put(&q, &cap, sqlite3_column_text(stmt, 1), (size_t)sqlite3_column_bytes(stmt, 1));
        buf_put(&q, &cap, "}", 1);
    }
    check_sqlite(r->db, rc, SQLITE_DONE, "raw query step");
    sqlite3_finalize(stmt);
    buf_put(&q, &cap, "]", 1);
    q.text[q.len] = 0;
    return q;
}

/* The query plan's detail lines, joined with "; " (shows whether the index is used). */
static void raw_plan(sqlite3 *db, const char *sql, const char *param, char *out, size_t size) {
    char full[512];
    snprintf(full, sizeof full, "EXPLAIN QUERY PLAN %s", sql);
    sqlite3_stmt *stmt;
    out[0] = 0;
    if (sqlite3_prepare_v2(db, full, -1, &stmt, NULL) != SQLITE_OK) {
        snprintf(out, size, "(no plan: %s)", sqlite3_errmsg(db));
        return;
    }
    sqlite3_bind_text(stmt, 1, param, -1, SQLITE_STATIC);
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        size_t used = strlen(out);
        snprintf(out + used, size - used, "%s%s", used ? "; " : "", (const char *)sqlite3_column_text(stmt, 3));
    }
    sqlite3_finalize(stmt);
}

/* The plan of Pier's query, read through a second, read-only sqlite3 connection on the
 * store file: it shows whether the partial index made by pier_db_create_index is used. */
static void pier_plan(const char *path, char *out, size_t size) {
    sqlite3 *db;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        snprintf(out, size, "(no plan: %s)", sqlite3_errmsg(db));
        sqlite3_close(db);
        return;
    }
    raw_plan(db, PIER_QUERY_SQL, QUERY_CITY, out, size);
    sqlite3_close(db);
}

/* ------------------------------------------------------------------------------------ */
/* Results                                                                              */
/* ------------------------------------------------------------------------------------ */

typedef struct {
    double pier, raw;  /* best operations per second */
} pair;

static double ratio(pair p) { return p.raw > 0 ? p.pier / p.raw : 0; }

typedef struct {
    size_t n;
    pair bulk;
    double bulk_pier_s, bulk_raw_s;   /* best seconds for the whole load */
    size_t singles;
    pair single;
    size_t gets;
    pair get;
    size_t rows_scan, rows_index;     /* rows the query returns */
    size_t query_bytes;
    pair query_scan, query_index;
    double index_pier_s, index_raw_s; /* time to build the index (one run) */
    char plan_pier_scan[256], plan_raw_scan[256], plan_pier_index[256], plan_raw_index[256];
    int64_t pier_file_bytes, raw_file_bytes;
} result;

/* The size of a closed store (closing checkpoints the WAL and removes it). */
static int64_t file_bytes(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

typedef struct {
    int reps;           /* runs per timed section; best is reported */
    size_t singles;     /* one-put transactions per run */
    size_t gets;        /* point gets per run */
    double query_time;  /* minimum seconds per query run */
} plan;

static void check_query(const query_result *p, const query_result *r, size_t expected, const char *what) {
    size_t prows = count_rows(p->text);
    if (prows != r->rows || prows != expected)
        die("%s: Pier returned %zu rows, raw SQLite %zu, the data holds %zu", what, prows, r->rows, expected);
    if (p->len != r->len || memcmp(p->text, r->text, p->len) != 0)
        die("%s: same number of rows (%zu) but the JSON differs (Pier %zu bytes, raw %zu bytes)", what, prows, p->len, r->len);
}

/* Runs queries for at least min_time seconds; returns queries per second. */
static double time_queries(pier_db *pdb, raw_store *r, double min_time, size_t *bytes) {
    size_t count = 0;
    double t0 = now_s(), t;
    do {
        query_result q = pdb ? pier_query(pdb) : raw_query(r);
        *bytes = q.len;
        if (pdb) pier_free(q.text); else free(q.text);
        count++;
        t = now_s() - t0;
    } while (t < min_time);
    return (double)count / t;
}

static void run_size(const dataset *d, const plan *pl, result *res) {
    size_t n = d->n;
    char ppath[PATH_MAX + 64], rpath[PATH_MAX + 64];
    db_path(ppath, sizeof ppath, "pier", n);
    db_path(rpath, sizeof rpath, "raw", n);
    memset(res, 0, sizeof *res);
    res->n = n;

    /* a) bulk put, fresh files every run; the last run's stores are kept for b-d. */
    pier_db *pdb = NULL;
    raw_store raw = {0};
    double best_p = 1e300, best_r = 1e300;
    for (int rep = 0; rep < pl->reps; rep++) {
        for (int side = 0; side < 2; side++) {
            int pier_turn = (side == 0) == (rep % 2 == 0); /* alternate who goes first */
            if (pier_turn) {
                if (pdb) { pier_db_free(pdb); pdb = NULL; }
                double t = pier_bulk(&pdb, ppath, d);
                if (t < best_p) best_p = t;
                progress("N=%s bulk put run %d: pier %.2fs", fmt_int((double)n), rep + 1, t);
            } else {
                if (raw.db) raw_close(&raw);
                double t = raw_bulk(&raw, rpath, d);
                if (t < best_r) best_r = t;
                progress("N=%s bulk put run %d: raw  %.2fs", fmt_int((double)n), rep + 1, t);
            }
        }
    }
    res->bulk_pier_s = best_p;
    res->bulk_raw_s = best_r;
    res->bulk = (pair){(double)n / best_p, (double)n / best_r};

    int64_t pcount = -1;
    check_pier(pier_db_count(pdb, &pcount, COLLECTION), "pier_db_count");
    int64_t rcount = raw_count(&raw);
    if (pcount != (int64_t)n || rcount != (int64_t)n)
        die("after the bulk put of %zu records: pier_db_count says %" PRId64 ", raw count(*) says %" PRId64, n, pcount, rcount);

    /* b) one put per transaction, new records (ids after the N bulk ids). */
    res->singles = pl->singles;
    best_p = best_r = 1e300;
    for (int rep = 0; rep < pl->reps; rep++) {
        size_t first = n + (size_t)rep * pl->singles;
        for (int side = 0; side < 2; side++) {
            int pier_turn = (side == 0) == (rep % 2 == 0);
            double t = pier_turn ? pier_singles(pdb, d, first, pl->singles) : raw_singles(&raw, d, first, pl->singles);
            if (pier_turn) { if (t < best_p) best_p = t; } else if (t < best_r) best_r = t;
            progress("N=%s single puts run %d: %s %.2fs", fmt_int((double)n), rep + 1, pier_turn ? "pier" : "raw ", t);
        }
    }
    res->single = (pair){(double)pl->singles / best_p, (double)pl->singles / best_r};
    size_t total = n + (size_t)pl->reps * pl->singles;
    check_pier(pier_db_count(pdb, &pcount, COLLECTION), "pier_db_count");
    rcount = raw_count(&raw);
    if (pcount != (int64_t)total || rcount != (int64_t)total)
        die("after the single puts: pier_db_count says %" PRId64 ", raw count(*) says %" PRId64 ", expected %zu", pcount, rcount, total);

    /* c) point gets of random existing bulk records; first check the bodies round-trip. */
    res->gets = pl->gets;
    uint32_t *picks = xmalloc(pl->gets * sizeof *picks);
    rng_state = 0x6765747365656421ULL ^ n;
    for (size_t i = 0; i < pl->gets; i++) picks[i] = rng_below((uint32_t)n);
    for (size_t i = 0; i < 1000 && i < pl->gets; i++) {
        size_t k = picks[i];
        char *body;
        size_t len;
        check_pier(pier_db_get(pdb, &body, &len, COLLECTION, id_at(d, k)), "pier_db_get (check)");
        if (len != d->body_len[k] || memcmp(body, body_at(d, k), len) != 0 || body[len] != 0)
            die("pier_db_get of %s returned a different body (%zu bytes, expected %zu)", id_at(d, k), len, d->body_len[k]);
        pier_free(body);
        sqlite3_bind_text(raw.get, 1, id_at(d, k), 36, SQLITE_STATIC);
        if (sqlite3_step(raw.get) != SQLITE_ROW || (size_t)sqlite3_column_bytes(raw.get, 0) != d->body_len[k] ||
            memcmp(sqlite3_column_text(raw.get, 0), body_at(d, k), d->body_len[k]) != 0)
            die("raw get of %s returned a different body", id_at(d, k));
        sqlite3_reset(raw.get);
    }
    size_t pbytes = 0, rbytes = 0;
    best_p = best_r = 1e300;
    for (int rep = 0; rep < pl->reps; rep++) {
        for (int side = 0; side < 2; side++) {
            int pier_turn = (side == 0) == (rep % 2 == 0);
            double t = pier_turn ? pier_gets(pdb, d, picks, pl->gets, &pbytes) : raw_gets(&raw, d, picks, pl->gets, &rbytes);
            if (pier_turn) { if (t < best_p) best_p = t; } else if (t < best_r) best_r = t;
            progress("N=%s point gets run %d: %s %.2fs", fmt_int((double)n), rep + 1, pier_turn ? "pier" : "raw ", t);
        }
        if (pbytes != rbytes) die("point gets: Pier read %zu bytes, raw %zu", pbytes, rbytes);
    }
    res->get = (pair){(double)pl->gets / best_p, (double)pl->gets / best_r};
    free(picks);

    /* d) query on a JSON field, without and with an expression index. */
    size_t expected_rows = 0;
    for (size_t i = 0; i < n; i++) expected_rows += d->city[i] == QUERY_CITY_INDEX;
    for (size_t i = 0; i < (size_t)pl->reps * pl->singles; i++) expected_rows += d->city[(n + i) % n] == QUERY_CITY_INDEX;

    pier_plan(ppath, res->plan_pier_scan, sizeof res->plan_pier_scan);
    raw_plan(raw.db, RAW_QUERY_SQL, QUERY_CITY, res->plan_raw_scan, sizeof res->plan_raw_scan);
    for (int with_index = 0; with_index < 2; with_index++) {
        if (with_index) {
            double t0 = now_s();
            check_pier(pier_db_create_index(pdb, COLLECTION, "city"), "pier_db_create_index");
            res->index_pier_s = now_s() - t0;
            t0 = now_s();
            raw_exec(raw.db, RAW_INDEX_SQL);
            res->index_raw_s = now_s() - t0;
            progress("N=%s index build: pier %.2fs, raw %.2fs", fmt_int((double)n), res->index_pier_s, res->index_raw_s);
            pier_plan(ppath, res->plan_pier_index, sizeof res->plan_pier_index);
            raw_plan(raw.db, RAW_QUERY_SQL, QUERY_CITY, res->plan_raw_index, sizeof res->plan_raw_index);
        }
        query_result pq = pier_query(pdb), rq = raw_query(&raw);
        check_query(&pq, &rq, expected_rows, with_index ? "query with index" : "query without index");
        if (with_index) res->rows_index = rq.rows; else res->rows_scan = rq.rows;
        res->query_bytes = rq.len;
        pier_free(pq.text);
        free(rq.text);
        double best_pq = 0, best_rq = 0;
        size_t bytes;
        for (int rep = 0; rep < pl->reps; rep++) {
            for (int side = 0; side < 2; side++) {
                int pier_turn = (side == 0) == (rep % 2 == 0);
                double qps = time_queries(pier_turn ? pdb : NULL, &raw, pl->query_time, &bytes);
                if (pier_turn) { if (qps > best_pq) best_pq = qps; } else if (qps > best_rq) best_rq = qps;
                progress("N=%s query %s run %d: %s %.1f queries/s", fmt_int((double)n), with_index ? "with index" : "no index",
                         rep + 1, pier_turn ? "pier" : "raw ", qps);
            }
        }
        if (with_index) res->query_index = (pair){best_pq, best_rq};
        else res->query_scan = (pair){best_pq, best_rq};
    }

    pier_db_free(pdb);
    raw_close(&raw);
    res->pier_file_bytes = file_bytes(ppath);
    res->raw_file_bytes = file_bytes(rpath);
    remove_db_files(ppath);
    remove_db_files(rpath);
}

/* ------------------------------------------------------------------------------------ */
/* Library size                                                                         */
/* ------------------------------------------------------------------------------------ */

/* Strips a copy of the loaded libpier (found through dladdr) into the work directory. */
static int stripped_size(char *lib, size_t lib_size, int64_t *unstripped, int64_t *stripped) {
    Dl_info info;
    if (!dladdr((void *)pier_version, &info) || !info.dli_fname) return -1;
    if (!realpath(info.dli_fname, lib)) snprintf(lib, lib_size, "%s", info.dli_fname);
    struct stat st;
    if (stat(lib, &st) != 0) return -1;
    *unstripped = st.st_size;
    char out[PATH_MAX + 32];
    snprintf(out, sizeof out, "%s/libpier-stripped.so", workdir);
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) { dup2(devnull, 1); dup2(devnull, 2); }
        execlp("strip", "strip", "--strip-all", "-o", out, lib, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return -2;
    if (stat(out, &st) != 0) return -2;
    *stripped = st.st_size;
    unlink(out);
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Report                                                                               */
/* ------------------------------------------------------------------------------------ */

static const char *verdict(double value, double target) { return value >= target ? "met" : "**missed**"; }

/* A ratio with two decimals, or three when two would round it onto the other side of its
 * target (0.897 is not shown as 0.90 next to a 0.90 target). */
static const char *fmt_ratio(double value, double target) {
    static char bufs[8][16];
    static int next;
    char *out = bufs[next++ % 8];
    snprintf(out, 16, "%.2f", value);
    if ((atof(out) >= target) != (value >= target)) snprintf(out, 16, "%.3f", value);
    return out;
}

static void cpu_model(char *out, size_t size) {
    snprintf(out, size, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *v = strchr(line, ':');
            if (v) {
                v++;
                while (*v == ' ') v++;
                v[strcspn(v, "\n")] = 0;
                snprintf(out, size, "%s", v);
            }
            break;
        }
    }
    fclose(f);
}

static void usage(FILE *f) {
    fprintf(f,
        "usage: bench_store [--quick] [--dir DIR]\n"
        "  --quick    N = 10,000 only and fewer iterations (a smoke run of a few seconds)\n"
        "  --dir DIR  where the temporary database files go (default $TMPDIR or /tmp)\n"
        "Prints a Markdown report on stdout and progress on stderr; exits 1 if a\n"
        "correctness check fails (never because of a timing).\n");
}

int main(int argc, char **argv) {
    int quick = 0;
    const char *parent = getenv("TMPDIR");
    if (!parent || !*parent) parent = "/tmp";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) quick = 1;
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) parent = argv[++i];
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) { usage(stdout); return 0; }
        else { usage(stderr); return 2; }
    }
    start_time = now_s();
    if (pier_version_number() != PIER_VERSION_NUMBER)
        die("libpier is %s but pier.h is %s; rebuild with scripts/build-lib", pier_version(), PIER_VERSION_STRING);

    snprintf(workdir, sizeof workdir, "%s/pier-bench-store-XXXXXX", parent);
    if (!mkdtemp(workdir)) {
        workdir[0] = 0;
        die("cannot create a directory under %s: %s", parent, strerror(errno));
    }
    atexit(cleanup_workdir);
    progress("databases go to %s (removed at exit)", workdir);

    size_t sizes_full[] = {100000, 1000000}, sizes_quick[] = {10000};
    size_t *sizes = quick ? sizes_quick : sizes_full;
    size_t n_sizes = quick ? 1 : 2;
    plan pl = quick ? (plan){2, 2000, 20000, 0.05} : (plan){3, 20000, 200000, 1.0};
    size_t max_n = sizes[n_sizes - 1];

    progress("generating %s records and %s ids", fmt_int((double)max_n), fmt_int((double)(max_n + pl.reps * pl.singles)));
    dataset d;
    make_dataset(&d, max_n, (size_t)pl.reps * pl.singles);

    result results[2];
    for (size_t s = 0; s < n_sizes; s++) {
        /* A view of the first N records; the single-put ids come right after them. */
        dataset view = d;
        view.n = sizes[s];
        /* The extra ids must follow the N used ids: copy them into place. */
        char *ids = xmalloc((view.n + pl.reps * pl.singles) * PIER_UUID_BUFFER_SIZE);
        memcpy(ids, d.ids, view.n * PIER_UUID_BUFFER_SIZE);
        memcpy(ids + view.n * PIER_UUID_BUFFER_SIZE, d.ids + d.n * PIER_UUID_BUFFER_SIZE,
               (size_t)pl.reps * pl.singles * PIER_UUID_BUFFER_SIZE);
        view.ids = ids;
        view.n_ids = view.n + (size_t)pl.reps * pl.singles;
        view.body_bytes = 0;
        for (size_t i = 0; i < view.n; i++) view.body_bytes += d.body_len[i];
        run_size(&view, &pl, &results[s]);
        free(ids);
    }

    char lib[PATH_MAX];
    int64_t unstripped = 0, stripped = 0;
    int size_rc = stripped_size(lib, sizeof lib, &unstripped, &stripped);
    cleanup_workdir();

    /* ---- Markdown report ---- */
    char cpu[256];
    cpu_model(cpu, sizeof cpu);
    struct utsname un;
    uname(&un);
    time_t wall = time(NULL);
    char date[64];
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&wall));
    double avg_body = (double)d.body_bytes / (double)d.n;
    const char *revision = getenv("PIER_BENCH_REVISION");
    if (!revision || !*revision) revision = "source revision unknown";

    printf("## Local store: libpier against raw SQLite%s\n\n", quick ? " (quick smoke run, not for the record)" : "");
    printf("Measured %s on %s (%ld cores online), Linux %s, by `benchmarks/run-store`%s "
           "(`benchmarks/store/bench_store.c`). Both sides use the same libsqlite3 %s and the pragmas Pier sets "
           "(journal_mode=WAL, synchronous=NORMAL, temp_store=MEMORY, cache_size=-16384); libpier %s (%s). "
           "Records are JSON objects of %.0f bytes on average (11 fields: name, email, city from a list of %zu, zip, phone, "
           "numbers, a boolean) made by a seeded PRNG, with UUIDv7 text ids from `pier_uuid7`, the same rows on both sides. "
           "The raw baseline is the table `records(id TEXT PRIMARY KEY, body TEXT NOT NULL)` with prepared statements. "
           "Every figure is the **best of %d runs** (highest rate), Pier and raw runs interleaved; "
           "write runs start from fresh database files. Rates are operations per second; the ratio is Pier / raw.\n\n",
           date, cpu, sysconf(_SC_NPROCESSORS_ONLN), un.release, quick ? " --quick" : "", sqlite3_libversion(),
           pier_version(), revision, avg_body, CITY_COUNT, pl.reps);

    printf("### Writes\n\n");
    printf("| Operation | Store size | Pier (records/s) | raw SQLite (records/s) | Pier / raw | Target | |\n");
    printf("|---|---:|---:|---:|---:|---:|---|\n");
    for (size_t s = 0; s < n_sizes; s++) {
        result *r = &results[s];
        printf("| bulk put, %s records in one transaction | empty | %s | %s | %s | ≥ %.2f | %s |\n",
               fmt_int((double)r->n), fmt_rate(r->bulk.pier), fmt_rate(r->bulk.raw), fmt_ratio(ratio(r->bulk), TARGET_BULK), TARGET_BULK,
               verdict(ratio(r->bulk), TARGET_BULK));
    }
    for (size_t s = 0; s < n_sizes; s++) {
        result *r = &results[s];
        printf("| one put per transaction, %s new records | %s | %s | %s | %s | ≥ %.2f | %s |\n",
               fmt_int((double)r->singles), fmt_int((double)r->n), fmt_rate(r->single.pier), fmt_rate(r->single.raw),
               fmt_ratio(ratio(r->single), TARGET_SINGLE), TARGET_SINGLE, verdict(ratio(r->single), TARGET_SINGLE));
    }
    result *big = &results[n_sizes - 1];
    printf("\nImporting %s records in one transaction takes %.2f s with Pier against %.2f s with a bare SQLite table, "
           "and an app that saves one record per transaction can do about %s saves a second (raw SQLite: %s); "
           "the difference is what Pier keeps for sync with every record (its metadata columns, the outbox index, "
           "a savepoint per put, the JSON-object check) and the C-to-Swift call.\n\n",
           fmt_int((double)big->n), big->bulk_pier_s, big->bulk_raw_s, fmt_int(big->single.pier), fmt_int(big->single.raw));
    printf("On disk, after closing (WAL checkpointed): ");
    for (size_t s = 0; s < n_sizes; s++) {
        result *r = &results[s];
        printf("%s%s records take %.1f MB in a Pier store and %.1f MB in the raw table", s ? "; " : "",
               fmt_int((double)(r->n + (size_t)pl.reps * r->singles)), r->pier_file_bytes / 1e6, r->raw_file_bytes / 1e6);
    }
    printf("; both include their index on city.\n\n");

    printf("### Point reads\n\n");
    printf("| Operation | Store size | Pier (gets/s) | raw SQLite (gets/s) | Pier / raw | Target | |\n");
    printf("|---|---:|---:|---:|---:|---:|---|\n");
    for (size_t s = 0; s < n_sizes; s++) {
        result *r = &results[s];
        printf("| get by id, %s random existing ids | %s | %s | %s | %s | ≥ %.2f | %s |\n",
               fmt_int((double)r->gets), fmt_int((double)r->n), fmt_rate(r->get.pier), fmt_rate(r->get.raw), fmt_ratio(ratio(r->get), TARGET_GET),
               TARGET_GET, verdict(ratio(r->get), TARGET_GET));
    }
    printf("\nReading one record by id costs %.1f µs with Pier against %.1f µs with a prepared SELECT that copies the body "
           "out (malloc + memcpy + free, as Pier hands the caller an owned buffer), so per-record reads from C are %s.\n\n",
           1e6 / big->get.pier, 1e6 / big->get.raw,
           ratio(big->get) >= TARGET_GET ? "close to raw SQLite speed" : "noticeably slower than raw SQLite");

    printf("### Query on a JSON field\n\n");
    printf("`pier_db_query(db, \"%s\", \"[\\\"%s\\\"]\")` against the same SQL (without the collection test) over the raw "
           "table; the index is `pier_db_create_index(db, \"" COLLECTION "\", \"city\")` against `%s`. "
           "The raw side builds the same JSON text Pier returns (`[{\"id\":...,\"body\":{...}},...]`) by manual "
           "concatenation in C into a malloc'd buffer, and the two outputs are checked to be byte-identical. "
           "Both sides compile the statement on every call.\n\n",
           PIER_QUERY_SQL, QUERY_CITY, RAW_INDEX_SQL);
    printf("| Operation | Store size | Rows returned | Pier | raw SQLite | Pier / raw |\n");
    printf("|---|---:|---:|---:|---:|---:|\n");
    for (size_t s = 0; s < n_sizes; s++) {
        result *r = &results[s];
        size_t store = r->n + (size_t)pl.reps * r->singles;
        printf("| city = '%s', no index (queries/s) | %s | %s | %s | %s | %.2f |\n", QUERY_CITY, fmt_int((double)store),
               fmt_int((double)r->rows_scan), fmt_rate(r->query_scan.pier), fmt_rate(r->query_scan.raw), ratio(r->query_scan));
        printf("| build the expression index (seconds, one run) | %s | | %.2f s | %.2f s | %.2f |\n", fmt_int((double)store),
               r->index_pier_s, r->index_raw_s, r->index_raw_s > 0 ? r->index_raw_s / r->index_pier_s : 0);
        printf("| city = '%s', with index (queries/s) | %s | %s | %s | %s | %.2f |\n", QUERY_CITY, fmt_int((double)store),
               fmt_int((double)r->rows_index), fmt_rate(r->query_index.pier), fmt_rate(r->query_index.raw), ratio(r->query_index));
    }
    printf("\nWith the index a filtered query over %s records answers in %.2f ms with Pier instead of %.0f ms without it, "
           "so apps should create an index for every field they filter on; the index-build ratio is raw time / Pier time, "
           "so above 1 means Pier builds it faster (its index is partial: one collection's live records).\n\n",
           fmt_int((double)(big->n + (size_t)pl.reps * big->singles)), 1e3 / big->query_index.pier, 1e3 / big->query_scan.pier);
    printf("Query plans at N = %s: Pier without index `%s`, with index `%s`; raw without index `%s`, with index `%s`.\n\n",
           fmt_int((double)big->n), big->plan_pier_scan, big->plan_pier_index, big->plan_raw_scan, big->plan_raw_index);

    printf("### Library size\n\n");
    printf("| File | Size | Stripped | Target | |\n|---|---:|---:|---:|---|\n");
    if (size_rc == 0) {
        printf("| `%s` | %.1f MB | %.1f MB (%s bytes) | ≤ 20 MB | %s |\n", lib, unstripped / 1e6, stripped / 1e6,
               fmt_int((double)stripped), verdict(TARGET_SIZE_BYTES - (double)stripped, 0));
        printf("\nShipping Pier adds %.1f MB (stripped, Swift runtime included) to an application.\n\n", stripped / 1e6);
    } else {
        printf("| libpier.so | ? | ? | ≤ 20 MB | not measured (%s) |\n\n", size_rc == -1 ? "library not found" : "strip failed");
    }

    printf("### Targets (issue 2)\n\n");
    printf("| Target | Measured | |\n|---|---|---|\n");
    for (size_t s = 0; s < n_sizes; s++)
        printf("| bulk put ≥ %.2f of raw (N = %s) | %s | %s |\n", TARGET_BULK, fmt_int((double)results[s].n),
               fmt_ratio(ratio(results[s].bulk), TARGET_BULK), verdict(ratio(results[s].bulk), TARGET_BULK));
    for (size_t s = 0; s < n_sizes; s++)
        printf("| one put per transaction ≥ %.2f of raw (N = %s) | %s | %s |\n", TARGET_SINGLE, fmt_int((double)results[s].n),
               fmt_ratio(ratio(results[s].single), TARGET_SINGLE), verdict(ratio(results[s].single), TARGET_SINGLE));
    for (size_t s = 0; s < n_sizes; s++)
        printf("| get by id ≥ %.2f of raw (N = %s) | %s | %s |\n", TARGET_GET, fmt_int((double)results[s].n),
               fmt_ratio(ratio(results[s].get), TARGET_GET), verdict(ratio(results[s].get), TARGET_GET));
    if (size_rc == 0)
        printf("| stripped libpier.so ≤ 20 MB | %.1f MB | %s |\n", stripped / 1e6, verdict(TARGET_SIZE_BYTES - (double)stripped, 0));
    printf("\nA missed target is a finding to act on, not a test failure: timings vary with the machine and its load. "
           "`benchmarks/run-store --ladder` climbs from raw SQLite to `pier_db_put` one step at a time to show where the time goes.%s\n",
           quick ? " This was a --quick run with 10,000 records; run benchmarks/run-store without --quick for the recorded figures." : "");

    progress("done");
    free_dataset(&d);
    return 0;
}
