/*
 * libFuzzer target: the C API's argument handling (issue 7, part 4).
 *
 * The input is a program: each step's first byte picks a pier_* call, the following bytes
 * pick its arguments from hostile shapes (NULL pointers, empty strings, strings with
 * invalid UTF-8 or embedded NUL bytes, lengths that disagree with the buffer, huge and
 * negative numbers, a closed or freed-then-reopened handle, unknown option versions and
 * modes, bodies that are not JSON objects) and from valid ones, so that calls reach deep
 * paths too. Every call must return one of the documented codes; a buffer handed out on
 * PIER_OK must be readable for its stated length and is freed with pier_free. Crashes,
 * AddressSanitizer reports and leaks are findings; so is an unknown return code.
 *
 * Each input works on its own stores in memory-backed temporary files under /dev/shm (created
 * and removed per input), so a finding reproduces from its input alone.
 *
 * libpier.so itself is the release build and carries no coverage instrumentation: the
 * fuzzer is guided by this harness's branches (which calls and which argument shapes)
 * and finds failures through the library's behaviour and AddressSanitizer's checks of
 * every buffer that crosses the API.
 */
#include <pier.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const uint8_t *data;
    size_t size, at;
} input;

static uint8_t byte(input *in) { return in->at < in->size ? in->data[in->at++] : 0; }

/* A string argument: NULL, empty, a valid name, or raw fuzzer bytes (NUL-terminated). */
static const char *text(input *in, char *buffer, size_t capacity) {
    static const char *names[] = {"jobs", "notes", "a", "0190f3c8-7d5a-7c41-9a1e-7f0e2c3b4d5e", "pier_records", "x y", "\xff\xfe"};
    uint8_t shape = byte(in) % 8;
    if (shape == 0) return NULL;
    if (shape == 1) return "";
    if (shape < 6) return names[byte(in) % (sizeof names / sizeof *names)];
    size_t n = byte(in) % (capacity - 1);
    for (size_t i = 0; i < n; i++) buffer[i] = (char)byte(in);
    buffer[n] = 0;
    return buffer;
}

/* A body argument and its length, which may disagree with the text on purpose (shorter). */
static const char *body(input *in, char *buffer, size_t capacity, size_t *length) {
    static const char *bodies[] = {"{\"a\":1}", "{\"a\":{\"b\":[1,2,{}]},\"c\":null}", "[]", "1", "{", "{\"a\":1}x", "{\"\\ud800\":1}", ""};
    uint8_t shape = byte(in) % 6;
    const char *out;
    if (shape == 0) {
        *length = byte(in);
        return NULL;
    }
    if (shape < 4) {
        out = bodies[byte(in) % (sizeof bodies / sizeof *bodies)];
    } else {
        size_t n = byte(in) % (capacity - 1);
        for (size_t i = 0; i < n; i++) buffer[i] = (char)byte(in);
        buffer[n] = 0;
        out = buffer;
    }
    size_t real = strlen(out);
    *length = (byte(in) % 4 == 0 && real > 0) ? byte(in) % real : real;
    return out;
}

static int64_t number(input *in) {
    static const int64_t edges[] = {0, 1, -1, INT64_MAX, INT64_MIN, 1000, -1000};
    return byte(in) % 2 ? edges[byte(in) % 7] : (int64_t)byte(in) - 16;
}

static void check(int rc, const char *call) {
    /* Documented codes are 0 and -1 ... -20 (PIER_OK ... PIER_ECANCELLED). */
    if (rc > 0 || rc < -20) {
        fprintf(stderr, "%s returned an unknown code %d\n", call, rc);
        abort();
    }
    if (pier_errmsg() == NULL) {
        fprintf(stderr, "%s: pier_errmsg returned NULL\n", call);
        abort();
    }
}

/* Touches every byte of a returned buffer (AddressSanitizer checks the length) and frees it. */
static void consume(int rc, void *buffer, size_t length) {
    if (rc == PIER_OK && buffer != NULL) {
        volatile uint8_t sum = 0;
        for (size_t i = 0; i < length; i++) sum ^= ((uint8_t *)buffer)[i];
        (void)sum;
    }
    pier_free(buffer);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    input in = {data, size, 0};
    char dir[] = "/dev/shm/pier-fuzz-capi-XXXXXX";  /* memory-backed: no fsync cost per input */
    if (!mkdtemp(dir)) return 0;
    char path[128], server_path[128];
    snprintf(path, sizeof path, "%s/device.pier", dir);
    snprintf(server_path, sizeof server_path, "%s/server.pier", dir);

    pier_db *db = NULL;
    pier_open_options options = PIER_OPEN_OPTIONS_INIT;
    options.durability = byte(&in) % 3;
    options.max_body_bytes = byte(&in) % 3 == 0 ? 16 : 0;
    check(pier_db_open(&db, path, &options), "pier_db_open");
    pier_server *server = NULL;
    check(pier_server_open(&server, server_path, byte(&in) % 2 ? NULL : "{\"collections\":{\"jobs\":{\"policy\":\"manual\"}}}"),
          "pier_server_open");

    char a[64], b[64], c[64], body_buffer[256];
    for (int step = 0; step < 24 && in.at < in.size; step++) {
        const char *collection = text(&in, a, sizeof a);
        const char *id = text(&in, b, sizeof b);
        size_t length = 0;
        char *out = NULL;
        size_t out_len = 0;
        int rc;
        switch (byte(&in) % 22) {
        case 0: {
            const char *value = body(&in, body_buffer, sizeof body_buffer, &length);
            check(pier_db_put(db, collection, id, value, length), "pier_db_put");
            break;
        }
        case 1: {
            const char *value = body(&in, body_buffer, sizeof body_buffer, &length);
            check(pier_db_put_scoped(db, collection, id, text(&in, c, sizeof c), value, length), "pier_db_put_scoped");
            break;
        }
        case 2: {
            const char *ids[3] = {id, "m1", byte(&in) % 2 ? NULL : "m2"};
            const char *bodies[3] = {"{}", "{\"n\":1}", byte(&in) % 2 ? NULL : "nope"};
            size_t lengths[3] = {2, 7, byte(&in) % 2 ? 4 : 400};
            size_t count = byte(&in) % 4;
            check(pier_db_put_many(db, collection, byte(&in) % 5 ? ids : NULL, byte(&in) % 5 ? bodies : NULL,
                                   byte(&in) % 5 ? lengths : NULL, count),
                  "pier_db_put_many");
            break;
        }
        case 3: {
            const char *value = body(&in, body_buffer, sizeof body_buffer, &length);
            check(pier_db_patch(db, collection, id, value, length), "pier_db_patch");
            break;
        }
        case 4:
            rc = pier_db_get(db, byte(&in) % 8 ? &out : NULL, byte(&in) % 8 ? &out_len : NULL, collection, id);
            check(rc, "pier_db_get");
            consume(rc, out, out_len);
            break;
        case 5: check(pier_db_delete(db, collection, id), "pier_db_delete"); break;
        case 6:
            rc = pier_db_list(db, &out, byte(&in) % 8 ? &out_len : NULL, collection, id, (size_t)number(&in));
            check(rc, "pier_db_list");
            consume(rc, out, out_len);
            break;
        case 7: {
            int64_t count = 0;
            check(pier_db_count(db, byte(&in) % 8 ? &count : NULL, collection), "pier_db_count");
            break;
        }
        case 8: {
            static const char *sql[] = {"SELECT id FROM jobs", "SELECT * FROM pier_records", "DELETE FROM jobs", "SELECT ?1, ?2",
                                        "SELECT json_extract(body, '$.a') FROM notes WHERE id = ?", "ATTACH 'x' AS y", "PRAGMA writable_schema=1"};
            static const char *params[] = {NULL, "[]", "[1,\"a\",null,2.5]", "{}", "[", "[[1]]"};
            const char *statement = byte(&in) % 4 ? sql[byte(&in) % 7] : text(&in, c, sizeof c);
            rc = pier_db_query(db, &out, &out_len, statement, params[byte(&in) % 6]);
            check(rc, "pier_db_query");
            consume(rc, out, out_len);
            break;
        }
        case 9: check(pier_db_create_index(db, collection, text(&in, c, sizeof c)), "pier_db_create_index"); break;
        case 10: check(pier_db_begin(db), "pier_db_begin"); break;
        case 11: check(byte(&in) % 2 ? pier_db_commit(db) : pier_db_rollback(db), "pier_db_commit/rollback"); break;
        case 12: {
            int state = 0;
            check(pier_db_state(db, byte(&in) % 8 ? &state : NULL, collection, id), "pier_db_state");
            rc = pier_db_metadata(db, &out, &out_len, collection, id);
            check(rc, "pier_db_metadata");
            consume(rc, out, out_len);
            break;
        }
        case 13:
            rc = pier_db_info(db, &out, &out_len);
            check(rc, "pier_db_info");
            consume(rc, out, out_len);
            rc = pier_db_client_id(db, &out);
            check(rc, "pier_db_client_id");
            consume(rc, out, out ? strlen(out) : 0);
            break;
        case 14:
            check(pier_db_set_collection_mode(db, collection, (int)number(&in), byte(&in) % 3), "pier_db_set_collection_mode");
            break;
        case 15: {
            pier_sync_options sync = PIER_SYNC_OPTIONS_INIT;
            uint8_t shape = byte(&in) % 6;
            if (shape == 0) sync.version = (unsigned)number(&in);
            if (shape <= 3) sync.server = server;
            if (shape == 4) sync.url = text(&in, c, sizeof c);
            sync.max_batch_changes = byte(&in) % 4;
            sync.pull_max_records = byte(&in) % 3;
            pier_sync_report report = PIER_SYNC_REPORT_INIT;
            check(pier_sync(db, byte(&in) % 8 ? &report : NULL, byte(&in) % 8 ? &sync : NULL), "pier_sync");
            break;
        }
        case 16:
            rc = pier_db_conflicts(db, &out, &out_len);
            check(rc, "pier_db_conflicts");
            consume(rc, out, out_len);
            break;
        case 17: {
            const char *value = body(&in, body_buffer, sizeof body_buffer, &length);
            check(pier_db_resolve(db, text(&in, c, sizeof c), (int)number(&in), value, length), "pier_db_resolve");
            break;
        }
        case 18: {
            unsigned char *frame = NULL;
            size_t frame_len = 0;
            size_t n = byte(&in);
            unsigned char request[256];
            for (size_t i = 0; i < n; i++) request[i] = byte(&in);
            rc = pier_server_handle(server, byte(&in) % 8 ? &frame : NULL, &frame_len, byte(&in) % 8 ? request : NULL, n, NULL);
            check(rc, "pier_server_handle");
            consume(rc, frame, frame_len);
            break;
        }
        case 19:
            rc = pier_server_log(server, &out, &out_len, byte(&in) % 2 ? NULL : text(&in, c, sizeof c));
            check(rc, "pier_server_log");
            consume(rc, out, out_len);
            rc = pier_server_conflicts(server, &out, &out_len, collection, byte(&in) % 2);
            check(rc, "pier_server_conflicts");
            consume(rc, out, out_len);
            break;
        case 20:
            /* Close, then keep using the handle: every call must be PIER_ECLOSED, not a crash. */
            check(pier_db_close(db), "pier_db_close");
            if (byte(&in) % 2) {
                pier_db_free(db);
                db = NULL;
                check(pier_db_open(&db, path, byte(&in) % 2 ? &options : NULL), "pier_db_open (again)");
            }
            break;
        case 21: {
            char uuid[PIER_UUID_BUFFER_SIZE];
            check(pier_uuid7(byte(&in) % 8 ? uuid : NULL), "pier_uuid7");
            (void)pier_errname((int)number(&in));
            (void)pier_errstr((int)number(&in));
            break;
        }
        }
    }
    pier_db_free(db);
    pier_server_free(server);
    char command[160];
    snprintf(command, sizeof command, "%s/device.pier", dir);
    for (const char *suffix = ""; suffix; suffix = (*suffix == 0) ? "-wal" : (strcmp(suffix, "-wal") == 0 ? "-shm" : NULL)) {
        snprintf(command, sizeof command, "%s/device.pier%s", dir, suffix);
        unlink(command);
        snprintf(command, sizeof command, "%s/server.pier%s", dir, suffix);
        unlink(command);
    }
    rmdir(dir);
    return 0;
}
