/*
 * ladder_store.c — where does the time of a Pier write or read go?
 *
 * A diagnostic companion of bench_store.c (not part of the recorded figures). It climbs
 * from the raw SQLite baseline to the full libpier call one step at a time, on the same
 * rows, so that each step's cost is the difference between two neighbouring rungs:
 *
 *   bulk put (N records, one transaction):
 *     B0 raw table records(id TEXT PRIMARY KEY, body TEXT NOT NULL), plain INSERT
 *     B1 Pier's own schema (pier_records, read from a store pier_db_open made), a plain
 *        INSERT of the columns Pier writes
 *     B2 B1 without the CHECK (json_type(body) = 'object') constraint (the same as B1
 *        on stores since schema 2, which dropped the CHECK: Pier checks bodies itself)
 *     B3 B1 without the outbox index pier_records_outbox
 *     B4 B1 without both
 *     B5 Pier's exact upsert statement (INSERT ... ON CONFLICT DO UPDATE), with Pier's
 *        binding style (SQLITE_TRANSIENT copies, sqlite3_clear_bindings after each row)
 *     B6 B5 inside SAVEPOINT pier_write / RELEASE pier_write, as Store.write does inside
 *        a host transaction
 *     B7 pier_db_put (everything: the C entry point, Swift strings, the handle's mutex,
 *        validation, the HLC, then B6)
 *   one put per transaction (into the filled stores):
 *     S0 raw BEGIN IMMEDIATE / INSERT OR REPLACE / COMMIT
 *     S1 Pier's sequence in SQL: BEGIN IMMEDIATE / PRAGMA data_version / upsert / COMMIT
 *     S2 pier_db_put
 *   point get:
 *     G0 raw SELECT body FROM records WHERE id = ?1, body copied out
 *     G1 Pier's SQL: SELECT body FROM pier_records WHERE collection = ?1 AND id = ?2 AND
 *        is_active = 1, Pier's binding style, body copied out
 *     G2 pier_db_get + pier_free
 *   query on a JSON field with an expression index (city = 'Oslo'):
 *     Q0 raw SQL over the raw table with CREATE INDEX ... (json_extract(body,'$.city')),
 *        rows concatenated by hand into the JSON text pier_db_query returns
 *     Q1 Pier's SQL over Pier's schema (the records view, the partial index
 *        pier_db_create_index makes), the same hand concatenation
 *     Q2 pier_db_query (authorizer, JSON parameters, Swift JSONWriter, copy out)
 *
 * The SQL of B5/S1/G1 is copied from Sources/PierStore/Store.swift (Statements.init); if
 * that changes, update it here. Run: benchmarks/run-store --ladder [N].
 *
 * For instruction counts of one rung:
 *   valgrind --tool=callgrind --instr-atstart=no build/bench/ladder_store 20000 --only b7
 * (--only b0..b7, s0..s2, g0..g2, q0..q2: builds what the rung needs, then counts just that rung).
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "pier.h"

#define BENCH_NAME "ladder_store"
#include "../bench_util.h"

/* Callgrind counts only the rung named by --only (the macros do nothing outside valgrind). */
#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#endif
#endif
#ifndef CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_STOP_INSTRUMENTATION
#endif

#define COLLECTION "customers"
#define PRAGMAS \
    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-16384;"
#define REPS 3

/* Statements.upsert in Sources/PierStore/Store.swift (as of 852e692), with Statements.diff
 * expanded; ?8 is 1 for a collection tracked for sync (the default). */
static const char *const pier_upsert_sql =
    "INSERT INTO pier_records(collection, id, body, scope, is_modified, is_active, hlc, local_seq, sync_state)\n"
    "VALUES (?1, ?2, ?3, ?4, ?8, 1, ?5, ?6, ?8)\n"
    "ON CONFLICT(collection, id) DO UPDATE SET\n"
    "    body = excluded.body,\n"
    "    scope = coalesce(?7, scope),\n"
    "    is_modified = ?8, is_active = 1,\n"
    "    hlc = excluded.hlc, local_seq = excluded.local_seq,\n"
    "    sync_state = CASE WHEN ?8 = 0 THEN 0 WHEN sync_state = 2 THEN 2 ELSE 1 END,\n"
    "    server_body = CASE WHEN is_from_server THEN coalesce(server_body, body) END,\n"
    "    changed_fields = CASE WHEN is_from_server THEN (SELECT json_group_array(k) FROM (\n"
    "        SELECT coalesce(n.key, s.key) AS k FROM json_each(excluded.body) AS n\n"
    "        FULL JOIN json_each(coalesce(pier_records.server_body, pier_records.body)) AS s ON n.key = s.key\n"
    "        WHERE n.key IS NULL OR s.key IS NULL OR n.type IS NOT s.type OR n.value IS NOT s.value\n"
    "        ORDER BY k)) END";
static const char *const pier_plain_insert_sql =
    "INSERT INTO pier_records(collection, id, body, scope, is_modified, is_active, hlc, local_seq, sync_state)\n"
    "VALUES (?1, ?2, ?3, ?4, 1, 1, ?5, ?6, 1)";
/* What pier_db_create_index(db, "customers", "city") runs (Store.createIndex). */
static const char *const pier_index_sql =
    "CREATE INDEX IF NOT EXISTS pier_idx_bench ON pier_records(json_extract(body, '$.city')) "
    "WHERE collection = 'customers' AND is_active = 1";
static const char *const pier_query_sql =
    "SELECT id, body FROM records WHERE collection='customers' AND json_extract(body,'$.city') = ?1";
static const char *const raw_query_sql = "SELECT id, body FROM records WHERE json_extract(body,'$.city') = ?1";
static const char *const pier_get_sql =
    "SELECT body FROM pier_records WHERE collection = ?1 AND id = ?2 AND is_active = 1";

static void ck(sqlite3 *db, int rc, int want, const char *what) {
    if (rc != want) die("%s: rc=%d %s", what, rc, sqlite3_errmsg(db));
}
static void ckp(int rc, const char *what) {
    if (rc != PIER_OK) die("%s: %s (%s)", what, pier_errname(rc), pier_errmsg());
}
static void exec(sqlite3 *db, const char *sql) {
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) die("%s: %s", sql, err);
}
static sqlite3_stmt *prep(sqlite3 *db, const char *sql) {
    sqlite3_stmt *s;
    ck(db, sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL), SQLITE_OK, sql);
    return s;
}
static void done(sqlite3 *db, sqlite3_stmt *s, const char *what) {
    ck(db, sqlite3_step(s), SQLITE_DONE, what);
    sqlite3_reset(s);
}

/* ---- data: the same generator shape as bench_store.c (~200-byte objects) ---- */
static uint64_t rng_state = 0x5049455242454e43ULL;
static uint64_t rng(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static size_t n, extra;
static char *ids;
static char **bodies;
static size_t *lens;
static const char *id_at(size_t i) { return ids + i * PIER_UUID_BUFFER_SIZE; }

static void make_data(void) {
    static const char *cities[] = {"Oslo", "Bergen", "Stockholm", "Copenhagen", "Helsinki", "Berlin", "Paris", "Madrid"};
    ids = malloc((n + extra) * PIER_UUID_BUFFER_SIZE);
    bodies = malloc(n * sizeof *bodies);
    lens = malloc(n * sizeof *lens);
    for (size_t i = 0; i < n + extra; i++) ckp(pier_uuid7(ids + i * PIER_UUID_BUFFER_SIZE), "pier_uuid7");
    for (size_t i = 0; i < n; i++) {
        char b[512];
        int len = snprintf(b, sizeof b,
            "{\"name\":\"Person %05u Surname\",\"email\":\"person%05u.%u@example.com\",\"city\":\"%s\",\"zip\":\"%04u\","
            "\"phone\":\"+47 %03u %02u %03u\",\"age\":%u,\"orders\":%u,\"balance\":%u.%02u,\"rating\":%u.%u,"
            "\"active\":true,\"since\":%u}",
            (unsigned)(rng() % 100000), (unsigned)(rng() % 100000), (unsigned)(rng() % 1000), cities[rng() % 8],
            (unsigned)(rng() % 10000), (unsigned)(400 + rng() % 600), (unsigned)(rng() % 100), (unsigned)(rng() % 1000),
            (unsigned)(18 + rng() % 70), (unsigned)(rng() % 500), (unsigned)(rng() % 100000), (unsigned)(rng() % 100),
            (unsigned)(1 + rng() % 5), (unsigned)(rng() % 10), (unsigned)(2000 + rng() % 26));
        bodies[i] = strdup(b);
        lens[i] = (size_t)len;
    }
}

/* ---- files ---- */
static char dir[256];
static void path_of(char *out, const char *name) { snprintf(out, 512, "%s/%s.db", dir, name); }
static void rm_db(const char *p) {
    char q[600];
    unlink(p);
    snprintf(q, sizeof q, "%s-wal", p); unlink(q);
    snprintf(q, sizeof q, "%s-shm", p); unlink(q);
}

/* Pier's DDL for pier_records and its outbox index, read from a real store. */
static char *ddl_table, *ddl_outbox, *ddl_view;
static void read_pier_schema(void) {
    char p[512];
    path_of(p, "template");
    rm_db(p);
    pier_db *pdb;
    ckp(pier_db_open(&pdb, p, NULL), "pier_db_open (template)");
    pier_db_free(pdb);
    sqlite3 *db;
    ck(NULL, sqlite3_open(p, &db), SQLITE_OK, "open template");
    sqlite3_stmt *s = prep(db, "SELECT name, sql FROM sqlite_master WHERE name IN ('pier_records', 'pier_records_outbox', 'records')");
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(s, 0);
        char *sql = strdup((const char *)sqlite3_column_text(s, 1));
        if (strcmp(name, "pier_records") == 0) ddl_table = sql;
        else if (strcmp(name, "records") == 0) ddl_view = sql;
        else ddl_outbox = sql;
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    rm_db(p);
    if (!ddl_table || !ddl_outbox || !ddl_view) die("cannot read pier_records, pier_records_outbox, records from a new store");
}

/* The table DDL without its CHECK clause (the body's json_type test). */
static char *without_check(const char *ddl) {
    const char *check = strstr(ddl, "CHECK (");
    if (!check) return strdup(ddl);  /* schema 2 dropped the CHECK: B2 then equals B1 */
    const char *end = check + 7;
    int depth = 1;
    while (*end && depth) { depth += *end == '(' ? 1 : *end == ')' ? -1 : 0; end++; }
    size_t head = (size_t)(check - ddl);
    char *out = malloc(strlen(ddl) + 1);
    memcpy(out, ddl, head);
    strcpy(out + head, end);
    return out;
}

/* ---- rungs ---- */

static sqlite3 *open_raw(const char *name, int pier_schema, int check, int outbox) {
    char p[512];
    path_of(p, name);
    rm_db(p);
    sqlite3 *db;
    ck(NULL, sqlite3_open_v2(p, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL), SQLITE_OK, "open");
    exec(db, PRAGMAS);
    if (!pier_schema) {
        exec(db, "CREATE TABLE records(id TEXT PRIMARY KEY, body TEXT NOT NULL)");
    } else {
        char *t = check ? strdup(ddl_table) : without_check(ddl_table);
        exec(db, t);
        free(t);
        if (outbox) exec(db, ddl_outbox);
        exec(db, ddl_view);
    }
    return db;
}

enum { PLAIN_STATIC, UPSERT_TRANSIENT, UPSERT_SAVEPOINT };

/* Bulk put of n records in one transaction; returns seconds. The db stays open in *out. */
static double bulk_sql(sqlite3 **out, const char *name, int pier_schema, int check, int outbox, int style) {
    sqlite3 *db = open_raw(name, pier_schema, check, outbox);
    sqlite3_stmt *ins = prep(db, !pier_schema ? "INSERT INTO records(id, body) VALUES(?1, ?2)"
                                 : style == PLAIN_STATIC ? pier_plain_insert_sql : pier_upsert_sql);
    sqlite3_stmt *begin = prep(db, "BEGIN IMMEDIATE"), *commit = prep(db, "COMMIT");
    sqlite3_stmt *sp = prep(db, "SAVEPOINT pier_write"), *rel = prep(db, "RELEASE pier_write");
    double t0 = now_s();
    done(db, begin, "BEGIN");
    for (size_t i = 0; i < n; i++) {
        if (!pier_schema) {
            sqlite3_bind_text(ins, 1, id_at(i), 36, SQLITE_STATIC);
            sqlite3_bind_text(ins, 2, bodies[i], (int)lens[i], SQLITE_STATIC);
            done(db, ins, "insert");
            continue;
        }
        sqlite3_destructor_type how = style == PLAIN_STATIC ? SQLITE_STATIC : SQLITE_TRANSIENT;
        if (style == UPSERT_SAVEPOINT) done(db, sp, "SAVEPOINT");
        sqlite3_bind_text(ins, 1, COLLECTION, 9, how);
        sqlite3_bind_text(ins, 2, id_at(i), 36, how);
        sqlite3_bind_text(ins, 3, bodies[i], (int)lens[i], how);
        sqlite3_bind_text(ins, 4, "default", 7, how);
        sqlite3_bind_int64(ins, 5, (int64_t)(i + 1) << 16);
        sqlite3_bind_int64(ins, 6, (int64_t)i + 1);
        if (style != PLAIN_STATIC) { sqlite3_bind_null(ins, 7); sqlite3_bind_int64(ins, 8, 1); }
        done(db, ins, "pier insert");
        if (style != PLAIN_STATIC) sqlite3_clear_bindings(ins);
        if (style == UPSERT_SAVEPOINT) done(db, rel, "RELEASE");
    }
    done(db, commit, "COMMIT");
    double t = now_s() - t0;
    sqlite3_finalize(ins); sqlite3_finalize(begin); sqlite3_finalize(commit); sqlite3_finalize(sp); sqlite3_finalize(rel);
    if (out) *out = db; else sqlite3_close(db);
    return t;
}

static double bulk_pier(pier_db **out) {
    char p[512];
    path_of(p, "pier");
    rm_db(p);
    pier_db *db;
    ckp(pier_db_open(&db, p, NULL), "pier_db_open");
    double t0 = now_s();
    ckp(pier_db_begin(db), "begin");
    for (size_t i = 0; i < n; i++) ckp(pier_db_put(db, COLLECTION, id_at(i), bodies[i], lens[i]), "pier_db_put");
    ckp(pier_db_commit(db), "commit");
    double t = now_s() - t0;
    if (out) *out = db; else pier_db_free(db);
    return t;
}

/* Pages the connection wrote (to the WAL) during the last singles rung, per transaction. */
static double pages_per_txn;
static int cache_writes(sqlite3 *db) {
    int cur = 0, hi = 0;
    sqlite3_db_status(db, SQLITE_DBSTATUS_CACHE_WRITE, &cur, &hi, 0);
    return cur;
}

static double singles_raw(sqlite3 *db, size_t first, size_t count) {
    sqlite3_stmt *b = prep(db, "BEGIN IMMEDIATE"), *c = prep(db, "COMMIT");
    sqlite3_stmt *ins = prep(db, "INSERT OR REPLACE INTO records(id, body) VALUES(?1, ?2)");
    int w0 = cache_writes(db);
    double t0 = now_s();
    for (size_t i = 0; i < count; i++) {
        done(db, b, "BEGIN");
        sqlite3_bind_text(ins, 1, id_at(first + i), 36, SQLITE_STATIC);
        sqlite3_bind_text(ins, 2, bodies[i % n], (int)lens[i % n], SQLITE_STATIC);
        done(db, ins, "insert");
        done(db, c, "COMMIT");
    }
    double t = now_s() - t0;
    pages_per_txn = (double)(cache_writes(db) - w0) / (double)count;
    sqlite3_finalize(b); sqlite3_finalize(c); sqlite3_finalize(ins);
    return t;
}

static double singles_pier_sql(sqlite3 *db, size_t first, size_t count) {
    sqlite3_stmt *b = prep(db, "BEGIN IMMEDIATE"), *c = prep(db, "COMMIT"), *dv = prep(db, "PRAGMA data_version");
    sqlite3_stmt *ins = prep(db, pier_upsert_sql);
    int w0 = cache_writes(db);
    double t0 = now_s();
    for (size_t i = 0; i < count; i++) {
        done(db, b, "BEGIN");
        ck(db, sqlite3_step(dv), SQLITE_ROW, "data_version");
        (void)sqlite3_column_int64(dv, 0);
        sqlite3_reset(dv);
        sqlite3_bind_text(ins, 1, COLLECTION, 9, SQLITE_TRANSIENT);
        sqlite3_bind_text(ins, 2, id_at(first + i), 36, SQLITE_TRANSIENT);
        sqlite3_bind_text(ins, 3, bodies[i % n], (int)lens[i % n], SQLITE_TRANSIENT);
        sqlite3_bind_text(ins, 4, "default", 7, SQLITE_TRANSIENT);
        sqlite3_bind_int64(ins, 5, (int64_t)(first + i) << 16);
        sqlite3_bind_int64(ins, 6, (int64_t)(first + i));
        sqlite3_bind_null(ins, 7);
        sqlite3_bind_int64(ins, 8, 1);
        done(db, ins, "upsert");
        sqlite3_clear_bindings(ins);
        done(db, c, "COMMIT");
    }
    double t = now_s() - t0;
    pages_per_txn = (double)(cache_writes(db) - w0) / (double)count;
    sqlite3_finalize(b); sqlite3_finalize(c); sqlite3_finalize(dv); sqlite3_finalize(ins);
    return t;
}

static double singles_pier(pier_db *db, size_t first, size_t count) {
    double t0 = now_s();
    for (size_t i = 0; i < count; i++) ckp(pier_db_put(db, COLLECTION, id_at(first + i), bodies[i % n], lens[i % n]), "put");
    return now_s() - t0;
}

static uint32_t *picks;
static size_t gets;

static double gets_sql(sqlite3 *db, int pier_schema) {
    sqlite3_stmt *s = prep(db, pier_schema ? pier_get_sql : "SELECT body FROM records WHERE id = ?1");
    size_t total = 0;
    double t0 = now_s();
    for (size_t i = 0; i < gets; i++) {
        if (pier_schema) {
            sqlite3_bind_text(s, 1, COLLECTION, 9, SQLITE_TRANSIENT);
            sqlite3_bind_text(s, 2, id_at(picks[i]), 36, SQLITE_TRANSIENT);
        } else {
            sqlite3_bind_text(s, 1, id_at(picks[i]), 36, SQLITE_STATIC);
        }
        ck(db, sqlite3_step(s), SQLITE_ROW, "get");
        size_t len = (size_t)sqlite3_column_bytes(s, 0);
        char *copy = malloc(len + 1);
        memcpy(copy, sqlite3_column_text(s, 0), len);
        copy[len] = 0;
        total += (unsigned char)copy[len / 2];
        free(copy);
        sqlite3_reset(s);
        if (pier_schema) sqlite3_clear_bindings(s);
    }
    double t = now_s() - t0;
    sqlite3_finalize(s);
    if (total == 0) die("no bytes read");
    return t;
}

static double gets_pier(pier_db *db) {
    size_t total = 0;
    double t0 = now_s();
    for (size_t i = 0; i < gets; i++) {
        char *body;
        size_t len;
        ckp(pier_db_get(db, &body, &len, COLLECTION, id_at(picks[i])), "get");
        total += (unsigned char)body[len / 2];
        pier_free(body);
    }
    double t = now_s() - t0;
    if (total == 0) die("no bytes read");
    return t;
}

/* One query, rows concatenated into [{"id":"...","body":{...}},...] in a malloc'd buffer. */
static size_t query_sql(sqlite3 *db, const char *sql) {
    sqlite3_stmt *s;
    ck(db, sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK, sql);
    sqlite3_bind_text(s, 1, "Oslo", 4, SQLITE_STATIC);
    size_t cap = 1024, len = 1, rows = 0;
    char *out = malloc(cap);
    out[0] = '[';
    while (sqlite3_step(s) == SQLITE_ROW) {
        size_t il = (size_t)sqlite3_column_bytes(s, 0), bl = (size_t)sqlite3_column_bytes(s, 1);
        while (len + il + bl + 24 > cap) { cap *= 2; out = realloc(out, cap); }
        if (rows++) out[len++] = ',';
        memcpy(out + len, "{\"id\":\"", 7); len += 7;
        memcpy(out + len, sqlite3_column_text(s, 0), il); len += il;
        memcpy(out + len, "\",\"body\":", 9); len += 9;
        memcpy(out + len, sqlite3_column_text(s, 1), bl); len += bl;
        out[len++] = '}';
    }
    out[len++] = ']';
    out[len] = 0;
    sqlite3_finalize(s);
    free(out);
    return rows;
}

static size_t query_pier(pier_db *db) {
    char *out;
    size_t len, rows = 0;
    ckp(pier_db_query(db, &out, &len, pier_query_sql, "[\"Oslo\"]"), "pier_db_query");
    for (const char *p = out; (p = strstr(p, "{\"id\":")) != NULL; p += 6) rows++;
    pier_free(out);
    return rows;
}

#define QUERIES 10
static size_t query_rows[3];
static double queries(int rung, sqlite3 *db, pier_db *pdb) {
    double t0 = now_s();
    for (int i = 0; i < QUERIES; i++) query_rows[rung] = rung == 2 ? query_pier(pdb) : query_sql(db, rung == 0 ? raw_query_sql : pier_query_sql);
    return now_s() - t0;
}

static const char *fmt_ops(double v) {
    static char bufs[4][32];
    static int k;
    char *out = bufs[k++ % 4];
    snprintf(out, 32, "%.0f", v);
    return out;
}

static double best[64];
static void keep(int rung, double t) { if (best[rung] == 0 || t < best[rung]) best[rung] = t; }

static void row(const char *label, int rung, int base, int prev, size_t ops) {
    double us = best[rung] / (double)ops * 1e6;
    printf("| %s | %.2f | %s | %.2f | %+.2f |\n", label, us, fmt_ops((double)ops / best[rung]),
           best[base] / best[rung], (best[rung] - best[prev]) / (double)ops * 1e6);
}

int main(int argc, char **argv) {
    n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    const char *only = argc > 3 && strcmp(argv[2], "--only") == 0 ? argv[3] : NULL;
    if (n < 10) die("usage: ladder_store [N] [--only RUNG]");
    size_t singles = n >= 100000 ? 20000 : n / 5;
    gets = n >= 100000 ? 200000 : n * 2;
    extra = singles * 3 * REPS;
    const char *parent = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/pier-ladder-XXXXXX", parent && *parent ? parent : "/tmp");
    if (!mkdtemp(dir)) die("mkdtemp");
    make_data();
    read_pier_schema();
    picks = malloc(gets * sizeof *picks);
    for (size_t i = 0; i < gets; i++) picks[i] = (uint32_t)(rng() % n);

    sqlite3 *raw = NULL, *pier_sql = NULL;
    pier_db *pdb = NULL;
    double pages_raw = 0, pages_pier = 0;
    if (only) {
        int bulk_rung = only[0] == 'b' ? atoi(only + 1) : -1;
        if (bulk_rung < 0) {  /* s*, g* and q* read and write the filled stores */
            bulk_sql(&raw, "b0", 0, 0, 0, PLAIN_STATIC);
            bulk_sql(&pier_sql, "b6", 1, 1, 1, UPSERT_SAVEPOINT);
            bulk_pier(&pdb);
        }
        static const int check[] = {0, 1, 0, 1, 0, 1, 1}, outbox[] = {0, 1, 1, 0, 0, 1, 1};
        static const int style[] = {PLAIN_STATIC, PLAIN_STATIC, PLAIN_STATIC, PLAIN_STATIC, PLAIN_STATIC, UPSERT_TRANSIENT, UPSERT_SAVEPOINT};
        double t;
        CALLGRIND_START_INSTRUMENTATION;
        if (bulk_rung == 7) t = bulk_pier(NULL);
        else if (bulk_rung >= 0 && bulk_rung < 7) t = bulk_sql(NULL, "bx", bulk_rung > 0, check[bulk_rung], outbox[bulk_rung], style[bulk_rung]);
        else if (strcmp(only, "s0") == 0) t = singles_raw(raw, n, singles);
        else if (strcmp(only, "s1") == 0) t = singles_pier_sql(pier_sql, n, singles);
        else if (strcmp(only, "s2") == 0) t = singles_pier(pdb, n, singles);
        else if (strcmp(only, "g0") == 0) t = gets_sql(raw, 0);
        else if (strcmp(only, "g1") == 0) t = gets_sql(pier_sql, 1);
        else if (strcmp(only, "g2") == 0) t = gets_pier(pdb);
        else if (only[0] == 'q' && only[1] >= '0' && only[1] <= '2' && !only[2]) {
            CALLGRIND_STOP_INSTRUMENTATION;
            exec(raw, "CREATE INDEX records_city ON records(json_extract(body,'$.city'))");
            exec(pier_sql, pier_index_sql);
            ckp(pier_db_create_index(pdb, COLLECTION, "city"), "pier_db_create_index");
            CALLGRIND_START_INSTRUMENTATION;
            int q = only[1] - '0';
            t = queries(q, q == 0 ? raw : pier_sql, pdb);
        }
        else die("--only takes b0..b7, s0..s2 or g0..g2, got %s", only);
        CALLGRIND_STOP_INSTRUMENTATION;
        size_t ops = only[0] == 'b' ? n : only[0] == 's' ? singles : only[0] == 'g' ? gets : QUERIES;
        printf("%s: %zu ops in %.3f s, %.2f us/op\n", only, ops, t, t / (double)ops * 1e6);
        if (strcmp(only, "s0") == 0 || strcmp(only, "s1") == 0) printf("%s: %.2f pages written per transaction\n", only, pages_per_txn);
        if (raw) sqlite3_close(raw);
        if (pier_sql) sqlite3_close(pier_sql);
        if (pdb) pier_db_free(pdb);
        const char *names[] = {"b0", "b6", "bx", "pier"};
        for (size_t i = 0; i < 4; i++) { char p[512]; path_of(p, names[i]); rm_db(p); }
        rmdir(dir);
        return 0;
    }
    for (int rep = 0; rep < REPS; rep++) {
        if (raw) sqlite3_close(raw);
        if (pier_sql) sqlite3_close(pier_sql);
        if (pdb) pier_db_free(pdb);
        keep(0, bulk_sql(&raw, "b0", 0, 0, 0, PLAIN_STATIC));
        keep(1, bulk_sql(NULL, "b1", 1, 1, 1, PLAIN_STATIC));
        keep(2, bulk_sql(NULL, "b2", 1, 0, 1, PLAIN_STATIC));
        keep(3, bulk_sql(NULL, "b3", 1, 1, 0, PLAIN_STATIC));
        keep(4, bulk_sql(NULL, "b4", 1, 0, 0, PLAIN_STATIC));
        keep(5, bulk_sql(NULL, "b5", 1, 1, 1, UPSERT_TRANSIENT));
        keep(6, bulk_sql(&pier_sql, "b6", 1, 1, 1, UPSERT_SAVEPOINT));
        keep(7, bulk_pier(&pdb));
        fprintf(stderr, "bulk run %d done\n", rep + 1);
    }
    for (int rep = 0; rep < REPS; rep++) {
        size_t first = n + (size_t)rep * 3 * singles;
        keep(10, singles_raw(raw, first, singles));
        pages_raw = pages_per_txn;
        keep(11, singles_pier_sql(pier_sql, first + singles, singles));
        pages_pier = pages_per_txn;
        keep(12, singles_pier(pdb, first + 2 * singles, singles));
        keep(20, gets_sql(raw, 0));
        keep(21, gets_sql(pier_sql, 1));
        keep(22, gets_pier(pdb));
        fprintf(stderr, "single/get run %d done\n", rep + 1);
    }

    exec(raw, "CREATE INDEX records_city ON records(json_extract(body,'$.city'))");
    exec(pier_sql, pier_index_sql);
    ckp(pier_db_create_index(pdb, COLLECTION, "city"), "pier_db_create_index");
    for (int rep = 0; rep < REPS; rep++) {
        keep(30, queries(0, raw, NULL));
        keep(31, queries(1, pier_sql, NULL));
        keep(32, queries(2, NULL, pdb));
    }
    if (query_rows[0] != query_rows[1] || query_rows[1] != query_rows[2])
        die("query rows differ: raw %zu, Pier SQL %zu, pier_db_query %zu", query_rows[0], query_rows[1], query_rows[2]);

    printf("### Where the time goes: the Pier ladder (N = %zu, best of %d, SQLite %s)\n\n", n, REPS, sqlite3_libversion());
    printf("| Rung | µs/op | ops/s | raw / this (= ratio to raw) | step cost µs/op |\n|---|---:|---:|---:|---:|\n");
    row("B0 raw table, INSERT", 0, 0, 0, n);
    row("B1 Pier schema, plain INSERT", 1, 0, 0, n);
    row("B2 Pier schema without CHECK json_type", 2, 0, 1, n);
    row("B3 Pier schema without outbox index", 3, 0, 1, n);
    row("B4 Pier schema without both", 4, 0, 1, n);
    row("B5 Pier upsert SQL, TRANSIENT binds", 5, 0, 1, n);
    row("B6 B5 + SAVEPOINT/RELEASE per put", 6, 0, 5, n);
    row("B7 pier_db_put", 7, 0, 6, n);
    row("S0 raw one put per transaction", 10, 10, 10, singles);
    row("S1 Pier's SQL sequence per put", 11, 10, 10, singles);
    row("S2 pier_db_put, own transaction", 12, 10, 11, singles);
    row("G0 raw get by id", 20, 20, 20, gets);
    row("G1 Pier's get SQL", 21, 20, 20, gets);
    row("G2 pier_db_get", 22, 20, 21, gets);
    row("Q0 raw query with index", 30, 30, 30, QUERIES);
    row("Q1 Pier's query SQL with Pier's index", 31, 30, 30, QUERIES);
    row("Q2 pier_db_query", 32, 30, 31, QUERIES);
    printf("\nstep cost = this rung minus the rung it builds on (B2-B4 against B1, B6 against B5, B7 against B6, "
           "S2 against S1, G2 against G1, Q2 against Q1; B1, S1, G1, Q1 against the raw rung). Queries return %zu rows.\n",
           query_rows[0]);
    printf("Pages written per single-put transaction: raw %.2f, Pier's SQL %.2f (SQLITE_DBSTATUS_CACHE_WRITE).\n",
           pages_raw, pages_pier);

    sqlite3_close(raw);
    sqlite3_close(pier_sql);
    pier_db_free(pdb);
    const char *names[] = {"b0", "b1", "b2", "b3", "b4", "b5", "b6", "pier"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char p[512];
        path_of(p, names[i]);
        rm_db(p);
    }
    rmdir(dir);
    return 0;
}
