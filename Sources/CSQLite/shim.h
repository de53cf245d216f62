#ifndef PIER_CSQLITE_SHIM_H
#define PIER_CSQLITE_SHIM_H
/* The session extension and the pre-update hook are compiled into Debian's libsqlite3;
   their declarations in sqlite3.h are only visible with these defines. */
#ifndef SQLITE_ENABLE_SESSION
#define SQLITE_ENABLE_SESSION 1
#endif
#ifndef SQLITE_ENABLE_PREUPDATE_HOOK
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#endif
#include <sqlite3.h>

/* SQLITE_TRANSIENT is a macro casting -1 to a function pointer, which Swift cannot import. */
static inline sqlite3_destructor_type pier_sqlite_transient(void) { return SQLITE_TRANSIENT; }
/* Extended result codes are macros with shifts, which Swift does not import. */
static const int PIER_SQLITE_IOERR_DATA = SQLITE_IOERR_DATA;
static const int PIER_SQLITE_IOERR_SHORT_READ = SQLITE_IOERR_SHORT_READ;
static const int PIER_SQLITE_IOERR_WRITE = SQLITE_IOERR_WRITE;
static const int PIER_SQLITE_IOERR_FSYNC = SQLITE_IOERR_FSYNC;
/* sqlite3_log is variadic, which Swift cannot call. */
static inline void pier_sqlite_log(int code, const char *message) { sqlite3_log(code, "%s", message); }
#endif
