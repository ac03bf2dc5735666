#!/usr/bin/env bash
# swift-moe and llama.cpp side by side: the same GGUF file, the same thread count, one run.
#
#   tools/bench-vs-llama.sh [GEOMETRY] [TYPE] [THREADS] [REPS] [PROMPT] [GEN] [PARALLEL] [DEPTH]
#   defaults:                olmoe      Q4_0   2         3      512      128   4          0
#
# PARALLEL > 1 adds decode of PARALLEL sequences together (`moe bench --parallel`, and
# llama.cpp's `llama-batched-bench` with -npl 1,PARALLEL for its aggregate decode rate).
# DEPTH > 0 runs every test after DEPTH tokens of context (llama-bench's and `moe bench`'s -d;
# llama-batched-bench's -npp), the tests then named "tg128 @ d4096".
# Generates bench-models/GEOMETRY-TYPE.gguf if missing (tools/make_bench_model.py), builds
# llama.cpp's llama-bench from the tree vendored in the llama-cpp-python source distribution
# (into .build-llama/, once; or set LLAMA_BENCH=/path/to/llama-bench), builds `moe` in release,
# runs both, and prints tokens/s per test and the ratio. Run it on a quiet machine.
#
# llama.cpp runs with flash attention off and on (llama-bench -fa 0,1; llama-batched-bench
# -fa off / on), and each test compares against the faster of the two (column "fa"): its
# default, auto, turns it on for the CPU, which is faster at short context (olmoe Q4_0 tg128
# 63.1 vs 56.3 t/s) and much slower at long context (tg64 @ d4096 16.5 vs 29.4).
#
# The two runtimes take turns: REPS rounds of one repetition each (llama.cpp first in odd
# rounds, swift-moe first in even ones), so a machine whose speed drifts during the run (a
# shared VM's neighbours) slows both alike; each side's mean ± std is over its rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
geometry="${1:-olmoe}" type="${2:-Q4_0}" threads="${3:-2}" reps="${4:-3}" prompt="${5:-512}" gen="${6:-128}" parallel="${7:-4}" depth="${8:-0}"
model="bench-models/${geometry}-$(echo "$type" | tr 'A-Z' 'a-z').gguf"
out="bench-models/results"
mkdir -p "$out"

if [ ! -f "$model" ]; then
    python3 -m pip install -q -r tools/requirements.txt 2>/dev/null || python3 -m pip install -q gguf numpy
    (cd tools && python3 make_bench_model.py "$geometry" "$type" "../$model")
fi

llama_bench="${LLAMA_BENCH:-.build-llama/build/bin/llama-bench}"
if [ ! -x "$llama_bench" ]; then
    echo "building llama-bench (once; about 10 minutes on 2 cores)"
    mkdir -p .build-llama
    if [ ! -d .build-llama/src ]; then
        python3 -m pip download -q --no-deps --no-binary llama-cpp-python llama-cpp-python==0.3.36 -d .build-llama
        tar xzf .build-llama/llama_cpp_python-0.3.36.tar.gz -C .build-llama
        mv .build-llama/llama_cpp_python-0.3.36/vendor/llama.cpp .build-llama/src
    fi
    command -v cmake >/dev/null || python3 -m pip install -q cmake
    cmake -S .build-llama/src -B .build-llama/build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=OFF \
        -DLLAMA_CURL=OFF > .build-llama/cmake.log
    cmake --build .build-llama/build --target llama-bench llama-batched-bench -j "$(nproc)" >> .build-llama/cmake.log
fi
batched_bench="$(dirname "$llama_bench")/llama-batched-bench"

swift build -c release --product moe 2>&1 | tail -1
moe="$(swift build -c release --show-bin-path)/moe"

run_llama() {  # round $1
    echo "== round $1 llama.cpp: $llama_bench -m $model -p $prompt -n $gen -d $depth -t $threads -r 1 -fa 0,1"
    "$llama_bench" -m "$model" -p "$prompt" -n "$gen" -d "$depth" -t "$threads" -r 1 -fa 0,1 -o json > "$out/llama-$1.json"
    if [ "$parallel" -gt 1 ] && [ -x "$batched_bench" ]; then
        local npp=$(( depth > 0 ? depth : 1 )) fa
        for fa in off on; do
            echo "== round $1 llama.cpp: $batched_bench -m $model -npp $npp -ntg $gen -npl 1,$parallel -t $threads -c $(( (npp + gen) * parallel )) -fa $fa"
            "$batched_bench" -m "$model" -npp "$npp" -ntg "$gen" -npl "1,$parallel" -t "$threads" -c $(( (npp + gen) * parallel )) -fa "$fa" \
                --output-format jsonl 2>&1 | grep '^{' | sed "s/^{/{\"fa\": \"$fa\", /" >> "$out/llama-batched.jsonl" || true
        done
    fi
}
run_moe() {
    echo "== round $1 swift-moe: moe bench -m $model -p $prompt -n $gen -d $depth -t $threads -r 1 --parallel $parallel"
    "$moe" bench -m "$model" -p "$prompt" -n "$gen" -d "$depth" -t "$threads" -r 1 --parallel "$parallel" -o json > "$out/moe-$1.json"
}
: > "$out/llama-batched.jsonl"
for round in $(seq 1 "$reps"); do
    if [ $((round % 2)) -eq 1 ]; then run_llama "$round"; run_moe "$round"; else run_moe "$round"; run_llama "$round"; fi
done
# One file per runtime, each test's samples gathered from every round.
python3 - "$out" "$reps" <<'PY'
import json, statistics, sys
out, reps = sys.argv[1], int(sys.argv[2])
for name in ("llama", "moe"):
    merged = {}
    for i in range(1, reps + 1):
        for r in json.load(open(f"{out}/{name}-{i}.json")):
            k = (r["n_prompt"], r["n_gen"], r.get("n_parallel", 1), r.get("n_depth", 0), r.get("flash_attn"))
            merged.setdefault(k, []).append(r)
    result = []
    for rs in merged.values():
        r = dict(rs[-1])
        samples = [s for x in rs for s in x["samples_ts"]]
        r["samples_ts"] = samples
        r["avg_ts"] = statistics.mean(samples)
        r["stddev_ts"] = statistics.stdev(samples) if len(samples) > 1 else 0.0
        # Each round's fraction is against the bandwidth probed just before its repetition
        # (moe bench, decode tests); without those, against the last round's probe.
        fractions = [x["roofline_fraction"] for x in rs if x.get("roofline_fraction") is not None]
        if any(x.get("memory_bandwidth_per_rep_bytes_per_s") for x in rs) and fractions: r["roofline_fraction"] = statistics.mean(fractions)
        elif r.get("roofline_fraction") is not None and r.get("roofline_ts"): r["roofline_fraction"] = r["avg_ts"] / r["roofline_ts"]
        if r.get("time_per_token_ms"):
            r["time_per_token_ms"] = {p: statistics.mean(x["time_per_token_ms"][p] for x in rs) for p in r["time_per_token_ms"]}
        result.append(r)
    json.dump(result, open(f"{out}/{name}.json", "w"), indent=1)
PY

python3 - "$out/llama.json" "$out/moe.json" "$model" "$threads" "$out/llama-batched.jsonl" <<'PY'
import json, statistics, sys
llama, moe = (json.load(open(p)) for p in sys.argv[1:3])
def key(r):
    k = ("pp" if r["n_prompt"] else "tg") + str(r["n_prompt"] or r["n_gen"])
    return k + (f" x{r['n_parallel']}" if r.get("n_parallel", 1) > 1 else "") + (f" @ d{r['n_depth']}" if r.get("n_depth") else "")
# llama.cpp at its best: per test, the flash-attention setting with the higher mean.
L = {}
def offer(k, r):
    if k not in L or r["avg_ts"] > L[k]["avg_ts"]: L[k] = r
for r in llama:
    offer(key(r), dict(r, fa="on" if r.get("flash_attn") in (1, True, "on") else "off"))
# llama-batched-bench: decode rate (speed_tg) at each number of parallel sequences, per round.
batched = {}
for line in open(sys.argv[5]):
    b = json.loads(line)
    k = f"tg{b['tg']}" + (f" x{b['pl']}" if b["pl"] > 1 else "") + (f" @ d{b['pp']}" if b["pp"] > 1 else "")
    batched.setdefault((k, b.get("fa", "auto")), []).append(b["speed_tg"])
for (k, fa), v in batched.items():
    if k not in L or L[k].get("batched"):  # llama-bench's own number for one sequence comes first
        offer(k, {"avg_ts": sum(v) / len(v), "stddev_ts": statistics.stdev(v) if len(v) > 1 else 0.0, "fa": fa, "batched": True})
print(f"\nmodel {sys.argv[3]}, {sys.argv[4]} threads\n")
print("| test | llama.cpp t/s | fa | swift-moe t/s | ratio | roofline fraction |")
print("| --- | ---: | --- | ---: | ---: | ---: |")
for r in moe:
    k = key(r)
    l = L.get(k)
    ratio = f"{r['avg_ts'] / l['avg_ts']:.2f}x" if l else "-"
    lt = f"{l['avg_ts']:.2f} ± {l['stddev_ts']:.2f}" if l else "-"
    rf = f"{r['roofline_fraction']:.2f}" if r.get("roofline_fraction") is not None else "-"
    print(f"| {k} | {lt} | {l['fa'] if l else '-'} | {r['avg_ts']:.2f} ± {r['stddev_ts']:.2f} | {ratio} | {rf} |")
m = next(r for r in moe if r["n_gen"] and r.get("n_parallel", 1) == 1) if any(r["n_gen"] for r in moe) else moe[-1]
for r in moe:
    t = r.get("time_per_token_ms")
    if t:
        print(f"swift-moe {key(r)} time per token: attention {t['attention']:.2f} ms, router {t['router']:.2f} ms, "
              f"experts {t['experts']:.2f} ms, output {t['output']:.2f} ms, waiting {t['waiting']:.2f} ms"
              + (f", halves overlapped {t['overlapped']:.2f} ms" if t.get('overlapped') else ""))
print(f"\nmemory read bandwidth {m['memory_bandwidth_bytes_per_s'] / 1e9:.1f} GB/s, "
      f"{m['active_bytes_per_token'] / 2**20:.0f} MiB of weights"
      + (f" + {m['kv_bytes_per_token'] / 2**20:.0f} MiB of KV cache" if m.get("kv_bytes_per_token") else "")
      + " per decoded token, "
      f"roofline {m['roofline_ts']:.1f} t/s, swift-moe peak RSS {m['peak_rss_bytes'] / 2**30:.2f} GiB")
PY
