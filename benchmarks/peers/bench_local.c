/*
 * bench_local: the C half of benchmarks/run (issue 8). Each mode measures Pier and its
 * baselines in this one process, on the same rows, and prints one JSON object per figure
 * on standard output. It prints figures; it never fails on them (it exits non-zero only
 * when something did not work: a failed call, a lost row).
 *
 *   bench_local writes N SINGLES ROUNDS DIR
 *       Local writes with change tracking. Bulk: N new records in one transaction.
 *       Singles: SINGLES more records, one transaction each, on the store of N. Sides:
 *       raw SQLite (table records(id TEXT PRIMARY KEY, body TEXT), the pragmas Pier
 *       sets), the same table with SQLite's session extension recording every change
 *       (sqlite3session_attach; the changeset is taken at the end, inside the timing,
 *       because recording changes is only useful if they can be read), and Pier
 *       (pier_db_put, inside pier_db_begin/commit for bulk). Best of ROUNDS, the three
 *       sides interleaved, each round on fresh files.
 *
 *   bench_local apply MASTER ROUNDS DIR
 *       Applying downloaded changes. MASTER is a Pier master store (benchmarks/run makes
 *       it with `pier-bench-sync seed`). Pier: an empty client syncs from it in process
 *       through a host transport that calls pier_server_handle, whose time is subtracted,
 *       so what remains is the client's work: decoding pull pages and applying them with
 *       their metadata. Baselines on the same rows (read from MASTER): a raw insert in one
 *       transaction, and sqlite3changeset_apply of a changeset holding the same inserts.
 *
 *   bench_local http-sync URL TOKEN DB
 *       One pier_sync of the store DB against `pier serve` at URL with the bearer TOKEN (the built-in libcurl
 *       transport), as a separate process so its peak resident set belongs to the sync:
 *       time and CPU time of the pier_sync call, bytes on the wire, round trips, records
 *       pulled, idle and peak RSS.
 */
#define SQLITE_ENABLE_SESSION 1
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include <sqlite3.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "pier.h"

#define BENCH_NAME "bench_local"
#include "../bench_util.h"

/* User + system CPU seconds this process has used. */
static double cpu_s(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (double)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + (double)(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

static void check_pier(int rc, const char *what) {
    if (rc != PIER_OK) die("%s: %s (%s)", what, pier_errname(rc), pier_errmsg());
}

static void check_sqlite(sqlite3 *db, int rc, int expected, const char *what) {
    if (rc != expected) die("%s: %s", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

static void exec_sql(sqlite3 *db, const char *sql) {
    char *message = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &message) != SQLITE_OK) die("%s: %s", sql, message ? message : "?");
}

static void remove_db(const char *path) {
    char name[4096];
    const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s%s", path, suffixes[i]);
        if (unlink(name) != 0 && errno != ENOENT) die("cannot remove %s", name);
    }
}

/* Kilobytes from /proc/self/status: VmRSS (now) or VmHWM (peak). */
static long status_kib(const char *field) {
    FILE *file = fopen("/proc/self/status", "r");
    if (!file) return 0;
    char line[256];
    long value = 0;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, file))
        if (strncmp(line, field, n) == 0) { value = strtol(line + n + 1, NULL, 10); break; }
    fclose(file);
    return value;
}

/* ---- rows ---------------------------------------------------------------------------- */

typedef struct {
    size_t count;
    char **ids;
    char **bodies;
} rows;

static void rows_add(rows *r, size_t *capacity, const char *id, const char *body) {
    if (r->count == *capacity) {
        *capacity = *capacity ? *capacity * 2 : 1024;
        r->ids = realloc(r->ids, *capacity * sizeof *r->ids);
        r->bodies = realloc(r->bodies, *capacity * sizeof *r->bodies);
        if (!r->ids || !r->bodies) die("out of memory");
    }
    r->ids[r->count] = strdup(id);
    r->bodies[r->count] = strdup(body);
    if (!r->ids[r->count] || !r->bodies[r->count]) die("out of memory");
    r->count++;
}

static void rows_free(rows *r) {
    for (size_t i = 0; i < r->count; i++) { free(r->ids[i]); free(r->bodies[i]); }
    free(r->ids);
    free(r->bodies);
    memset(r, 0, sizeof *r);
}

/* The customer bodies of pier-bench-sync (benchmarks/sync/main.swift, `Rows`), about 200
 * bytes each, from the same seeded generator, with UUIDv7 ids. */
static uint64_t rng_state = 42;
static uint64_t rng_next(void) {
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return rng_state >> 17;
}

static rows make_rows(size_t count) {
    static const char *const cities[] = {"Oslo", "Bergen", "London", "Paris", "Rome", "Madrid", "Berlin",
                                         "Vienna", "Prague", "Lisbon", "Dublin", "Warsaw", "Zurich", "Geneva",
                                         "Milan", "Turin", "Lyon", "Nice", "Porto", "Seville"};
    rows r = {0};
    size_t capacity = 0;
    char id[PIER_UUID_BUFFER_SIZE];
    char body[512];
    for (size_t i = 0; i < count; i++) {
        pier_uuid7(id);
        const char *city = cities[rng_next() % 20];
        uint64_t phone = 10000000 + rng_next() % 89999999, street = rng_next() % 400, balance = rng_next() % 100000,
                 tier = rng_next() % 5, notes = rng_next() % 1000;
        snprintf(body, sizeof body,
                 "{\"name\":\"Customer %zu\",\"city\":\"%s\",\"phone\":\"+47 %" PRIu64 "\",\"street\":\"%" PRIu64
                 " Harbour Road\",\"balance\":%" PRIu64 ",\"tier\":%" PRIu64 ",\"notes\":\"serviced on schedule %" PRIu64 "\"}",
                 i, city, phone, street, balance, tier, notes);
        rows_add(&r, &capacity, id, body);
    }
    return r;
}

/* The live records of a Pier master store, in version order (what a pull sends). */
static rows read_master(const char *path) {
    sqlite3 *db = NULL;
    check_sqlite(db, sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK, "open the master store");
    sqlite3_stmt *stmt = NULL;
    check_sqlite(db, sqlite3_prepare_v2(db, "SELECT id, body FROM records WHERE deleted = 0 ORDER BY version", -1, &stmt, NULL),
                 SQLITE_OK, "read the master store");
    rows r = {0};
    size_t capacity = 0;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
        rows_add(&r, &capacity, (const char *)sqlite3_column_text(stmt, 0), (const char *)sqlite3_column_text(stmt, 1));
    check_sqlite(db, rc, SQLITE_DONE, "read the master store");
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return r;
}

/* ---- raw SQLite, with or without a session ------------------------------------------- */

typedef struct {
    sqlite3 *db;
    sqlite3_stmt *insert;
    sqlite3_session *session;
} raw_store;

static raw_store raw_open(const char *path, int with_session) {
    raw_store r = {0};
    check_sqlite(NULL, sqlite3_open(path, &r.db), SQLITE_OK, "open a raw store");
    exec_sql(r.db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-16384;"
                   "CREATE TABLE IF NOT EXISTS records(id TEXT PRIMARY KEY, body TEXT NOT NULL)");
    check_sqlite(r.db, sqlite3_prepare_v2(r.db, "INSERT INTO records(id, body) VALUES (?1, ?2)", -1, &r.insert, NULL), SQLITE_OK,
                 "prepare insert");
    if (with_session) {
        check_sqlite(r.db, sqlite3session_create(r.db, "main", &r.session), SQLITE_OK, "sqlite3session_create");
        check_sqlite(r.db, sqlite3session_attach(r.session, "records"), SQLITE_OK, "sqlite3session_attach");
    }
    return r;
}

static void raw_insert(raw_store *r, const char *id, const char *body) {
    sqlite3_bind_text(r->insert, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(r->insert, 2, body, -1, SQLITE_STATIC);
    check_sqlite(r->db, sqlite3_step(r->insert), SQLITE_DONE, "insert");
    sqlite3_reset(r->insert);
}

/* The session's changeset: what it recorded, read out as an app would before sending it. */
static int session_take(raw_store *r) {
    int size = 0;
    void *changeset = NULL;
    check_sqlite(r->db, sqlite3session_changeset(r->session, &size, &changeset), SQLITE_OK, "sqlite3session_changeset");
    sqlite3_free(changeset);
    return size;
}

static void session_restart(raw_store *r) {
    sqlite3session_delete(r->session);
    check_sqlite(r->db, sqlite3session_create(r->db, "main", &r->session), SQLITE_OK, "sqlite3session_create");
    check_sqlite(r->db, sqlite3session_attach(r->session, "records"), SQLITE_OK, "sqlite3session_attach");
}

static void raw_close(raw_store *r) {
    if (r->session) sqlite3session_delete(r->session);
    sqlite3_finalize(r->insert);
    check_sqlite(r->db, sqlite3_close(r->db), SQLITE_OK, "close a raw store");
}

static int64_t raw_count(sqlite3 *db) {
    sqlite3_stmt *stmt = NULL;
    sqlite3_prepare_v2(db, "SELECT count(*) FROM records", -1, &stmt, NULL);
    check_sqlite(db, sqlite3_step(stmt), SQLITE_ROW, "count");
    int64_t n = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return n;
}

/* ---- mode: writes -------------------------------------------------------------------- */

static void emit_rate(const char *section, const char *kind, const char *side, size_t records, size_t store_size, double best,
                      const char *extra) {
    printf("{\"section\":\"%s\",\"kind\":\"%s\",\"side\":\"%s\",\"records\":%zu,\"store_size\":%zu,\"seconds\":%.6f,"
           "\"rate\":%.1f%s}\n",
           section, kind, side, records, store_size, best, (double)records / best, extra ? extra : "");
    fflush(stdout);
}

static void mode_writes(size_t n, size_t singles, int rounds, const char *dir) {
    rows data = make_rows(n + singles);
    const char *sides[] = {"raw", "session", "pier"};
    double bulk_best[3] = {1e30, 1e30, 1e30}, single_best[3] = {1e30, 1e30, 1e30};
    int changeset_bytes = 0;
    char path[4096];
    for (int round = 0; round < rounds; round++) {
        for (int side = 0; side < 3; side++) {
            snprintf(path, sizeof path, "%s/writes-%s.db", dir, sides[side]);
            remove_db(path);
            double bulk, single;
            if (side < 2) {
                raw_store r = raw_open(path, side == 1);
                double t0 = now_s();
                exec_sql(r.db, "BEGIN");
                for (size_t i = 0; i < n; i++) raw_insert(&r, data.ids[i], data.bodies[i]);
                exec_sql(r.db, "COMMIT");
                if (side == 1) changeset_bytes = session_take(&r);
                bulk = now_s() - t0;
                if (side == 1) session_restart(&r);  /* the singles' changeset holds only them */
                t0 = now_s();
                for (size_t i = n; i < n + singles; i++) raw_insert(&r, data.ids[i], data.bodies[i]);
                if (side == 1) session_take(&r);
                single = now_s() - t0;
                if (raw_count(r.db) != (int64_t)(n + singles)) die("raw store lost rows");
                raw_close(&r);
            } else {
                pier_db *db = NULL;
                check_pier(pier_db_open(&db, path, NULL), "pier_db_open");
                double t0 = now_s();
                check_pier(pier_db_begin(db), "pier_db_begin");
                for (size_t i = 0; i < n; i++)
                    check_pier(pier_db_put(db, "customers", data.ids[i], data.bodies[i], strlen(data.bodies[i])), "pier_db_put");
                check_pier(pier_db_commit(db), "pier_db_commit");
                bulk = now_s() - t0;
                t0 = now_s();
                for (size_t i = n; i < n + singles; i++)
                    check_pier(pier_db_put(db, "customers", data.ids[i], data.bodies[i], strlen(data.bodies[i])), "pier_db_put");
                single = now_s() - t0;
                int64_t count = 0;
                check_pier(pier_db_count(db, &count, "customers"), "pier_db_count");
                if (count != (int64_t)(n + singles)) die("pier store lost records");
                check_pier(pier_db_close(db), "pier_db_close");
                pier_db_free(db);
            }
            remove_db(path);
            if (bulk < bulk_best[side]) bulk_best[side] = bulk;
            if (single < single_best[side]) single_best[side] = single;
        }
    }
    char extra[64];
    snprintf(extra, sizeof extra, ",\"changeset_bytes\":%d", changeset_bytes);
    for (int side = 0; side < 3; side++) {
        emit_rate("writes", "bulk", sides[side], n, 0, bulk_best[side], side == 1 ? extra : NULL);
        emit_rate("writes", "single", sides[side], singles, n, single_best[side], NULL);
    }
    rows_free(&data);
}

/* ---- mode: apply --------------------------------------------------------------------- */

typedef struct {
    pier_server *server;
    unsigned char *response;
    double server_seconds;
    int64_t response_bytes;
} inprocess_transport;

static int call_server(void *ctx, const unsigned char *request, size_t request_len, const unsigned char **out, size_t *out_len) {
    inprocess_transport *t = ctx;
    pier_free(t->response);
    t->response = NULL;
    size_t len = 0;
    double t0 = now_s();
    int rc = pier_server_handle(t->server, &t->response, &len, request, request_len, NULL);
    t->server_seconds += now_s() - t0;
    if (rc != PIER_OK) return rc;
    t->response_bytes += (int64_t)len;
    *out = t->response;
    *out_len = len;
    return PIER_OK;
}

static int abort_on_conflict(void *ctx, int conflict, sqlite3_changeset_iter *iter) {
    (void)ctx; (void)conflict; (void)iter;
    return SQLITE_CHANGESET_ABORT;
}

static void mode_apply(const char *master, int rounds, const char *dir) {
    rows data = read_master(master);
    if (data.count == 0) die("%s holds no records", master);
    char path[4096];

    /* The changeset of the same inserts, recorded once on a scratch database. */
    snprintf(path, sizeof path, "%s/apply-source.db", dir);
    remove_db(path);
    raw_store source = raw_open(path, 1);
    exec_sql(source.db, "BEGIN");
    for (size_t i = 0; i < data.count; i++) raw_insert(&source, data.ids[i], data.bodies[i]);
    exec_sql(source.db, "COMMIT");
    int changeset_size = 0;
    void *changeset = NULL;
    check_sqlite(source.db, sqlite3session_changeset(source.session, &changeset_size, &changeset), SQLITE_OK, "changeset");
    raw_close(&source);
    remove_db(path);

    pier_server *server = NULL;
    check_pier(pier_server_open(&server, master, NULL), "pier_server_open");
    double best_raw = 1e30, best_changeset = 1e30, best_pier = 1e30, best_pier_total = 1e30;
    int64_t pier_bytes = 0, round_trips = 0;
    for (int round = 0; round < rounds; round++) {
        /* raw insert */
        snprintf(path, sizeof path, "%s/apply-raw.db", dir);
        remove_db(path);
        raw_store raw = raw_open(path, 0);
        double t0 = now_s();
        exec_sql(raw.db, "BEGIN");
        for (size_t i = 0; i < data.count; i++) raw_insert(&raw, data.ids[i], data.bodies[i]);
        exec_sql(raw.db, "COMMIT");
        double elapsed = now_s() - t0;
        if (elapsed < best_raw) best_raw = elapsed;
        raw_close(&raw);
        remove_db(path);

        /* changeset apply */
        snprintf(path, sizeof path, "%s/apply-changeset.db", dir);
        remove_db(path);
        raw_store target = raw_open(path, 0);
        t0 = now_s();
        exec_sql(target.db, "BEGIN");
        check_sqlite(target.db, sqlite3changeset_apply(target.db, changeset_size, changeset, NULL, abort_on_conflict, NULL),
                     SQLITE_OK, "sqlite3changeset_apply");
        exec_sql(target.db, "COMMIT");
        elapsed = now_s() - t0;
        if (elapsed < best_changeset) best_changeset = elapsed;
        if (raw_count(target.db) != (int64_t)data.count) die("changeset apply lost rows");
        raw_close(&target);
        remove_db(path);

        /* Pier: an initial sync in process, the server's time taken out */
        snprintf(path, sizeof path, "%s/apply-pier.pier", dir);
        remove_db(path);
        pier_db *db = NULL;
        check_pier(pier_db_open(&db, path, NULL), "pier_db_open");
        inprocess_transport transport = {server, NULL, 0, 0};
        pier_sync_options options = PIER_SYNC_OPTIONS_INIT;
        options.transport = call_server;
        options.transport_ctx = &transport;
        pier_sync_report report = PIER_SYNC_REPORT_INIT;
        t0 = now_s();
        check_pier(pier_sync(db, &report, &options), "pier_sync");
        double total = now_s() - t0;
        pier_free(transport.response);
        int64_t count = 0;
        check_pier(pier_db_count(db, &count, "customers"), "pier_db_count");
        if (count != (int64_t)data.count || report.pulled != (int64_t)data.count) die("the sync pulled %" PRId64 " of %zu", count, data.count);
        check_pier(pier_db_close(db), "pier_db_close");
        pier_db_free(db);
        remove_db(path);
        elapsed = total - transport.server_seconds;
        if (elapsed < best_pier) { best_pier = elapsed; best_pier_total = total; }
        pier_bytes = transport.response_bytes;
        round_trips = report.round_trips;
    }
    check_pier(pier_server_close(server), "pier_server_close");
    pier_server_free(server);
    sqlite3_free(changeset);
    char extra[160];
    emit_rate("apply", "insert", "raw", data.count, 0, best_raw, NULL);
    snprintf(extra, sizeof extra, ",\"changeset_bytes\":%d", changeset_size);
    emit_rate("apply", "insert", "changeset", data.count, 0, best_changeset, extra);
    snprintf(extra, sizeof extra, ",\"frame_bytes\":%" PRId64 ",\"round_trips\":%" PRId64 ",\"with_server_seconds\":%.6f", pier_bytes,
             round_trips, best_pier_total);
    emit_rate("apply", "insert", "pier", data.count, 0, best_pier, extra);
    rows_free(&data);
}

/* ---- mode: http-sync ----------------------------------------------------------------- */

static void mode_http_sync(const char *url, const char *token, const char *path) {
    pier_db *db = NULL;
    check_pier(pier_db_open(&db, path, NULL), "pier_db_open");
    int64_t before = 0;
    check_pier(pier_db_count(db, &before, "customers"), "pier_db_count");
    long idle = status_kib("VmRSS:");
    pier_sync_options options = PIER_SYNC_OPTIONS_INIT;
    options.url = url;
    options.token = token;
    options.timeout_ms = 600000;
    pier_sync_report report = PIER_SYNC_REPORT_INIT;
    double t0 = now_s(), cpu0 = cpu_s();
    check_pier(pier_sync(db, &report, &options), "pier_sync");
    double elapsed = now_s() - t0, cpu = cpu_s() - cpu0;
    long peak = status_kib("VmHWM:");
    int64_t after = 0;
    check_pier(pier_db_count(db, &after, "customers"), "pier_db_count");
    check_pier(pier_db_close(db), "pier_db_close");
    pier_db_free(db);
    printf("{\"section\":\"http-sync\",\"records_before\":%" PRId64 ",\"records_after\":%" PRId64 ",\"pulled\":%" PRId64
           ",\"seconds\":%.6f,\"client_cpu_s\":%.3f,\"bytes_received\":%" PRId64 ",\"bytes_received_raw\":%" PRId64 ",\"bytes_sent\":%" PRId64
           ",\"round_trips\":%" PRId64 ",\"idle_rss_kib\":%ld,\"peak_rss_kib\":%ld}\n",
           before, after, report.pulled, elapsed, cpu, report.bytes_received, report.bytes_received_raw, report.bytes_sent,
           report.round_trips, idle, peak);
}

/* A count argument: a whole number of at least `min`, or the program stops with a message. */
static size_t count_arg(const char *text, size_t min, const char *what) {
    char *end = NULL;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || value < min || value > 100000000ULL)
        die("%s must be a whole number from %zu to 100000000, not '%s'", what, min, text);
    return (size_t)value;
}

int main(int argc, char **argv) {
    if (argc == 6 && strcmp(argv[1], "writes") == 0) {
        mode_writes(count_arg(argv[2], 1, "N"), count_arg(argv[3], 0, "SINGLES"), (int)count_arg(argv[4], 1, "ROUNDS"), argv[5]);
    } else if (argc == 5 && strcmp(argv[1], "apply") == 0) {
        mode_apply(argv[2], (int)count_arg(argv[3], 1, "ROUNDS"), argv[4]);
    } else if (argc == 5 && strcmp(argv[1], "http-sync") == 0) {
        mode_http_sync(argv[2], argv[3], argv[4]);
    } else {
        fprintf(stderr, "usage: bench_local writes N SINGLES ROUNDS DIR | apply MASTER ROUNDS DIR | http-sync URL TOKEN DB\n");
        return 2;
    }
    return 0;
}
