import Testing
import PierWire

/// The golden frames pin the format: each decodes to its known value and re-encodes byte
/// for byte, and the manifest the Python decoder checks against matches the values.
@Suite struct GoldenFrameTests {
    /// Writes the fixtures once per process when PIER_WIRE_REGENERATE is set.
    static let regenerated: Bool = {
        guard Fixtures.regenerate else { return false }
        for golden in Fixtures.goldens {
            Fixtures.write(golden.file, try! Frame.encode(golden.message, options: golden.options))
        }
        Fixtures.write("future-version.bin", Fixtures.futureFrame())
        Fixtures.write("manifest.json", Array(try! Fixtures.manifest().utf8))
        return true
    }()

    init() {
        _ = Self.regenerated
    }

    @Test(arguments: Fixtures.goldens.map(\.file))
    func decodesAndReencodesByteForByte(file: String) throws {
        let golden = try #require(Fixtures.goldens.first { $0.file == file })
        let bytes = try #require(Fixtures.read(file), "missing fixture \(file); run with PIER_WIRE_REGENERATE=1")
        let (header, message) = try Frame.decodeWithHeader(bytes)
        #expect(message == golden.message)
        #expect(header.messageType == golden.message.type)
        #expect(header.version == golden.options.formatVersion)
        #expect(header.minimumReaderVersion == golden.message.minimumReaderVersion(version: golden.options.formatVersion))
        #expect(header.compression == (golden.options.compressionLevel == 0 ? .none : .deflate))
        // The message bytes never depend on the DEFLATE library; the compressed bytes do, so
        // compare whole frames only with the library that wrote the fixtures (the manifest).
        let (_, payload) = try Frame.payload(of: bytes)
        #expect(try message.encodedPayload(version: header.version) == payload)
        let manifest = String(decoding: Fixtures.read("manifest.json") ?? [], as: UTF8.self)
        if header.compression == .none || manifest.contains("\"deflate\": \"\(PierWire.deflateLibrary)\"") {
            #expect(try Frame.encode(message, options: golden.options) == bytes)
        }
    }

    @Test func everyMessageTypeIsCoveredCompressedAndUncompressed() throws {
        var seen = Set<String>()
        for golden in Fixtures.goldens {
            let header = try FrameHeader.parse(try #require(Fixtures.read(golden.file)))
            seen.insert("\(header.messageType.name)/\(header.compression.name)")
        }
        for type in MessageType.allCases {
            for compression in Compression.allCases {
                #expect(seen.contains("\(type.name)/\(compression.name)"), "no golden \(type.name) frame with \(compression.name)")
            }
        }
    }

    @Test func futureVersionFrameIsReadTolerantly() throws {
        let bytes = try #require(Fixtures.read("future-version.bin"))
        #expect(bytes == Fixtures.futureFrame())
        let (header, message) = try Frame.decodeWithHeader(bytes)
        #expect(header.version == 3)
        #expect(header.minimumReaderVersion == 1)
        #expect(message == Fixtures.futureExpected)
    }

    @Test func futureVersionThatNeedsANewerReaderIsRefused() throws {
        var bytes = Fixtures.futureFrame()
        bytes[7] = 3 // minimum reader version 3
        let crc = Frame.checksum(of: bytes)
        for i in 0..<4 { bytes[16 + i] = UInt8(truncatingIfNeeded: crc >> UInt32(8 * i)) }
        let error = try #require(throws: WireError.self) { try Frame.decode(bytes) }
        #expect(error.fault == .unsupportedVersion)
        #expect(error.message.contains("reader of format version 3"))
    }

    @Test func manifestMatchesTheValues() throws {
        let manifest = try #require(Fixtures.read("manifest.json"))
        #expect(String(decoding: manifest, as: UTF8.self) == (try Fixtures.manifest()))
    }
}
