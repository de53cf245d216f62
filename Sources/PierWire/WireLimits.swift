/// Upper bounds the decoder enforces before it allocates anything.
///
/// Every size and count read from a frame is compared with these (and with the bytes that
/// actually remain) before memory is reserved, so a hostile peer can make the decoder
/// allocate at most about `maxPayloadBytes` plus the decoded values of `maxItems` items.
public struct WireLimits: Sendable, Hashable {
    /// The largest whole frame (header and payload as transmitted).
    public var maxFrameBytes: Int
    /// The largest payload after decompression.
    public var maxPayloadBytes: Int
    /// The most items in one list: changes, results, records and conflicts per message,
    /// changed fields per change, collections per pull request or resync list.
    public var maxItems: Int
    /// The longest string in bytes (ids, names, scopes, reasons, error messages).
    public var maxStringBytes: Int
    /// The longest record body in bytes.
    public var maxBodyBytes: Int

    /// Creates limits; the defaults suit a server and a client alike.
    public init(
        maxFrameBytes: Int = 80 << 20,
        maxPayloadBytes: Int = 80 << 20,
        maxItems: Int = 100_000,
        maxStringBytes: Int = 64 << 10,
        maxBodyBytes: Int = 64 << 20
    ) {
        self.maxFrameBytes = maxFrameBytes
        self.maxPayloadBytes = maxPayloadBytes
        self.maxItems = maxItems
        self.maxStringBytes = maxStringBytes
        self.maxBodyBytes = maxBodyBytes
    }

    /// The default limits: 80 MiB frames and payloads, 100,000 items per list, 64 KiB
    /// strings, 64 MiB bodies (the store's ceiling).
    public static let `default` = WireLimits()
}

/// How frames are written.
public struct EncodeOptions: Sendable, Hashable {
    /// The DEFLATE level (libdeflate's), 0 (never compress) to 9. The payload is compressed
    /// only when the result is smaller than the payload itself.
    public var compressionLevel: Int
    /// Payloads shorter than this are sent uncompressed without trying (deflate cannot
    /// win on them).
    public var minimumCompressibleBytes: Int
    /// The format version to write (1 or 2; docs/PROTOCOL.md section 6). A server answers
    /// in the version of the request, so that older clients can read the answer.
    public var formatVersion: UInt8

    /// Creates options.
    public init(
        compressionLevel: Int = EncodeOptions.defaultCompressionLevel, minimumCompressibleBytes: Int = 64,
        formatVersion: UInt8 = PierWire.formatVersion
    ) {
        self.compressionLevel = compressionLevel
        self.minimumCompressibleBytes = minimumCompressibleBytes
        self.formatVersion = formatVersion
    }

    /// These options writing format `version` instead.
    public func writing(version: UInt8) -> EncodeOptions {
        var options = self
        options.formatVersion = version
        return options
    }

    /// The default DEFLATE level. Chosen by measurement (benchmarks/COMPONENTS.md, "Wire format").
    public static let defaultCompressionLevel = 6

    /// Defaults: `defaultCompressionLevel`, compress payloads of 64 bytes and more.
    public static let `default` = EncodeOptions()
    /// Never compress.
    public static let uncompressed = EncodeOptions(compressionLevel: 0)
}
