/// The on-disk layout of a client store and its forward migrations.
///
/// A store is recognised by `PRAGMA application_id = 0x50494552` ("PIER") and the
/// `pier_meta` row `schema_version`. Migrations only ever move forward; a store written
/// by a newer Pier is refused with `PIER_EVERSION` instead of being guessed at.
enum Schema {
    static let applicationID: Int32 = 0x5049_4552
    /// The schema this library writes. Bump it and append to `migrations` together.
    static var currentVersion: Int { migrations.count }

    /// `migrations[i]` moves a store from version `i` to `i + 1`.
    static let migrations: [String] = [
        // 0 -> 1: the first layout.
        """
        CREATE TABLE pier_meta(
            key TEXT PRIMARY KEY NOT NULL,
            value
        ) WITHOUT ROWID;

        CREATE TABLE pier_records(
            collection     TEXT NOT NULL,
            id             TEXT NOT NULL,
            body           JSONTEXT CHECK (body IS NULL OR json_type(body) = 'object'),
            scope          TEXT NOT NULL,
            is_from_server INTEGER NOT NULL DEFAULT 0,
            is_modified    INTEGER NOT NULL DEFAULT 0,
            is_active      INTEGER NOT NULL DEFAULT 1,
            base_version   INTEGER NOT NULL DEFAULT 0,
            hlc            INTEGER NOT NULL DEFAULT 0,
            local_seq      INTEGER NOT NULL DEFAULT 0,
            changed_fields TEXT,
            server_body    JSONTEXT,
            server_version INTEGER NOT NULL DEFAULT 0,
            sync_state     INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (collection, id)
        ) WITHOUT ROWID;

        -- The outbox: local edits not yet acknowledged, in local commit order.
        CREATE INDEX pier_records_outbox ON pier_records(local_seq) WHERE is_modified = 1;

        -- The documented, queryable view: live records only.
        CREATE VIEW records AS
            SELECT collection, id, body, scope,
                   CASE sync_state WHEN 0 THEN 'synced' WHEN 1 THEN 'pending'
                                   WHEN 2 THEN 'conflicted' ELSE 'rejected' END AS sync_state,
                   server_version AS version, hlc, local_seq
            FROM pier_records WHERE is_active = 1;
        """,
        // 1 -> 2: sync state.
        """
        -- Set while a resync re-pulls everything; rows still marked at its end were deleted
        -- on the server and their tombstones purged.
        ALTER TABLE pier_records ADD COLUMN resync_mark INTEGER NOT NULL DEFAULT 0;

        -- Conflicts waiting for a resolution: local, server and base copies.
        CREATE TABLE pier_conflicts(
            conflict_id    TEXT PRIMARY KEY NOT NULL,
            collection     TEXT NOT NULL,
            id             TEXT NOT NULL,
            local_body     JSONTEXT,
            server_body    JSONTEXT,
            base_body      JSONTEXT,
            local_deleted  INTEGER NOT NULL DEFAULT 0,
            server_deleted INTEGER NOT NULL DEFAULT 0,
            base_version   INTEGER NOT NULL DEFAULT 0,
            server_version INTEGER NOT NULL DEFAULT 0,
            server_hlc     INTEGER NOT NULL DEFAULT 0,
            created_at     INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE UNIQUE INDEX pier_conflicts_record ON pier_conflicts(collection, id);

        -- Per-collection sync modes (absent = two-way).
        CREATE TABLE pier_collections(
            name             TEXT PRIMARY KEY NOT NULL,
            mode             INTEGER NOT NULL,
            purge_after_push INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID;

        -- The push batch sent and not yet answered: resent as it is after a lost reply, so
        -- the server recognises it by its batch_seq and nothing applies twice.
        CREATE TABLE pier_inflight(
            batch_seq INTEGER PRIMARY KEY,
            request   BLOB NOT NULL
        );
        CREATE TABLE pier_inflight_items(
            idx        INTEGER PRIMARY KEY,
            collection TEXT NOT NULL,
            id         TEXT NOT NULL,
            local_seq  INTEGER NOT NULL,
            op         INTEGER NOT NULL,
            body       JSONTEXT
        );
        INSERT OR IGNORE INTO pier_meta(key, value) VALUES ('resync', 0);
        """,
    ]

    /// Steps that SQL alone cannot express, run after the SQL of the same migration.
    static func afterMigration(_ version: Int, _ c: Connection) throws(PierError) {
        if version == 2 {
            // Bodies are validated in Swift (JSONValidator) on every write, in one pass
            // with the UTF-8 check; the CHECK constraint made SQLite parse every body a
            // second time. Removing a CHECK constraint does not change the stored format,
            // so SQLite documents editing the schema text for it (lang_altertable.html,
            // "writable_schema"); schema_version is bumped so every connection reloads.
            let version = try c.prepare("PRAGMA schema_version")
            let current = try version.step() ? version.int64(0) : 0
            version.reset()
            try c.execute("""
                PRAGMA writable_schema = ON;
                UPDATE sqlite_master SET sql = replace(sql, ' CHECK (body IS NULL OR json_type(body) = ''object'')', '')
                    WHERE type = 'table' AND name = 'pier_records';
                PRAGMA schema_version = \(current + 1);
                PRAGMA writable_schema = OFF;
                """)
        }
    }

    /// Meta keys.
    enum Key {
        static let schemaVersion = "schema_version"
        static let clientID = "client_id"
        static let createdAt = "created_at"
        static let pullCursor = "pull_cursor"
        static let pushBatchSeq = "push_batch_seq"
        static let hlc = "hlc"
        static let localSeq = "local_seq"
    }
}
