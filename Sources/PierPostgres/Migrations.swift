import PierStore
import PostgresNIO

/// The tables of one Pier schema, qualified by the schema name.
struct Names: Sendable {
    let schema: String
    let meta, records, clients, batches, log, conflicts, schemaTable: String
    /// Advisory-lock spaces (first key of `pg_advisory_xact_lock(int, int)`, hashed in SQL).
    let recordLocks, clientLocks, migrationLock: String

    init(schema: String) {
        self.schema = schema
        let q = "\"\(schema)\"."
        meta = q + "pier_meta"
        records = q + "records"
        clients = q + "clients"
        batches = q + "batches"
        log = q + "business_log"
        conflicts = q + "conflicts"
        schemaTable = q + "pier_schema"
        recordLocks = "pier.records:" + schema
        clientLocks = "pier.clients:" + schema
        migrationLock = "pier.migrate:" + schema
    }

    /// A schema name Pier accepts: an unquoted-identifier shape, so it needs no escaping.
    static func isValid(_ schema: String) -> Bool {
        let bytes = Array(schema.utf8)
        guard (1...63).contains(bytes.count) else { return false }
        for (index, byte) in bytes.enumerated() {
            let letter = (byte >= 0x61 && byte <= 0x7a) || (byte >= 0x41 && byte <= 0x5a) || byte == 0x5f
            let digit = byte >= 0x30 && byte <= 0x39
            if !(letter || (digit && index > 0)) { return false }
        }
        return true
    }
}

/// Forward migrations of the PostgreSQL master schema.
///
/// `pier_schema` holds one row per migration applied. Migrations run at open, in one
/// transaction under an advisory lock keyed by the schema name, so two processes opening
/// the same schema at once neither both migrate nor see a half-made schema.
enum Migrations {
    /// Statements of each migration; migration n is `all[n - 1]`.
    static func all(_ n: Names) -> [[String]] {
        [[
            // The version counter and the purge horizon. The counter row is the version
            // lock: a writer holds it from its first version to its commit.
            "CREATE TABLE \(n.meta)(key text PRIMARY KEY, value bigint NOT NULL)",
            "INSERT INTO \(n.meta) VALUES ('version', 0), ('purge_horizon', 0)",
            // Bodies are bytea, not jsonb: a body comes back byte for byte as the client sent it.
            """
            CREATE TABLE \(n.records)(
                collection text NOT NULL,
                id         text NOT NULL,
                scope      text NOT NULL,
                version    bigint NOT NULL,
                hlc        bigint NOT NULL,
                client_id  text NOT NULL,
                deleted    boolean NOT NULL,
                body       bytea,
                field_meta bytea,
                updated_at bigint NOT NULL,
                PRIMARY KEY (collection, id)
            )
            """,
            "CREATE UNIQUE INDEX records_by_version ON \(n.records)(version)",
            """
            CREATE TABLE \(n.clients)(
                client_id    text PRIMARY KEY,
                user_name    text NOT NULL,
                first_seen   bigint NOT NULL,
                last_seen    bigint NOT NULL,
                acked_cursor bigint NOT NULL
            )
            """,
            """
            CREATE TABLE \(n.batches)(
                client_id  text NOT NULL,
                batch_seq  bigint NOT NULL,
                results    bytea NOT NULL,
                created_at bigint NOT NULL,
                PRIMARY KEY (client_id, batch_seq)
            )
            """,
            """
            CREATE TABLE \(n.log)(
                seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                server_time  bigint NOT NULL,
                client_id    text NOT NULL,
                user_name    text NOT NULL,
                collection   text NOT NULL,
                record_id    text NOT NULL,
                op           text NOT NULL,
                outcome      text NOT NULL,
                base_version bigint NOT NULL,
                new_version  bigint NOT NULL,
                client_hlc   bigint NOT NULL,
                detail       text NOT NULL
            )
            """,
            "CREATE INDEX business_log_record ON \(n.log)(collection, record_id)",
            // conflict_id in byte order ("C"), as SQLite compares it: paging is
            // (created_at, conflict_id) descending.
            """
            CREATE TABLE \(n.conflicts)(
                conflict_id      text COLLATE "C" PRIMARY KEY,
                collection       text NOT NULL,
                record_id        text NOT NULL,
                client_id        text NOT NULL,
                user_name        text NOT NULL,
                base_version     bigint NOT NULL,
                server_version   bigint NOT NULL,
                client_body      bytea,
                server_body      bytea,
                client_deleted   boolean NOT NULL,
                server_deleted   boolean NOT NULL,
                created_at       bigint NOT NULL,
                status           text NOT NULL,
                resolved_version bigint NOT NULL
            )
            """,
            "CREATE INDEX conflicts_open ON \(n.conflicts)(collection, record_id) WHERE status = 'open'",
            "CREATE INDEX conflicts_by_time ON \(n.conflicts)(created_at, conflict_id)",
        ]]
    }

    /// The newest schema version this Pier writes.
    static var latest: Int { all(Names(schema: "x")).count }

    /// Brings `names.schema` to the latest version, creating it when missing.
    static func run(_ session: Session, _ n: Names) throws(PierError) {
        let doing = "preparing the schema \(n.schema)"
        try session.rows("BEGIN", doing)
        do throws(PierError) {
            try session.rows("SELECT pg_advisory_xact_lock(hashtext(\(n.migrationLock)), 0)", doing)
            let probe = try session.rows("""
                SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = \(n.schema)),
                       to_regclass(\(n.schemaTable)) IS NOT NULL,
                       (SELECT count(*) FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = \(n.schema))
                """, doing)
            let row = Columns(try probe.first.unwrap(doing))
            let schemaExists = try row.bool(0)
            let versioned = try row.bool(1)
            let objects = try row.int(2)
            if !versioned && objects > 0 {
                throw PierError(.notADatabase, "PostgreSQL schema \(n.schema) holds \(objects) objects but no pier_schema table: it is not a Pier master store, and Pier leaves it untouched; pick another schema")
            }
            if !schemaExists {
                try session.rows(PostgresQuery(unsafeSQL: "CREATE SCHEMA \"\(n.schema)\""), doing)
            }
            if !versioned {
                try session.rows(PostgresQuery(unsafeSQL: """
                    CREATE TABLE \(n.schemaTable)(
                        version    integer PRIMARY KEY,
                        applied_at timestamptz NOT NULL DEFAULT now()
                    )
                    """), doing)
            }
            let current = try Columns(try session.rows(PostgresQuery(unsafeSQL: "SELECT coalesce(max(version), 0)::bigint FROM \(n.schemaTable)"), doing)
                .first.unwrap(doing)).int(0)
            let migrations = all(n)
            if current > Int64(migrations.count) {
                throw PierError(.version, "PostgreSQL schema \(n.schema) is at version \(current), written by a newer Pier; this one supports up to \(migrations.count)")
            }
            for version in Int(current) ..< migrations.count {
                for statement in migrations[version] {
                    try session.rows(PostgresQuery(unsafeSQL: statement), "migrating \(n.schema) to version \(version + 1)")
                }
                try session.rows("INSERT INTO \(unescaped: n.schemaTable)(version) VALUES (\(version + 1))", doing)
            }
            try session.rows("COMMIT", doing)
        } catch {
            if !session.lost { _ = try? session.rows("ROLLBACK", doing) }
            throw error
        }
    }
}

extension Optional {
    /// The value, or `.internalError` when a query that always returns a row returned none.
    func unwrap(_ doing: String) throws(PierError) -> Wrapped {
        guard let self else { throw PierError(.internalError, "PostgreSQL returned no row while \(doing)") }
        return self
    }
}
