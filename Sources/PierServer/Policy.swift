public import PierStore
import PierWire

/// How the server settles a change whose base version is not the record's current
/// version (the server copy changed since the client last saw it). DESIGN.md section 6.
public enum ConflictPolicy: String, Sendable, CaseIterable {
    /// The newer HLC wins (clamped by the drift bound); the loser is `superseded`.
    case lastWriteWins = "last_write_wins"
    /// The later arrival at the server wins.
    case arrivalWins = "arrival_wins"
    /// The server copy stands; the change is `rejected`.
    case firstWriteWins = "first_write_wins"
    /// The change is applied.
    case clientWins = "client_wins"
    /// Three-way merge of top-level fields; fields changed on both sides follow the
    /// field's policy (last-write-wins by default).
    case mergeFields = "merge_fields"
    /// A conflict is registered and returned; the user resolves it.
    case manual
    /// A server-side resolver decides.
    case custom
}

/// What happens when one side deleted the record and the other updated it.
public enum UpdateDeletePolicy: String, Sendable, CaseIterable {
    case updateWins = "update_wins"
    case deleteWins = "delete_wins"
    case manual
}

/// The policy of one collection.
public struct CollectionPolicy: Sendable {
    public var policy: ConflictPolicy
    /// For `merge_fields`: the policy of a field changed on both sides (default
    /// last-write-wins). Allowed: last_write_wins, first_write_wins, client_wins, manual.
    public var fieldPolicies: [String: ConflictPolicy]
    public var updateDelete: UpdateDeletePolicy
    /// Reference data everybody may read, whatever their scopes.
    public var readableByAll: Bool

    public init(_ policy: ConflictPolicy = .lastWriteWins, fieldPolicies: [String: ConflictPolicy] = [:],
                updateDelete: UpdateDeletePolicy = .updateWins, readableByAll: Bool = false) {
        self.policy = policy
        self.fieldPolicies = fieldPolicies
        self.updateDelete = updateDelete
        self.readableByAll = readableByAll
    }
}

/// What a custom resolver sees.
public struct ResolverInput: Sendable {
    public var collection: String
    public var id: String
    /// The pushed body (nil for a delete).
    public var clientBody: [UInt8]?
    /// The current server copy (nil when deleted on the server).
    public var serverBody: [UInt8]?
    public var baseVersion: Int64
    public var serverVersion: Int64
    public var clientHLC: HLC
    public var serverHLC: HLC
    public var clientID: String
    public var user: String
}

/// A custom resolver's decision.
public enum ResolverDecision: Sendable, Equatable {
    /// Keep this body (the client's, the server's, or a new one).
    case keep([UInt8])
    /// Keep the server copy as it is; the change is `superseded`.
    case keepServer
    /// Refuse the change with a reason.
    case reject(String)
    /// Register a conflict for the user.
    case manual
}

public typealias Resolver = @Sendable (ResolverInput) -> ResolverDecision

/// Server configuration: collection policies and limits.
public struct ServerConfig: Sendable {
    public var defaultPolicy = CollectionPolicy()
    public var collections: [String: CollectionPolicy] = [:]
    /// Custom resolvers by collection (for collections whose policy is `custom`).
    public var resolvers: [String: Resolver] = [:]
    /// How far ahead of the server's clock a client HLC may be (milliseconds).
    public var driftBoundMilliseconds: Int64 = 60_000
    /// Most changes accepted in one batch.
    public var maxBatchChanges = 5_000
    /// Most records and bytes returned by one pull page.
    public var maxPullRecords = 10_000
    public var maxPullBytes = 8 << 20
    /// Largest request frame accepted.
    public var maxFrameBytes = 32 << 20
    /// Largest record body accepted.
    public var maxBodyBytes = 1 << 20
    /// Tombstones younger than this are never purged (milliseconds).
    public var tombstoneHorizonMilliseconds: Int64 = 7 * 24 * 3_600_000
    /// Clients not seen for this long no longer hold tombstones back (milliseconds).
    public var activeClientWindowMilliseconds: Int64 = 30 * 24 * 3_600_000
    /// The DEFLATE level of response frames, 0 (never compress) to 9. Lower levels cost the
    /// server less CPU per page and send more bytes (docs/SERVER.md, "Pull prefetch and
    /// compression").
    public var compressionLevel = EncodeOptions.defaultCompressionLevel
    /// Background threads preparing the next page of a long pull while the client
    /// applies the current one; 0 turns the pull prefetch off.
    public var pullPrefetchThreads = 1
    /// Most pages prepared ahead at once (one per client at most).
    public var pullPrefetchMaxPages = 64
    /// Most memory held by pages prepared ahead.
    public var pullPrefetchMaxBytes = 128 << 20
    /// A page prepared ahead and not asked for within this time is dropped (milliseconds).
    public var pullPrefetchTimeToLiveMilliseconds: Int64 = 30_000
    /// The longest `pullPrefetchTimeToLiveMilliseconds` accepted (one day).
    public static let maxPrefetchTimeToLiveMilliseconds: Int64 = 86_400_000

    public init() {}

    public func policy(for collection: String) -> CollectionPolicy {
        collections[collection] ?? defaultPolicy
    }
}

extension ServerConfig {
    /// Parses a configuration file (JSON):
    ///
    /// ```json
    /// { "default_policy": "last_write_wins",
    ///   "drift_bound_ms": 60000, "max_batch_changes": 5000, "max_body_bytes": 1048576,
    ///   "tombstone_horizon_ms": 604800000, "compression_level": 6, "pull_prefetch_threads": 1,
    ///   "collections": {
    ///     "customers": { "policy": "manual" },
    ///     "jobs": { "policy": "merge_fields", "fields": { "status": "manual" }, "update_delete": "delete_wins" },
    ///     "prices": { "policy": "first_write_wins", "readable_by_all": true } } }
    /// ```
    /// Unknown keys and values are errors, so a typo never silently falls back to a default.
    public static func parse(json: String) throws(PierError) -> ServerConfig {
        let bytes = Array(json.utf8)
        let root: JSONObject
        do { root = try JSONObject(parsing: bytes) } catch {
            throw PierError(.invalid, "server configuration is not a JSON object: \(error.message)")
        }
        var config = ServerConfig()
        for member in root.members {
            switch member.key {
            case "default_policy":
                config.defaultPolicy.policy = try policyValue(member.value, "default_policy")
            case "default_update_delete":
                config.defaultPolicy.updateDelete = try updateDeleteValue(member.value, "default_update_delete")
            case "drift_bound_ms": config.driftBoundMilliseconds = try integer(member.value, member.key)
            case "max_batch_changes": config.maxBatchChanges = Int(try integer(member.value, member.key))
            case "max_pull_records": config.maxPullRecords = Int(try integer(member.value, member.key))
            case "max_pull_bytes": config.maxPullBytes = Int(try integer(member.value, member.key))
            case "max_frame_bytes": config.maxFrameBytes = Int(try integer(member.value, member.key))
            case "max_body_bytes": config.maxBodyBytes = Int(try integer(member.value, member.key))
            case "tombstone_horizon_ms": config.tombstoneHorizonMilliseconds = try integer(member.value, member.key)
            case "active_client_window_ms": config.activeClientWindowMilliseconds = try integer(member.value, member.key)
            case "compression_level":
                let level = try integer(member.value, member.key)
                guard level <= 9 else { throw PierError(.invalid, "compression_level must be 0 (never compress) to 9") }
                config.compressionLevel = Int(level)
            case "pull_prefetch_threads":
                let threads = try integer(member.value, member.key)
                guard threads <= 64 else { throw PierError(.invalid, "pull_prefetch_threads must be 0 (off) to 64") }
                config.pullPrefetchThreads = Int(threads)
            case "pull_prefetch_max_pages": config.pullPrefetchMaxPages = Int(try integer(member.value, member.key))
            case "pull_prefetch_max_bytes": config.pullPrefetchMaxBytes = Int(try integer(member.value, member.key))
            case "pull_prefetch_ttl_ms":
                let ttl = try integer(member.value, member.key)
                guard ttl <= maxPrefetchTimeToLiveMilliseconds else {
                    throw PierError(.invalid, "pull_prefetch_ttl_ms must be at most \(maxPrefetchTimeToLiveMilliseconds) (one day)")
                }
                config.pullPrefetchTimeToLiveMilliseconds = ttl
            case "collections":
                let collections: JSONObject
                do { collections = try JSONObject(parsing: member.value) } catch {
                    throw PierError(.invalid, "collections must be an object of collection name to policy")
                }
                for entry in collections.members {
                    config.collections[entry.key] = try collectionPolicy(entry.value, entry.key)
                }
            default:
                throw PierError(.invalid, "unknown server configuration key \(member.key.debugDescription)")
            }
        }
        return config
    }

    private static func collectionPolicy(_ value: [UInt8], _ name: String) throws(PierError) -> CollectionPolicy {
        let object: JSONObject
        do { object = try JSONObject(parsing: value) } catch {
            throw PierError(.invalid, "collection \(name.debugDescription): expected an object such as {\"policy\": \"manual\"}")
        }
        var policy = CollectionPolicy()
        for member in object.members {
            let context = "collections.\(name).\(member.key)"
            switch member.key {
            case "policy": policy.policy = try policyValue(member.value, context)
            case "update_delete": policy.updateDelete = try updateDeleteValue(member.value, context)
            case "readable_by_all": policy.readableByAll = try boolean(member.value, context)
            case "fields":
                let fields: JSONObject
                do { fields = try JSONObject(parsing: member.value) } catch {
                    throw PierError(.invalid, "\(context) must be an object of field name to policy")
                }
                for field in fields.members {
                    let fieldPolicy = try policyValue(field.value, "\(context).\(field.key)")
                    guard [.lastWriteWins, .firstWriteWins, .clientWins, .manual].contains(fieldPolicy) else {
                        throw PierError(.invalid, "\(context).\(field.key): a field policy must be last_write_wins, first_write_wins, client_wins or manual")
                    }
                    policy.fieldPolicies[field.key] = fieldPolicy
                }
            default:
                throw PierError(.invalid, "unknown key \(member.key.debugDescription) in collection \(name.debugDescription)")
            }
        }
        return policy
    }

    private static func stringValue(_ value: [UInt8], _ context: String) throws(PierError) -> String {
        var scanner = JSONScanner(bytes: value, maxDepth: 2)
        guard let text = try? scanner.string(), scanner.atEnd else {
            throw PierError(.invalid, "\(context) must be a string")
        }
        return text
    }

    private static func policyValue(_ value: [UInt8], _ context: String) throws(PierError) -> ConflictPolicy {
        let text = try stringValue(value, context)
        guard let policy = ConflictPolicy(rawValue: text) else {
            throw PierError(.invalid, "\(context): unknown policy \(text.debugDescription); use one of \(ConflictPolicy.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return policy
    }

    private static func updateDeleteValue(_ value: [UInt8], _ context: String) throws(PierError) -> UpdateDeletePolicy {
        let text = try stringValue(value, context)
        guard let policy = UpdateDeletePolicy(rawValue: text) else {
            throw PierError(.invalid, "\(context): unknown update/delete rule \(text.debugDescription); use update_wins, delete_wins or manual")
        }
        return policy
    }

    private static func integer(_ value: [UInt8], _ context: String) throws(PierError) -> Int64 {
        guard let text = String(validating: value, as: UTF8.self), let number = Int64(text), number >= 0 else {
            throw PierError(.invalid, "\(context) must be a non-negative integer")
        }
        return number
    }

    private static func boolean(_ value: [UInt8], _ context: String) throws(PierError) -> Bool {
        switch String(decoding: value, as: UTF8.self) {
        case "true": return true
        case "false": return false
        default: throw PierError(.invalid, "\(context) must be true or false")
        }
    }
}

/// Who is syncing, as the transport verified it (a JWT, an API key, or the embedding app).
public struct Identity: Sendable, Equatable {
    public var user: String
    /// Scopes the user may read; nil means every scope.
    public var readScopes: Set<String>?
    /// Scopes the user may write; nil means every scope.
    public var writeScopes: Set<String>?
    public var isAdmin: Bool

    public init(user: String, readScopes: Set<String>? = nil, writeScopes: Set<String>? = nil, isAdmin: Bool = false) {
        self.user = user
        self.readScopes = readScopes
        self.writeScopes = writeScopes
        self.isAdmin = isAdmin
    }

    /// A trusted identity with access to every scope (embedded servers, tests).
    public static func trusted(_ user: String = "local") -> Identity { Identity(user: user, isAdmin: true) }

    public func canRead(_ scope: String) -> Bool { readScopes?.contains(scope) ?? true }
    public func canWrite(_ scope: String) -> Bool { writeScopes?.contains(scope) ?? true }
}

extension LogFilter {
    /// Parses a filter given as JSON: any of collection, record_id, client_id, outcome,
    /// since, until, after_seq, limit.
    public static func parse(json: String) throws(PierError) -> LogFilter {
        let object: JSONObject
        do { object = try JSONObject(parsing: Array(json.utf8)) } catch {
            throw PierError(.invalid, "the log filter must be a JSON object: \(error.message)")
        }
        var filter = LogFilter()
        for member in object.members {
            var scanner = JSONScanner(bytes: member.value, maxDepth: 2)
            func text() throws(PierError) -> String {
                guard let value = try? scanner.string(), scanner.atEnd else { throw PierError(.invalid, "log filter \(member.key) must be a string") }
                return value
            }
            func number() throws(PierError) -> Int64 {
                guard let value = Int64(String(decoding: member.value, as: UTF8.self)) else {
                    throw PierError(.invalid, "log filter \(member.key) must be an integer")
                }
                return value
            }
            switch member.key {
            case "collection": filter.collection = try text()
            case "record_id": filter.recordID = try text()
            case "client_id": filter.clientID = try text()
            case "outcome": filter.outcome = try text()
            case "since": filter.since = try number()
            case "until": filter.until = try number()
            case "after_seq": filter.afterSeq = try number()
            case "limit":
                let limit = try number()
                guard limit >= 0 && limit <= 100_000 else { throw PierError(.invalid, "log filter limit must be 0-100000") }
                filter.limit = Int(limit)
            default: throw PierError(.invalid, "unknown log filter key \(member.key.debugDescription)")
            }
        }
        return filter
    }
}

extension LogEntry {
    public var json: JSONWriter {
        var out = JSONWriter()
        out.raw("{"); out.key("seq"); out.number(seq)
        out.raw(","); out.key("server_time"); out.number(serverTime)
        out.raw(","); out.key("client_id"); out.string(clientID)
        out.raw(","); out.key("user"); out.string(user)
        out.raw(","); out.key("collection"); out.string(collection)
        out.raw(","); out.key("record_id"); out.string(recordID)
        out.raw(","); out.key("op"); out.string(op)
        out.raw(","); out.key("outcome"); out.string(outcome)
        out.raw(","); out.key("base_version"); out.number(baseVersion)
        out.raw(","); out.key("new_version"); out.number(newVersion)
        out.raw(","); out.key("client_hlc"); out.number(clientHLC)
        out.raw(","); out.key("detail"); out.string(detail)
        out.raw("}")
        return out
    }
}

extension ServerConflict {
    public var json: JSONWriter {
        var out = JSONWriter()
        func body(_ bytes: [UInt8]?) { if let bytes { bytes.withUnsafeBytes { out.rawJSON($0) } } else { out.null() } }
        out.raw("{"); out.key("conflict_id"); out.string(conflictID)
        out.raw(","); out.key("collection"); out.string(collection)
        out.raw(","); out.key("record_id"); out.string(recordID)
        out.raw(","); out.key("client_id"); out.string(clientID)
        out.raw(","); out.key("user"); out.string(user)
        out.raw(","); out.key("base_version"); out.number(baseVersion)
        out.raw(","); out.key("server_version"); out.number(serverVersion)
        out.raw(","); out.key("client_body"); body(clientBody)
        out.raw(","); out.key("server_body"); body(serverBody)
        out.raw(","); out.key("client_deleted"); out.bool(clientDeleted)
        out.raw(","); out.key("server_deleted"); out.bool(serverDeleted)
        out.raw(","); out.key("created_at"); out.number(createdAt)
        out.raw(","); out.key("status"); out.string(status)
        out.raw(","); out.key("resolved_version"); out.number(resolvedVersion)
        out.raw("}")
        return out
    }
}

/// A JSON array of rendered items.
public func jsonArray<T>(_ items: [T], _ render: (T) -> JSONWriter) -> JSONWriter {
    var out = JSONWriter()
    out.raw("[")
    for (i, item) in items.enumerated() {
        if i > 0 { out.raw(",") }
        out.rawJSON(render(item).string)
    }
    out.raw("]")
    return out
}
