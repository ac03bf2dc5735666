#!/usr/bin/env python3
"""Records llama.cpp's tokenizations of swift-moe's own test strings, for tokenizer parity tests.

Writes, under Tests/Fixtures/text/:
  spm-austen.gguf          a small SentencePiece-BPE vocabulary of our own (1200 tokens, scores,
                           byte fallback, <s>/</s>/<unk>), trained on Sense and Sensibility with the
                           `tokenizers` package: the SentencePiece vocabulary the repo can carry
  tokenizer-parity.json    the test strings, and for each vocabulary found, llama.cpp's ids for
                           each string in two modes: plain (no BOS/EOS, special text not parsed)
                           and special (BOS/EOS as the file says, control-token text parsed)

Vocabularies: our fixtures (above, the tiny models, Models/*.gguf), ../shared/vocab/*.gguf, and
every ggml-vocab-*.gguf in LLAMA_VOCAB_DIR when set (llama.cpp's models/ folder from the
llama-cpp-python sdist). The tests compare against each vocabulary they can find.

Usage: python3 tools/make_text_fixtures.py   (needs llama-cpp-python, tokenizers, rdata, gguf)
"""
import glob
import hashlib
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(ROOT, "Tests", "Fixtures", "text")

STRINGS = [
    "Hello world",
    " Hello world",
    "Hello World! How are you today?",
    "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.",
    "I'm sure you'll see they've done what we'd said; it's HE'S and WE'LL.",
    "def add(a, b):\n    return a + b\n\nprint(add(2, 3))  # 5\n",
    "for (int i = 0; i < n; ++i) { sum += x[i] * y[i]; }",
    "   leading spaces",
    "trailing spaces   ",
    "tabs\tand\t\ttabs\n\n\nand newlines\r\n",
    "\n",
    " ",
    "  ",
    "    \n    \n",
    "1234567890 12 123 1234 12345 3.14159 -42 1,000,000",
    "Numbers: 0001, 2026-11-23, 10^9, 1e-6",
    "emoji: 🦙🔥 👩‍👩‍👧 ✅ 🇫🇷",
    "日本語のテキストと中文文本，还有한국어 텍스트。",
    "Ελληνικά, русский текст, العربية, עברית, हिन्दी",
    "café naïve façade coöperate Ångström",
    "e\u0301 combining accent and \u00e9 precomposed",
    "zero\u200bwidth\u200cjoiner\u200d and \ufeffBOM",
    "\u00a0non-breaking\u2003em space\u3000ideographic",
    "lone surrogate-looking text: \\ud83d and replacement \ufffd",
    "<s>not a bos</s> <|im_start|>user\nhi<|im_end|> <|endoftext|>",
    "[INST] hello [/INST] <|user|> <|assistant|> <|eot_id|>",
    "'s 's 'S 'll 'LL 're",
    "!!!??? ... --- ___ *** ///",
    "https://example.com/path?q=1&x=y#frag",
    "a" * 60,
    "The quick brown fox jumps over the lazy dog. " * 3,
]

SPECIAL_TEXT = {"<s>", "</s>", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|eot_id|>"}


def make_spm_vocab(path):
    """A SentencePiece-BPE vocabulary of our own, in llama.cpp's 'llama' tokenizer layout."""
    import gguf
    from tokenizers import SentencePieceBPETokenizer
    sys.path.insert(0, os.path.join(HERE, "train-demo-model"))
    import corpus
    text = "\n".join(corpus.novels()["sensesensibility"])
    tok = SentencePieceBPETokenizer(replacement="\u2581", add_prefix_space=True)
    tok.train_from_iterator([text], vocab_size=1200 - 3 - 256, min_frequency=2, show_progress=False,
                            special_tokens=[], limit_alphabet=200)
    learned = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [2, 3, 3] + [6] * 256
    scores = [0.0, 0.0, 0.0] + [0.0] * 256
    for i, (t, _) in enumerate(learned):
        if t in tokens:
            continue
        tokens.append(t)
        types.append(1)
        scores.append(-float(i))  # earlier merges score higher, as llama.cpp's converter does for BPE-based vocabularies
    w = gguf.GGUFWriter(path, arch="llama")
    w.add_name("spm-austen vocabulary")
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def vocab_files():
    files = [os.path.join(OUT, "spm-austen.gguf")]
    files += sorted(glob.glob(os.path.join(ROOT, "Tests", "Fixtures", "models", "*.gguf")))
    files += sorted(glob.glob(os.path.join(ROOT, "Models", "*.gguf")))
    shared = os.path.join(ROOT, "..", "shared", "vocab")
    files += sorted(glob.glob(os.path.join(shared, "*.gguf")))
    extra = os.environ.get("LLAMA_VOCAB_DIR")
    if extra:
        files += sorted(glob.glob(os.path.join(extra, "ggml-vocab-*.gguf")))
    seen, out = set(), []
    for f in files:
        name = os.path.basename(f)
        if name not in seen:
            seen.add(name)
            out.append(f)
    return out


def main():
    from llama_cpp import Llama
    os.makedirs(OUT, exist_ok=True)
    spm = os.path.join(OUT, "spm-austen.gguf")
    if not os.path.exists(spm) or "--rebuild-spm" in sys.argv:
        make_spm_vocab(spm)
    result = {"llama_cpp_python": __import__("llama_cpp").__version__, "strings": STRINGS, "vocabularies": {}}
    for path in vocab_files():
        name = os.path.basename(path)
        try:
            m = Llama(model_path=path, vocab_only=True, verbose=False)
        except Exception as e:  # unsupported tokenizer types (WPM, UGM, ...): not ours to match
            print(f"skip {name}: {e}", file=sys.stderr)
            continue
        plain, special = [], []
        for s in STRINGS:
            b = s.encode("utf-8", errors="surrogatepass")
            plain.append(m.tokenize(b, add_bos=False, special=False))
            special.append(m.tokenize(b, add_bos=True, special=True))
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        result["vocabularies"][name] = {"sha256": digest, "plain": plain, "special": special}
        print(f"{name}: {sum(map(len, plain))} tokens", file=sys.stderr)
        del m
    with open(os.path.join(OUT, "tokenizer-parity.json"), "w") as f:
        json.dump(result, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
