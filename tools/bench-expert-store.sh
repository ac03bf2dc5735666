#!/usr/bin/env bash
# The expert store against a model larger than its budget, with llama.cpp under the same memory
# limit as the yardstick.
#
#   tools/bench-expert-store.sh [TOKENS] [BUDGETS] [CGROUP_LIMIT]
#   defaults:                    16       "2G 4G 8G 0"   5.35G
#
# Generates bench-models/qwen3moe-q4_0.gguf (Qwen3-30B-A3B geometry, random weights, ~17 GB) if
# missing, measures this disk's read bandwidth for expert-sized O_DIRECT reads, then for each
# budget (0 = no budget: everything mapped) drops the page cache (when run as root) and runs
# `moe bench -p 0 -n TOKENS` reporting decode tokens/s, peak RSS, hit rate, bytes read per token
# and the speed the disk allows at that miss traffic. Where memory cgroups (v1 or v2) can be
# created, moe (with the 4G budget) and llama.cpp's llama-bench (mmap, its default) run inside a
# CGROUP_LIMIT memory limit, page cache included. Results go to bench-models/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
tokens="${1:-16}" budgets="${2:-2G 4G 8G 0}" limit="${3:-5.35G}"
model="bench-models/qwen3moe-q4_0.gguf"
out="bench-models/results"
mkdir -p "$out"

if [ ! -f "$model" ]; then
    python3 -m pip install -q gguf numpy 2>/dev/null || true
    (cd tools && python3 make_bench_model.py qwen3moe Q4_0 "../$model")
fi
swift build -c release --product moe 2>&1 | tail -1
moe="$(swift build -c release --show-bin-path)/moe"

drop_caches() {
    sync
    if [ -w /proc/sys/vm/drop_caches ]; then echo 3 > /proc/sys/vm/drop_caches; else echo "(cannot drop the page cache: not root)"; fi
}

# Disk: 4 threads of random O_DIRECT reads of one Q4_0 expert matrix (2048 x 768) each, 10 s.
disk=$(python3 - "$model" <<'EOF'
import mmap, os, random, sys, threading, time
path = sys.argv[1]; size = os.path.getsize(path); chunk = 884736; total = [0]; lock = threading.Lock()
def worker(seed):
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECT", 0)); buf = mmap.mmap(-1, chunk + 4096); rnd = random.Random(seed)
    end = time.time() + 10
    while time.time() < end:
        off = rnd.randrange(0, size - chunk - 4096) // 4096 * 4096
        n = os.preadv(fd, [buf], off)
        with lock: total[0] += n
    os.close(fd)
threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
start = time.time(); [t.start() for t in threads]; [t.join() for t in threads]
print(int(total[0] / (time.time() - start)))
EOF
)
echo "disk: $((disk / 1000000)) MB/s for random 864 KiB O_DIRECT reads, 4 threads"

{
    echo "| budget | tg$tokens t/s | peak RSS | expert hit rate | read/token | disk allows | of that | stalled |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
} > "$out/expert-store.md"
for b in $budgets; do
    drop_caches
    args=(bench -m "$model" -p 0 -n "$tokens" -r 1 -t 2 -o json)
    [ "$b" != 0 ] && args+=(--expert-memory "$b")
    "$moe" "${args[@]}" > "$out/expert-store-$b.json"
    python3 - "$out/expert-store-$b.json" "$b" "$disk" >> "$out/expert-store.md" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))[0]; budget = sys.argv[2]; disk = int(sys.argv[3])
read = r.get("expert_bytes_read_per_token")
allows = disk / read if read else None
cells = [budget if budget != "0" else "none (mmap)", f"{r['avg_ts']:.2f}", f"{r['peak_rss_bytes'] / 2**30:.2f} GiB",
         f"{100 * r['expert_hit_rate']:.1f}%" if r.get("expert_hit_rate") is not None else "-",
         f"{read / 2**20:.0f} MiB" if read else "-", f"{allows:.2f} t/s" if allows else "-",
         f"{100 * r['avg_ts'] / allows:.0f}%" if allows else "-",
         f"{100 * r['expert_stall_fraction']:.0f}%" if r.get("expert_stall_fraction") is not None else "-"]
print("| " + " | ".join(cells) + " |")
EOF
done
cat "$out/expert-store.md"

# The same memory limit for both: memory cgroup v1 or v2, where we may create one.
run_limited() {  # name, command...
    local name="$1"; shift
    local bytes; bytes=$(python3 -c "import sys; s=sys.argv[1]; u={'K':1<<10,'M':1<<20,'G':1<<30}; print(int(float(s[:-1])*u[s[-1]]) if s[-1] in u else int(s))" "$limit")
    if [ -d /sys/fs/cgroup/memory ] && mkdir -p "/sys/fs/cgroup/memory/$name" 2>/dev/null; then
        echo "$bytes" > "/sys/fs/cgroup/memory/$name/memory.limit_in_bytes"
        (echo $BASHPID > "/sys/fs/cgroup/memory/$name/tasks"; exec "$@") || echo "(exit $?: killed at the limit?)"
        rmdir "/sys/fs/cgroup/memory/$name" 2>/dev/null || true
    elif [ -f /sys/fs/cgroup/cgroup.controllers ] && mkdir -p "/sys/fs/cgroup/$name" 2>/dev/null; then
        echo "$bytes" > "/sys/fs/cgroup/$name/memory.max"
        (echo $BASHPID > "/sys/fs/cgroup/$name/cgroup.procs"; exec "$@") || echo "(exit $?: killed at the limit?)"
        rmdir "/sys/fs/cgroup/$name" 2>/dev/null || true
    else
        echo "(no memory cgroup available here: skipped)"
        return 1
    fi
}

llama_bench="${LLAMA_BENCH:-.build-llama/build/bin/llama-bench}"
if [ -x "$llama_bench" ]; then
    echo "== inside a $limit memory cgroup (page cache included)"
    drop_caches
    echo "-- swift-moe, --expert-memory 4G"
    run_limited moe-store "$moe" bench -m "$model" -p 0 -n "$tokens" -r 1 -t 2 --expert-memory 4G > "$out/expert-store-cgroup-moe.txt" || true
    grep -E "tg|expert store|peak RSS" "$out/expert-store-cgroup-moe.txt" || true
    drop_caches
    # llama.cpp repacks Q4_0 into anonymous memory by default, which a capped cgroup cannot hold
    # (OOM-killed); --repack 0 leaves the weights in the mapping, where the page cache pages them.
    echo "-- llama.cpp llama-bench (mmap, --repack 0), 4 tokens"
    run_limited moe-llama "$llama_bench" -m "$model" -p 0 -n 4 -r 1 -t 2 --repack 0 | tee "$out/expert-store-cgroup-llama.txt" || true
else
    echo "llama-bench not built: run tools/bench-vs-llama.sh once (or set LLAMA_BENCH) for the cgroup comparison"
fi
