import MoE

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The `moe` command line. Exit codes: 0 success, 1 failure (one line on stderr), 2 usage error.
let usage = """
    usage: moe COMMAND [options]

    commands:
      demo                    generate with the embedded demo MoE and show how its experts were used
      info MODEL [--json]     describe a GGUF model (architecture, experts, bytes per token)
      run -m MODEL -p PROMPT [-n N] [--temp T] [--seed S] [--stats]
                              stream a continuation of a prompt
      chat -m MODEL           talk to a chat model in the terminal
      profile -m MODEL (-p PROMPT | -f FILE) [-n N] --out DIR
                              record expert routing; write report.json, SVG charts and index.html
      tokenize -m MODEL -p TEXT [--json]
                              print the token ids of a text
      logits -m MODEL --tokens "ID ..." -o FILE [--all]
                              evaluate token ids, write float32 logits
      bench -m MODEL [-p 512] [-n 128] [-t T] [-r R] [-o md|json|csv]
                              prompt and decode speed, with the memory roofline

    Run `moe COMMAND --help` for a command's options. Model paths may also come from MOE_MODEL.
    """

func printError(_ text: String) {
    var line = text
    if !line.hasSuffix("\n") { line += "\n" }
    let bytes = Array(line.utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

func environment() -> [String: String] {
    var result: [String: String] = [:]
    if let model = getenv("MOE_MODEL"), model.pointee != 0 { result["MOE_MODEL"] = String(cString: model) }
    return result
}

let arguments = Array(CommandLine.arguments.dropFirst())
let command = arguments.first
let rest = Array(arguments.dropFirst())
let status: Int32
do {
    switch command {
    case "info":
        status = try InfoCommand.run(rest, environment: environment())
    case "profile":
        status = try ProfileCommand.run(rest, environment: environment())
    case "demo":
        status = try DemoCommand.run(rest, environment: environment())
    case "run":
        status = try RunCommand.run(rest, environment: environment())
    case "chat":
        status = try ChatCommand.run(rest, environment: environment())
    case "tokenize":
        status = try TokenizeCommand.run(rest, environment: environment())
    case "logits":
        status = try LogitsCommand.run(rest, environment: environment())
    case "bench":
        status = try BenchCommand.run(rest, environment: environment())
    case "--help", "-h", "help":
        print(usage)
        status = 0
    case "--version":
        print("moe 0.1.0")
        status = 0
    case nil:
        printError(usage)
        status = 2
    default:
        throw UsageError(message: "unknown command '\(command!)'")
    }
} catch let error as UsageError {
    printError("moe: \(error.message)\n\n\(usage)")
    status = 2
} catch let error as MoEError {
    printError("moe \(command ?? ""): \(error.description)")
    status = 1
} catch {
    printError("moe \(command ?? ""): \(error)")
    status = 1
}
exit(status)
