import MoE

/// A usage error: the command line was wrong. The CLI prints it with the usage and exits 2.
struct UsageError: Error {
    let message: String
}

/// A parsed command line for one subcommand: positionals, options with values, and flags.
struct Arguments {
    var positionals: [String] = []
    var values: [String: String] = [:]
    var flags: Set<String> = []

    /// Parses `args` given which spellings take a value and which are flags. Aliases map short
    /// spellings to long ones (`-m` → `--model`). `--name=value` is accepted too.
    init(_ args: [String], valued: Set<String>, flags allowedFlags: Set<String>, aliases: [String: String] = [:]) throws(UsageError) {
        var i = 0
        while i < args.count {
            var arg = args[i]
            var inline: String?
            if arg.hasPrefix("--"), let eq = arg.firstIndex(of: "=") {
                inline = String(arg[arg.index(after: eq)...])
                arg = String(arg[..<eq])
            }
            let name = aliases[arg] ?? arg
            if valued.contains(name) {
                if let inline {
                    values[name] = inline
                } else {
                    guard i + 1 < args.count else { throw UsageError(message: "\(arg) needs a value") }
                    values[name] = args[i + 1]
                    i += 1
                }
            } else if allowedFlags.contains(name) {
                guard inline == nil else { throw UsageError(message: "\(arg) takes no value") }
                flags.insert(name)
            } else if arg.hasPrefix("-") && arg.count > 1 {
                throw UsageError(message: "unknown option \(arg)")
            } else {
                positionals.append(arg)
            }
            i += 1
        }
    }
}

/// Formats a byte count with binary units: `512 B`, `1.50 KiB`, `17.03 GiB`.
func formatBytes(_ bytes: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024 && unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    return unit == 0 ? "\(bytes) B" : "\(fixed(value, 2)) \(units[unit])"
}

/// Formats a count with a metric suffix: `6.92 B`, `1.31 M`.
func formatCount(_ n: Int) -> String {
    let value = Double(n)
    if value >= 1e9 { return "\(fixed(value / 1e9, 2)) B" }
    if value >= 1e6 { return "\(fixed(value / 1e6, 2)) M" }
    if value >= 1e3 { return "\(fixed(value / 1e3, 2)) K" }
    return "\(n)"
}

/// `value` with exactly `digits` decimals, without Foundation.
func fixed(_ value: Double, _ digits: Int) -> String { formatFixed(value, digits) }
