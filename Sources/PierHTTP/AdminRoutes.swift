import Hummingbird
import PierServer
import PierStore

/// `GET /v1/admin/log` and `GET /v1/admin/conflicts`: JSON, admin credentials only.
extension PierHTTPServer {
    /// The largest page an admin query returns.
    static let maxAdminPage = 1_000

    /// Query parameters of an admin request, checked strictly.
    struct Query {
        var values: [String: String]

        init(_ request: Request, allowed: Set<String>) throws(PierError) {
            values = [:]
            for (key, value) in request.uri.queryParameters {
                let key = String(key)
                guard allowed.contains(key) else {
                    throw PierError(.invalid, "unknown query parameter \(key.debugDescription); known: \(allowed.sorted().joined(separator: ", "))")
                }
                values[key] = String(value)
            }
        }

        func string(_ key: String) -> String? {
            guard let value = values[key], !value.isEmpty else { return nil }
            return value
        }

        func integer(_ key: String) throws(PierError) -> Int64? {
            guard let text = string(key) else { return nil }
            guard let value = Int64(text) else { throw PierError(.invalid, "query parameter \(key) must be an integer, got \(text.debugDescription)") }
            return value
        }

        func bool(_ key: String) throws(PierError) -> Bool {
            switch string(key) {
            case nil, "false", "0": return false
            case "true", "1": return true
            case let text?: throw PierError(.invalid, "query parameter \(key) must be true or false, got \(text.debugDescription)")
            }
        }

        func limit() throws(PierError) -> Int {
            guard let limit = try integer("limit") else { return 100 }
            guard limit >= 1 && limit <= Int64(PierHTTPServer.maxAdminPage) else {
                throw PierError(.invalid, "query parameter limit must be 1-\(PierHTTPServer.maxAdminPage), got \(limit)")
            }
            return Int(limit)
        }
    }

    /// Authenticates an admin request, then runs `body` on the thread pool and answers its JSON.
    func admin(_ request: Request, _ body: @escaping @Sendable (Request) throws(PierError) -> String) async -> Response {
        switch await authenticator.authenticate(authorization: request.headers[.authorization]) {
        case .failure(let failure):
            authFailed(failure, path: request.uri.path)
            return jsonError(PierError(.auth, "invalid credentials"), status: .unauthorized)
        case .success(let identity) where !identity.isAdmin:
            logger.notice("admin request refused: not an admin", metadata: ["path": "\(request.uri.path)", "user": "\(identity.user)"])
            return jsonError(PierError(.forbidden, "admin rights required"), status: .forbidden)
        case .success:
            break
        }
        let result: Result<String, PierError>
        do {
            result = try await pool.runIfActive { () -> Result<String, PierError> in
                do throws(PierError) { return .success(try body(request)) } catch { return .failure(error) }
            }
        } catch {
            return jsonError(PierError(.busy, "the server is shutting down; retry later"), status: .serviceUnavailable)
        }
        switch result {
        case .success(let text): return json(.ok, text)
        case .failure(let error):
            if error.code != .invalid { logger.error("admin query failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"]) }
            return jsonError(error, status: Self.status(of: error.code))
        }
    }

    func jsonError(_ error: PierError, status: HTTPResponse.Status) -> Response {
        var out = JSONWriter()
        out.raw("{"); out.key("error"); out.raw("{"); out.key("code"); out.number(Int64(error.code.rawValue))
        out.raw(","); out.key("message"); out.string(error.message); out.raw("}}")
        var headers: HTTPFields = [:]
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
        if status == .serviceUnavailable { headers[.retryAfter] = String(configuration.retryAfterSeconds) }
        return json(status, out.string, headers: headers)
    }

    /// `{"entries": [...], "next_after_seq": N | null}`, oldest first.
    func adminLog(_ request: Request) throws(PierError) -> String {
        let query = try Query(request, allowed: ["collection", "record_id", "client_id", "outcome", "since", "until", "after_seq", "limit"])
        let limit = try query.limit()
        let filter = LogFilter(collection: query.string("collection"), recordID: query.string("record_id"),
                               clientID: query.string("client_id"), outcome: query.string("outcome"),
                               since: try query.integer("since"), until: try query.integer("until"),
                               afterSeq: try query.integer("after_seq") ?? 0, limit: limit + 1)
        var entries = try server.log(filter)
        let more = entries.count > limit
        if more { entries.removeLast(entries.count - limit) }
        var out = JSONWriter()
        out.raw("{"); out.key("entries"); out.rawJSON(jsonArray(entries) { $0.json }.string)
        out.raw(","); out.key("next_after_seq")
        if more, let last = entries.last { out.number(last.seq) } else { out.null() }
        out.raw("}")
        return out.string
    }

    /// `{"conflicts": [...], "next_before_id": "..." | null}`, newest first.
    func adminConflicts(_ request: Request) throws(PierError) -> String {
        let query = try Query(request, allowed: ["collection", "record_id", "client_id", "open_only", "since", "until", "before_id", "limit"])
        let limit = try query.limit()
        let filter = ConflictFilter(collection: query.string("collection"), recordID: query.string("record_id"),
                                    clientID: query.string("client_id"), openOnly: try query.bool("open_only"),
                                    since: try query.integer("since"), until: try query.integer("until"),
                                    beforeID: query.string("before_id"), limit: limit + 1)
        var conflicts = try server.conflicts(filter)
        let more = conflicts.count > limit
        if more { conflicts.removeLast(conflicts.count - limit) }
        var out = JSONWriter()
        out.raw("{"); out.key("conflicts"); out.rawJSON(jsonArray(conflicts) { $0.json }.string)
        out.raw(","); out.key("next_before_id")
        if more, let last = conflicts.last { out.string(last.conflictID) } else { out.null() }
        out.raw("}")
        return out.string
    }
}
