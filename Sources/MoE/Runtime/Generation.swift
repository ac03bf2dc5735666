import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What a generation does besides sampling.
public struct GenerationOptions: Sendable {
    /// The most tokens to generate.
    public var maxTokens: Int = 128
    /// How tokens are chosen.
    public var sampling = SamplingOptions()
    /// Generation stops when the text contains one of these; the stop string is not returned.
    public var stopStrings: [String] = []
    /// Stop at the vocabulary's end-of-generation tokens (EOS, EOT, ...).
    public var stopAtEndOfGeneration = true
    /// Add BOS/EOS to the prompt as the vocabulary says (only at position 0).
    public var addSpecial = true
    /// Turn control-token text in the prompt (`<|im_start|>`) into those tokens.
    public var parseSpecial = false
    /// Also evaluate the last generated token, so the session's cache holds the whole reply
    /// (a chat continues from there); costs one more forward pass.
    public var evaluateLastToken = false

    /// Default options: 128 tokens, default sampling.
    public init() {}
}

/// Why a generation ended.
public enum StopReason: String, Sendable {
    /// The model produced an end-of-generation token.
    case endOfGeneration = "eog"
    /// `maxTokens` were generated.
    case maxTokens = "length"
    /// A stop string appeared.
    case stopString = "stop"
    /// The session's context is full.
    case contextFull = "context"
    /// The caller stopped it.
    case cancelled
}

/// What a finished generation did.
public struct GenerationResult: Sendable {
    /// The tokens evaluated as prompt.
    public var promptTokens: Int
    /// The tokens generated (an end-of-generation token counts).
    public var generatedTokens: [Int32]
    /// The text returned (stop string excluded).
    public var text: String
    /// Why it stopped.
    public var stopReason: StopReason
    /// Seconds spent evaluating the prompt.
    public var promptSeconds: Double
    /// Seconds spent generating.
    public var decodeSeconds: Double

    /// Prompt tokens per second.
    public var promptTokensPerSecond: Double { promptSeconds > 0 ? Double(promptTokens) / promptSeconds : 0 }
    /// Generated tokens per second (the first token's sampling included, the prompt not).
    public var decodeTokensPerSecond: Double { decodeSeconds > 0 ? Double(generatedTokens.count) / decodeSeconds : 0 }
}

extension Session {
    /// Evaluates `prompt` after what the session already holds (BOS only at position 0), then
    /// generates, calling `onText` with each complete piece of UTF-8 text as soon as it is
    /// known. `onText` returns false to stop. The session keeps every token, so a chat can go
    /// on from where the reply ended. (Without `onText`, `generate` returns an async stream.)
    @discardableResult
    public func generate(_ prompt: String, options: GenerationOptions = .init(),
                         onText: (String) -> Bool) throws(MoEError) -> GenerationResult {
        let tokenizer = try model.tokenizer()
        var tokens = tokenizer.encode(prompt, addSpecial: options.addSpecial && position == 0, parseSpecial: options.parseSpecial)
        if position > 0 && options.addSpecial, tokenizer.vocabulary.addEOS, tokens.last == tokenizer.vocabulary.eos {
            tokens.removeLast()
        }
        return try generate(tokens: tokens, options: options, onText: onText)
    }

    /// Like `generate(_:options:onText:)` for a prompt that is already tokens.
    @discardableResult
    public func generate(tokens prompt: [Int32], options: GenerationOptions = .init(),
                         onText: (String) -> Bool = { _ in true }) throws(MoEError) -> GenerationResult {
        let tokenizer = try model.tokenizer()
        guard options.maxTokens >= 0 else { throw MoEError(.invalidArgument, "maxTokens must be 0 or more") }
        guard !prompt.isEmpty else { throw MoEError(.invalidArgument, "the prompt has no tokens (empty text and no BOS)") }
        guard position + prompt.count < contextLength else {
            throw MoEError(.invalidArgument, "the prompt (\(prompt.count) tokens at position \(position)) leaves no room in the context of \(contextLength)")
        }
        var sampler = try Sampler(options.sampling)
        for t in prompt { sampler.accept(t) }

        let clock = ContinuousClock()
        let t0 = clock.now
        var logits = try evaluate(prompt)
        let promptTime = clock.now - t0

        var streamer = TextStreamer(tokenizer)
        var stops = StopMatcher(options.stopStrings)
        var generated: [Int32] = []
        var text = ""
        var reason = StopReason.maxTokens
        let t1 = clock.now
        loop: while generated.count < options.maxTokens {
            let next = sampler.sample(logits)
            sampler.accept(next)
            generated.append(next)
            if options.stopAtEndOfGeneration && tokenizer.vocabulary.endOfGeneration.contains(next) {
                reason = .endOfGeneration
                break
            }
            let (release, hit) = stops.push(streamer.push(next))
            if !release.isEmpty {
                text += release
                if !onText(release) { reason = .cancelled; break loop }
            }
            if hit { reason = .stopString; break }
            if generated.count == options.maxTokens { break }
            guard position < contextLength else { reason = .contextFull; break }
            logits = try evaluate([next])
        }
        if reason != .stopString && reason != .cancelled {
            let rest = stops.finish(streamer.flush())
            if !rest.isEmpty {
                text += rest
                _ = onText(rest)
            }
        }
        // The last sampled token has not been evaluated yet.
        if options.evaluateLastToken, let last = generated.last, position < contextLength {
            _ = try evaluate([last])
        }
        let decodeTime = clock.now - t1
        func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18 }
        return GenerationResult(promptTokens: prompt.count, generatedTokens: generated, text: text, stopReason: reason,
                                promptSeconds: seconds(promptTime), decodeSeconds: seconds(decodeTime))
    }

    /// Streams the generated text piece by piece; cancelling the consuming task (or breaking
    /// out of the loop) stops generation after the current token. The session must not be used
    /// elsewhere until the stream ends.
    ///
    /// ```swift
    /// for try await piece in session.generate("Once upon a time", options: options) {
    ///     print(piece, terminator: "")
    /// }
    /// ```
    public func generate(_ prompt: String, options: GenerationOptions = .init()) -> AsyncThrowingStream<String, any Error> {
        nonisolated(unsafe) let session = self
        return AsyncThrowingStream { continuation in
            let flag = StopFlag()
            continuation.onTermination = { _ in flag.stop() }
            let started = runDetached {
                do {
                    try session.generate(prompt, options: options) { piece in
                        if flag.isStopped { return false }
                        continuation.yield(piece)
                        return !flag.isStopped
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            if !started {
                continuation.finish(throwing: MoEError(.outOfMemory, "no thread could be started for the generation"))
            }
        }
    }
}

/// Runs `body` on a new detached thread (a POSIX thread: the library does not use Foundation).
/// False when the system refuses the thread.
func runDetached(_ body: @escaping @Sendable () -> Void) -> Bool {
    final class Context { let body: @Sendable () -> Void; init(_ body: @escaping @Sendable () -> Void) { self.body = body } }
    let context = Unmanaged.passRetained(Context(body)).toOpaque()
    var thread = pthread_t()
    let started = pthread_create(&thread, nil, { raw in
        Unmanaged<Context>.fromOpaque(raw!).takeRetainedValue().body()
        return nil
    }, context)
    guard started == 0 else {
        Unmanaged<Context>.fromOpaque(context).release()
        return false
    }
    pthread_detach(thread)
    return true
}

/// A thread-safe one-way switch.
final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func stop() { value.store(true, ordering: .relaxed) }
    var isStopped: Bool { value.load(ordering: .relaxed) }
}

/// Holds back streamed text that might be the start of a stop string, and finds stop strings
/// that span several pieces.
struct StopMatcher {
    let stops: [String]
    private var held = ""

    init(_ stops: [String]) { self.stops = stops.filter { !$0.isEmpty } }

    /// Adds `piece`; returns the text that can be released and whether a stop string appeared
    /// (then the released text ends just before it).
    mutating func push(_ piece: String) -> (String, Bool) {
        guard !stops.isEmpty else { return (piece, false) }
        held += piece
        var earliest: String.Index?
        for s in stops {
            if let r = held.firstRange(of: s), earliest == nil || r.lowerBound < earliest! { earliest = r.lowerBound }
        }
        if let e = earliest {
            let out = String(held[..<e])
            held = ""
            return (out, true)
        }
        // Keep the longest suffix that is a prefix of some stop string.
        var keep = 0
        for s in stops {
            var n = min(s.count, held.count)
            while n > 0 {
                if s.hasPrefix(held.suffix(n)) { break }
                n -= 1
            }
            keep = max(keep, n)
        }
        let cut = held.index(held.endIndex, offsetBy: -keep)
        let out = String(held[..<cut])
        held = String(held[cut...])
        return (out, false)
    }

    /// Releases whatever is held once generation ends without a stop string.
    mutating func finish(_ tail: String) -> String {
        let (out, hit) = push(tail)
        if hit { return out }
        defer { held = "" }
        return out + held
    }
}
