#!/usr/bin/env bash
# Checks the C API from the outside, as a C user meets it:
#  1. moe.h compiles alone as C99 and as C++11 with -Wall -Wextra -Werror -pedantic;
#  2. every function moe.h declares is exported by libmoec (a declared function with no
#     @c @implementation would otherwise go unnoticed until a user links);
#  3. examples/c/model_info.c builds against libmoec, runs on a fixture, and fails cleanly on a bad file.
# Usage: tools/check-c-api.sh [debug|release]   (default: debug)
set -euo pipefail
cd "$(dirname "$0")/.."
config="${1:-debug}"
cc="${CC:-cc}"
cxx="${CXX:-c++}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
include=Sources/CMoE/include

echo "== moe.h compiles as C99 and C++11 with -Werror -pedantic"
printf '#include <moe.h>\nint main(void) { return MOE_STATUS_OK; }\n' > "$work/h.c"
"$cc" -std=c99 -Wall -Wextra -Werror -pedantic -I"$include" -c "$work/h.c" -o "$work/h.o"
cp "$work/h.c" "$work/h.cpp"
"$cxx" -std=c++11 -Wall -Wextra -Werror -pedantic -I"$include" -c "$work/h.cpp" -o "$work/hpp.o"

echo "== libmoec exports every function moe.h declares"
swift build -c "$config" --product moec 2>&1 | tail -1
lib="$(swift build -c "$config" --show-bin-path)"
so="$lib/libmoec.so"; [ -f "$so" ] || so="$lib/libmoec.dylib"
declared=$(grep -oE '\bmoe_[a-z0-9_]+\(' "$include/moe.h" | tr -d '(' | sort -u)
exported=$(nm -D --defined-only "$so" 2>/dev/null | awk '{print $3}' | grep -E '^_?moe_' | sed 's/^_//' | sort -u)
missing=$(comm -23 <(echo "$declared") <(echo "$exported"))
if [ -n "$missing" ]; then
    echo "declared in moe.h but not exported by $so:"; echo "$missing"; exit 1
fi
echo "$(echo "$declared" | wc -l) functions declared, all exported"

echo "== examples/c/model_info.c links against libmoec and runs"
"$cc" -std=c99 -Wall -Wextra -Werror -pedantic examples/c/model_info.c -I"$include" -L"$lib" -lmoec \
    -Wl,-rpath,"$lib" -o "$work/model_info"
"$work/model_info" Tests/Fixtures/models/tiny-qwen3moe-q8_0.gguf | tee "$work/out.txt"
grep -q 'general.architecture *qwen3moe' "$work/out.txt"
grep -q '{arch}.expert_count *8' "$work/out.txt"
grep -q 'tensors *27' "$work/out.txt"
if "$work/model_info" README.md 2> "$work/err.txt"; then
    echo "model_info accepted a non-GGUF file"; exit 1
fi
grep -q 'invalid file: .*not a GGUF file' "$work/err.txt"

echo "== examples/c/next_token.c evaluates tokens and agrees with moe logits"
"$cc" -std=c99 -Wall -Wextra -Werror -pedantic examples/c/next_token.c -I"$include" -L"$lib" -lmoec \
    -Wl,-rpath,"$lib" -o "$work/next_token"
model=Tests/Fixtures/forward/qwen3moe-q8_0.gguf
"$work/next_token" "$model" 256 72 101 108 108 111 | tee "$work/next.txt"
swift build -c "$config" --product moe 2>&1 | tail -1
"$lib/moe" logits -m "$model" --tokens "256 72 101 108 108 111" -o "$work/logits.f32"
best=$(python3 -c "import struct,sys; d=open(sys.argv[1],'rb').read(); v=struct.unpack('<%df' % (len(d)//4), d); print(max(range(len(v)), key=v.__getitem__))" "$work/logits.f32" 2>/dev/null || echo skip)
if [ "$best" != skip ]; then grep -q "^1. token $best " "$work/next.txt"; fi
if "$work/next_token" "$model" 99999 2> "$work/err2.txt"; then echo "next_token accepted token 99999"; exit 1; fi
grep -q 'invalid argument: .*99999' "$work/err2.txt"
echo "== examples/c/generate.c streams a generation, stops from its callback, reports expert counts"
"$cc" -std=c99 -Wall -Wextra -Werror -pedantic examples/c/generate.c -I"$include" -L"$lib" -lmoec \
    -Wl,-rpath,"$lib" -o "$work/generate"
gen_model=Tests/Fixtures/forward/qwen3moe-q8_0.gguf
"$work/generate" "$gen_model" "Hello, world!" 12 > "$work/gen.txt" 2> "$work/gen.err"
cat "$work/gen.txt" "$work/gen.err"
# The streamed text is the greedy continuation moe run prints for the same prompt.
"$lib/moe" run -m "$gen_model" -p "Hello, world!" -n 12 --temp 0 -c 256 > "$work/run.txt"
cmp "$work/gen.txt" "$work/run.txt"
grep -q 'generated 12 tokens.*stop reason 1' "$work/gen.err"
grep -q 'layer 0: 48 choices' "$work/gen.err"   # 13 prompt + 11 generated tokens evaluated, top-2
"$work/generate" "$gen_model" "Hello, world!" 12 3 > /dev/null 2> "$work/gen2.err"
grep -q 'stop reason 4' "$work/gen2.err"
echo "C API checks passed"
