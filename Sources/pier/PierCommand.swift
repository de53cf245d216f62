// The `pier` command-line tool.
import ArgumentParser
import Pier
import PierStore

#if canImport(Glibc)
import Glibc
#endif

@main
struct PierCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pier",
        abstract: "Pier: an embeddable offline-first sync library.",
        subcommands: [Demo.self, Serve.self, SyncCommand.self, Inspect.self, ConflictsCommand.self, KeyCommand.self, LogCommand.self, Token.self, FrameGroup.self])
}

struct FrameGroup: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "frame", abstract: "Work with captured sync frames.", subcommands: [FrameDump.self])
}

/// Exit with a Pier error's message and its status code's name.
func failure(_ error: PierError) -> ExitCode {
    FileHandleStderr.write("pier: \(error.code.name): \(error.message)\n")
    return ExitCode(1)
}

enum FileHandleStderr {
    static func write(_ text: String) {
        var text = text
        text.withUTF8 { _ = Glibc.write(2, $0.baseAddress, $0.count) }
    }
}

