// push_profile: the instruction profile of pushing changes through the in-process server
// (benchmarks/COMPONENTS.md, "Where a pushed change's instructions go"). Not a timed
// benchmark: it prints the syncs' times, but its figures are callgrind's instruction
// counts, which do not depend on machine load.
//
//   scripts/build-lib
//   gcc -O2 -I include benchmarks/profile/push_profile.c -L build/lib -lpier -Wl,-rpath,$PWD/build/lib -o /tmp/push_profile
//   valgrind --tool=callgrind --instr-atstart=no /tmp/push_profile 10000 /tmp
//   callgrind_annotate --inclusive=yes callgrind.out.<pid>
//
// It puts N records into a new client store and syncs them to a new in-process server,
// then patches one field of each and syncs again; instrumentation is on only inside the two
// pier_sync calls. (The library scripts/build-lib writes to build/lib has its DWARF
// stripped already, which valgrind needs: it cannot read a Swift build's DWARF 5.)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#else
#error "push_profile needs valgrind's headers (apt-get install -y valgrind): without them --instr-atstart=no would count nothing"
#endif
#include "pier.h"

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
#define CHECK(x) do { int rc_ = (x); if (rc_ != 0) { fprintf(stderr, "%s: %d %s\n", #x, rc_, pier_errmsg()); exit(1); } } while (0)

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 10000;
    const char *dir = argc > 2 ? argv[2] : "/tmp";
    char path[512], spath[512];
    snprintf(path, sizeof path, "%s/push-profile-client.pier", dir);
    snprintf(spath, sizeof spath, "%s/push-profile-server.pier", dir);
    const char *suf[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) { char p[600]; snprintf(p, sizeof p, "%s%s", path, suf[i]); unlink(p); snprintf(p, sizeof p, "%s%s", spath, suf[i]); unlink(p); }
    pier_db *db; pier_server *server;
    CHECK(pier_db_open(&db, path, NULL));
    CHECK(pier_server_open(&server, spath, NULL));
    char id[64], body[256];
    CHECK(pier_db_begin(db));
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof id, "c%06d", i);
        int len = snprintf(body, sizeof body, "{\"name\":\"Customer %d\",\"city\":\"Oslo\",\"balance\":%d,\"notes\":\"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz\"}", i, i * 37 % 1000);
        CHECK(pier_db_put(db, "customers", id, body, len));
    }
    CHECK(pier_db_commit(db));
    pier_sync_options o = PIER_SYNC_OPTIONS_INIT;
    o.server = server;
    pier_sync_report r = PIER_SYNC_REPORT_INIT;
    double t0 = now();
    CALLGRIND_START_INSTRUMENTATION;
    CHECK(pier_sync(db, &r, &o));
    CALLGRIND_STOP_INSTRUMENTATION;
    double t1 = now();
    printf("insert push: %lld pushed, %lld pulled, %lld round trips, %.1f ms\n", (long long)r.pushed, (long long)r.pulled, (long long)r.round_trips, (t1 - t0) * 1000);
    CHECK(pier_db_begin(db));
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof id, "c%06d", i);
        CHECK(pier_db_patch(db, "customers", id, "{\"tier\":9}", 10));
    }
    CHECK(pier_db_commit(db));
    pier_sync_report r2 = PIER_SYNC_REPORT_INIT;
    t0 = now();
    CALLGRIND_START_INSTRUMENTATION;
    CHECK(pier_sync(db, &r2, &o));
    CALLGRIND_STOP_INSTRUMENTATION;
    t1 = now();
    printf("update push: %lld pushed, %lld pulled, %lld round trips, %.1f ms\n", (long long)r2.pushed, (long long)r2.pulled, (long long)r2.round_trips, (t1 - t0) * 1000);
    pier_db_close(db); pier_db_free(db);
    pier_server_close(server); pier_server_free(server);
    for (int i = 0; i < 3; i++) { char p[600]; snprintf(p, sizeof p, "%s%s", path, suf[i]); unlink(p); snprintf(p, sizeof p, "%s%s", spath, suf[i]); unlink(p); }
    return 0;
}
