/*
 * layout_store.c — would another table layout make Pier's writes cheaper? (issue 2)
 *
 * A diagnostic, not part of the recorded figures, and SQL only (no libpier): the same
 * rows go into four layouts through the sqlite3 C API with the pragmas Pier sets, so the
 * differences are the layouts' and nothing else's.
 *
 *   raw      records(id TEXT PRIMARY KEY, body TEXT NOT NULL): the baseline of
 *            bench_store.c (a rowid table plus the automatic index on id)
 *   pier     Pier's layout today (schema 2): pier_records WITHOUT ROWID keyed by
 *            (collection, id) with the body inline, plus the outbox, a partial index on
 *            local_seq WHERE is_modified = 1
 *   seq      local_seq as the rowid (INTEGER PRIMARY KEY) and a UNIQUE index on
 *            (collection, id); no outbox index: pending rows would be found by a rowid
 *            range scan from a low-water mark, since every local write takes a new,
 *            higher local_seq
 *   seq-desc seq with every row (local writes too) inserted in descending key order
 *            (negative rowids): what a separate, downward range of rowids for pulled rows
 *            would cost
 *
 * For each layout, best of 3 runs, layouts interleaved, fresh files each run:
 *   bulk    N new records in one transaction (µs per record)
 *   single  S more new records, one BEGIN IMMEDIATE / INSERT / COMMIT each (µs per
 *           transaction), and the database pages written per transaction
 *           (SQLITE_DBSTATUS_CACHE_WRITE)
 *   get     G point reads of random existing ids, body copied out (µs per read)
 *   edit    S updates of existing records with a new body, each in its own transaction,
 *           that give the record a new local_seq (in seq that moves the row to the end of
 *           the table); a plain UPDATE in every layout, where Pier's real edit first tries
 *           the INSERT and then runs its upsert, so edits understate Pier's cost (equally
 *           for pier and seq)
 *
 * Build and run (about a minute at N = 100000):
 *   cc -O2 -std=c11 benchmarks/store/layout_store.c -o /tmp/layout_store -lsqlite3
 *   /tmp/layout_store [N] [--dir DIR]
 */
#define _GNU_SOURCE
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BENCH_NAME "layout_store"
#include "../bench_util.h"

#define PRAGMAS \
    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-16384;"
#define REPS 3
#define SINGLES 20000
#define GETS 200000

/* Pier's columns after schema 2, in Schema.swift's order (body and server_body are
 * declared JSONTEXT there; untyped here, which changes only their affinity). */
#define PIER_COLUMNS                                                                                     \
    "collection TEXT NOT NULL, id TEXT NOT NULL, body, scope TEXT NOT NULL, "                            \
    "is_from_server INTEGER NOT NULL DEFAULT 0, is_modified INTEGER NOT NULL DEFAULT 0, "                \
    "is_active INTEGER NOT NULL DEFAULT 1, base_version INTEGER NOT NULL DEFAULT 0, "                    \
    "hlc INTEGER NOT NULL DEFAULT 0, "
#define PIER_TAIL                                                                                        \
    "changed_fields TEXT, server_body, server_version INTEGER NOT NULL DEFAULT 0, "                      \
    "sync_state INTEGER NOT NULL DEFAULT 0, resync_mark INTEGER NOT NULL DEFAULT 0"

enum { RAW, PIER, SEQ, SEQ_DESC, LAYOUTS };

static const char *const names[LAYOUTS] = {"raw", "pier", "seq", "seq-desc"};

static const char *const schemas[LAYOUTS] = {
    "CREATE TABLE records(id TEXT PRIMARY KEY, body TEXT NOT NULL)",
    "CREATE TABLE pier_records(" PIER_COLUMNS "local_seq INTEGER NOT NULL DEFAULT 0, " PIER_TAIL
    ", PRIMARY KEY (collection, id)) WITHOUT ROWID;"
    "CREATE INDEX pier_records_outbox ON pier_records(local_seq) WHERE is_modified = 1;",
    "CREATE TABLE pier_records(local_seq INTEGER PRIMARY KEY, " PIER_COLUMNS PIER_TAIL ");"
    "CREATE UNIQUE INDEX pier_records_key ON pier_records(collection, id);",
    "CREATE TABLE pier_records(local_seq INTEGER PRIMARY KEY, " PIER_COLUMNS PIER_TAIL ");"
    "CREATE UNIQUE INDEX pier_records_key ON pier_records(collection, id);",
};

/* ?1 collection, ?2 id, ?3 body, ?4 hlc, ?5 local_seq */
static const char *const inserts[LAYOUTS] = {
    "INSERT INTO records(id, body) VALUES (?2, ?3)",
    "INSERT INTO pier_records(collection, id, body, scope, is_modified, is_active, hlc, local_seq, sync_state) "
    "VALUES (?1, ?2, ?3, 'default', 1, 1, ?4, ?5, 1)",
    "INSERT INTO pier_records(collection, id, body, scope, is_modified, is_active, hlc, local_seq, sync_state) "
    "VALUES (?1, ?2, ?3, 'default', 1, 1, ?4, ?5, 1)",
    "INSERT INTO pier_records(collection, id, body, scope, is_modified, is_active, hlc, local_seq, sync_state) "
    "VALUES (?1, ?2, ?3, 'default', 1, 1, ?4, ?5, 1)",
};

static const char *const gets[LAYOUTS] = {
    "SELECT body FROM records WHERE id = ?2",
    "SELECT body FROM pier_records WHERE collection = ?1 AND id = ?2 AND is_active = 1",
    "SELECT body FROM pier_records WHERE collection = ?1 AND id = ?2 AND is_active = 1",
    "SELECT body FROM pier_records WHERE collection = ?1 AND id = ?2 AND is_active = 1",
};

static const char *const edits[LAYOUTS] = {
    "UPDATE records SET body = ?3 WHERE id = ?2",
    "UPDATE pier_records SET body = ?3, hlc = ?4, local_seq = ?5, is_modified = 1 WHERE collection = ?1 AND id = ?2",
    "UPDATE pier_records SET body = ?3, hlc = ?4, local_seq = ?5, is_modified = 1 WHERE collection = ?1 AND id = ?2",
    "UPDATE pier_records SET body = ?3, hlc = ?4, local_seq = ?5, is_modified = 1 WHERE collection = ?1 AND id = ?2",
};

static char (*ids)[48];
static char (*bodies)[320];

static void exec(sqlite3 *db, const char *sql) {
    char *error = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &error) != SQLITE_OK) die("%s: %s", sql, error);
}

static sqlite3_stmt *prepare(sqlite3 *db, const char *sql) {
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK) die("%s: %s", sql, sqlite3_errmsg(db));
    return stmt;
}

static int64_t seq_for(int layout, size_t i) { return layout == SEQ_DESC ? -(int64_t)(i + 1) : (int64_t)(i + 1); }

/* Binds the parameters the statement has (the raw table's statements and the gets use
 * only some of ?1-?5); any other bind failure stops the run. */
static void bind_row(sqlite3_stmt *stmt, size_t i, int64_t seq) {
    int count = sqlite3_bind_parameter_count(stmt);
    int rc = SQLITE_OK;
    if (rc == SQLITE_OK && count >= 1) rc = sqlite3_bind_text(stmt, 1, "customers", -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && count >= 2) rc = sqlite3_bind_text(stmt, 2, ids[i], -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && count >= 3) rc = sqlite3_bind_text(stmt, 3, bodies[i], -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && count >= 4) rc = sqlite3_bind_int64(stmt, 4, (int64_t)i << 16);
    if (rc == SQLITE_OK && count >= 5) rc = sqlite3_bind_int64(stmt, 5, seq);
    if (rc != SQLITE_OK) die("bind: rc=%d", rc);
}

static void step_done(sqlite3 *db, sqlite3_stmt *stmt, const char *what) {
    if (sqlite3_step(stmt) != SQLITE_DONE) die("%s: %s", what, sqlite3_errmsg(db));
    sqlite3_reset(stmt);
}

static int cache_writes(sqlite3 *db) {
    int cur = 0, hi = 0;
    sqlite3_db_status(db, SQLITE_DBSTATUS_CACHE_WRITE, &cur, &hi, 0);
    return cur;
}

/* Deletes a database file with its WAL and shared-memory files. */
static void remove_database(const char *path) {
    const char *suffixes[] = {"", "-wal", "-shm"};
    for (int k = 0; k < 3; k++) {
        char p[600];
        snprintf(p, sizeof p, "%s%s", path, suffixes[k]);
        unlink(p);
    }
}

struct figures { double bulk, single, pages, get, edit, edit_pages; };

static struct figures run(int layout, size_t n, const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/layout-%s.sqlite", dir, names[layout]);
    remove_database(path);
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK) die("open %s", path);
    exec(db, PRAGMAS);
    exec(db, schemas[layout]);
    sqlite3_stmt *insert = prepare(db, inserts[layout]), *get = prepare(db, gets[layout]), *edit = prepare(db, edits[layout]);
    sqlite3_stmt *begin = prepare(db, "BEGIN IMMEDIATE"), *commit = prepare(db, "COMMIT");
    struct figures f;

    double t = now_s();
    exec(db, "BEGIN");
    for (size_t i = 0; i < n; i++) {
        bind_row(insert, i, seq_for(layout, i));
        step_done(db, insert, "bulk insert");
    }
    exec(db, "COMMIT");
    f.bulk = (now_s() - t) / (double)n * 1e6;

    int w0 = cache_writes(db);
    t = now_s();
    for (size_t i = n; i < n + SINGLES; i++) {
        step_done(db, begin, "begin");
        bind_row(insert, i, seq_for(layout, i));
        step_done(db, insert, "single insert");
        step_done(db, commit, "commit");
    }
    f.single = (now_s() - t) / SINGLES * 1e6;
    f.pages = (double)(cache_writes(db) - w0) / SINGLES;

    uint64_t x = 42;
    size_t bytes = 0;
    t = now_s();
    for (size_t g = 0; g < GETS; g++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        size_t i = (size_t)(x % (n + SINGLES));
        bind_row(get, i, 0);
        if (sqlite3_step(get) != SQLITE_ROW) die("get %s: not found", ids[i]);
        int len = sqlite3_column_bytes(get, 0);
        char *copy = malloc((size_t)len + 1);
        memcpy(copy, sqlite3_column_text(get, 0), (size_t)len);
        bytes += (size_t)len;
        free(copy);
        sqlite3_reset(get);
    }
    f.get = (now_s() - t) / GETS * 1e6;
    if (bytes == 0) die("gets read nothing");

    /* Edits of random existing records, each taking the next local_seq. */
    int64_t next = (int64_t)(n + SINGLES) + 1;
    w0 = cache_writes(db);
    t = now_s();
    for (size_t e = 0; e < SINGLES; e++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        size_t i = (size_t)(x % (n + SINGLES));
        step_done(db, begin, "begin");
        bind_row(edit, i, layout == SEQ_DESC ? -next : next);
        sqlite3_bind_text(edit, 3, bodies[(i + e + 1) % (n + SINGLES)], -1, SQLITE_STATIC); /* a new body */
        next++;
        step_done(db, edit, "edit");
        if (sqlite3_changes(db) != 1) die("edit of %s changed %d rows", ids[i], sqlite3_changes(db));
        step_done(db, commit, "commit");
    }
    f.edit = (now_s() - t) / SINGLES * 1e6;
    f.edit_pages = (double)(cache_writes(db) - w0) / SINGLES;

    sqlite3_finalize(insert);
    sqlite3_finalize(get);
    sqlite3_finalize(edit);
    sqlite3_finalize(begin);
    sqlite3_finalize(commit);
    sqlite3_close(db);
    remove_database(path);
    return f;
}

static double best(double a, double b) { return a < b ? a : b; }

int main(int argc, char **argv) {
    size_t n = 100000;
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) dir = argv[++i];
        else if (atol(argv[i]) >= 1000) n = (size_t)atol(argv[i]);
        else die("usage: layout_store [N >= 1000] [--dir DIR]");
    }
    size_t total = n + SINGLES;
    ids = malloc(total * sizeof *ids);
    bodies = malloc(total * sizeof *bodies);
    if (!ids || !bodies) die("out of memory");
    /* Time-ordered UUIDv7-shaped ids (as pier_uuid7 makes) and JSON bodies of 150-250 bytes. */
    uint64_t x = 7;
    for (size_t i = 0; i < total; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        uint64_t ms = 1750000000000ULL + i;
        snprintf(ids[i], sizeof ids[i], "%08llx-%04llx-7%03llx-%04llx-%012llx", (unsigned long long)(ms >> 16),
                 (unsigned long long)(ms & 0xffff), (unsigned long long)(x & 0xfff),
                 (unsigned long long)(0x8000 | ((x >> 12) & 0x3fff)), (unsigned long long)((x >> 16) & 0xffffffffffffULL));
        int len = 150 + (int)(x % 100);
        int p = snprintf(bodies[i], sizeof bodies[i], "{\"n\":%zu,\"note\":\"", i);
        while (p < len - 2) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; bodies[i][p++] = (char)('a' + x % 26); }
        bodies[i][p++] = '"';
        bodies[i][p++] = '}';
        bodies[i][p] = 0;
    }

    struct figures b[LAYOUTS];
    for (int l = 0; l < LAYOUTS; l++) b[l] = (struct figures){1e9, 1e9, 0, 1e9, 1e9, 0};
    for (int rep = 0; rep < REPS; rep++) {
        for (int l = 0; l < LAYOUTS; l++) {
            struct figures f = run(l, n, dir);
            b[l].bulk = best(b[l].bulk, f.bulk);
            b[l].single = best(b[l].single, f.single);
            b[l].pages = f.pages;
            b[l].get = best(b[l].get, f.get);
            b[l].edit = best(b[l].edit, f.edit);
            b[l].edit_pages = f.edit_pages;
        }
        fprintf(stderr, "run %d done\n", rep + 1);
    }
    printf("### Table layouts, SQL only (N = %zu, best of %d, SQLite %s)\n\n", n, REPS, sqlite3_libversion());
    printf("| layout | bulk µs/record | raw / this | single µs/txn | raw / this | pages/txn | get µs | raw / this | edit µs/txn | raw / this | pages/edit |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int l = 0; l < LAYOUTS; l++) {
        printf("| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", names[l], b[l].bulk, b[RAW].bulk / b[l].bulk,
               b[l].single, b[RAW].single / b[l].single, b[l].pages, b[l].get, b[RAW].get / b[l].get, b[l].edit,
               b[RAW].edit / b[l].edit, b[l].edit_pages);
    }
    free(ids);
    free(bodies);
    return 0;
}
