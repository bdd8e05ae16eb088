#!/usr/bin/env bash
# Fuzzing outside CI. Builds every harness of tests/fuzz/meson.build with
# clang, libFuzzer, ASan and UBSan in build-sanitize/ (tools/sanitize-test's
# build, which replays the corpora under the same instrumentation), seeds a
# working corpus fuzz-corpus/<harness>/ (git-ignored) from the committed
# corpus tests/fuzz/corpus/<harness>/ and tests/data, and fuzzes each harness
# in turn (one process at a time) for SECONDS, appending a line per run to
# fuzz-corpus/campaign.log. Run it under `nice -n 19` on a shared machine.
#   tools/fuzz.sh [--fast] [SECONDS, default 60] [HARNESS...]   fuzz (default: every harness)
#   tools/fuzz.sh --minimise [HARNESS...]             merge the working corpus into
#       the committed one, keeping the fewest, smallest inputs that reach the same coverage
# --fast fuzzes an optimised build with libFuzzer alone (build-fuzz/): many
# times the executions per second, finding crashes, aborts, escaped exceptions
# and hangs but not the silent memory errors only ASan sees; the working corpus
# it grows is the same, so replay it under the sanitizers afterwards
# (build-sanitize/tests/fuzz/<harness> -runs=0 fuzz-corpus/<harness>).
# Crash inputs land in fuzz-corpus/crashes/; replay one with
#   build-sanitize/tests/fuzz/<harness> fuzz-corpus/crashes/<file>
# and commit it to tests/fuzz/corpus/<harness>/ with the fix, so the suite replays it.
set -uo pipefail
cd "$(dirname "$0")/.."

build=build-sanitize
corpus=fuzz-corpus
committed=tests/fuzz/corpus
minimise=false
if [[ ${1:-} == --minimise ]]; then minimise=true; shift; fi
if [[ ${1:-} == --fast ]]; then build=build-fuzz; shift; fi
seconds=60
if [[ $minimise == false && $# -gt 0 ]]; then seconds=$1; shift; fi

if [[ $build == build-fuzz ]]; then
    [[ -f $build/build.ninja ]] ||
        CXX=${CXX:-clang++} meson setup "$build" --buildtype=release -Db_lundef=false -Dfuzz=true || exit 1
else
    tools/sanitize-test --setup || exit 1
fi
# The harnesses are the build's tests in suite 'fuzz'.
mapfile -t all_harnesses < <(meson introspect "$build" --tests |
    python3 -c 'import json, sys; print("\n".join(t["name"] for t in json.load(sys.stdin) if any(s.split(":")[-1] == "fuzz" for s in t["suite"])))')
harnesses=("${all_harnesses[@]}")
if [[ $# -gt 0 ]]; then harnesses=("$@"); fi
meson compile -C "$build" adaptk-stream "${harnesses[@]}" || exit 1  # adaptk-stream writes the state seeds

if [[ $minimise == true ]]; then
    for harness in "${harnesses[@]}"; do
        merged=$(mktemp -d)
        "$build/tests/fuzz/$harness" -merge=1 -max_len=65536 "$merged" "$committed/$harness" "$corpus/$harness" \
            >"$corpus/$harness.merge.log" 2>&1 || { echo "$harness: merge failed, see $corpus/$harness.merge.log"; exit 1; }
        rm -rf "${committed:?}/$harness"
        mv "$merged" "$committed/$harness"
        chmod 755 "$committed/$harness"
        echo "$harness: $(ls "$committed/$harness" | wc -l) inputs, $(du -sk "$committed/$harness" | cut -f1) KiB"
    done
    exit 0
fi

# fuzz_index writes a file per input: in memory it ran 5x the executions
# per second it did on disk (2,258/s against 422/s, both at nice 19 on a loaded machine).
if [[ -z ${TMPDIR:-} && -d /dev/shm && -w /dev/shm ]]; then export TMPDIR=/dev/shm; fi
mkdir -p "$corpus/crashes"
for harness in "${harnesses[@]}"; do
    mkdir -p "$corpus/$harness"
    cp -f "$committed/$harness"/* "$corpus/$harness/" 2>/dev/null
done

# Seeds from the real files, named by content so repeated runs do not pile up copies.
seed() {  # seed <dir> <file>
    [[ -d $1 ]] && cp -f "$2" "$1/seed-$(sha1sum "$2" | cut -c1-16)"
}
while IFS= read -r -d '' file; do
    seed "$corpus/fuzz_safetensors_header" "$file"
done < <(find tests/data -name '*.safetensors' -size -64k -print0)
while IFS= read -r -d '' file; do
    seed "$corpus/fuzz_index" "$file"
done < <(find tests/data -name '*.index.json' -print0)
# GGUF seeds: the real files are 1-2 MB, over -max_len; their first 64 KiB
# (magic, key-values, the start of the tensor infos) still steer mutations.
if [[ -d $corpus/fuzz_gguf ]]; then
    while IFS= read -r -d '' file; do
        head -c 65536 "$file" > "$corpus/fuzz_gguf/seed-head-$(sha1sum "$file" | cut -c1-16)"
    done < <(find tests/data -name '*.gguf' -print0)
fi
# Valid state files, from the smallest parts of stories260K (d = 64): with and
# without --center, and with per-matrix rows (a part of 16 holds one or two matrices).
if [[ -d $corpus/fuzz_state_file ]]; then
    for options in "" --center --per-matrix; do
        state=$corpus/state-seed$options.safetensors
        "$build/adaptk-stream" accumulate tests/data/stories260K/hf/f32 --part 1/16 --state "$state" -q $options &&
            seed "$corpus/fuzz_state_file" "$state"
        rm -f "$state"
    done
fi

# Tokens of both formats, so mutations speak JSON keys the parsers look for.
dict=$corpus/tokens.dict
cat > "$dict" <<'DICT'
"dtype"
"shape"
"data_offsets"
"__metadata__"
"weight_map"
"metadata"
"F64"
"F32"
"F16"
"BF16"
"I64"
"U8"
"BOOL"
"F8_E4M3"
"model-00001-of-00001.safetensors"
".safetensors"
"model.layers.0.self_attn.q_proj.weight"
"lm_head.weight"
"version https://git-lfs"
"18446744073709551615"
"4294967296"
"1e999"
"\x00\x00\x00\x00\x00\x00\x00\x00"
"GGUF"
"general.alignment"
"general.architecture"
"llama.embedding_length"
"\x20\x00\x00\x00"
"\x08\x00\x00\x00"
"\x09\x00\x00\x00"
"adaptk-state"
"format_version"
"fingerprint"
"matrices"
"per_matrix"
".eigenvalues"
"vectors"
"checksum"
"q.gram"
"q.sum"
"U64"
DICT

# fuzz_index writes its input to a file each run: keep that in memory.
[[ -d /dev/shm ]] && export TMPDIR=/dev/shm
# -timeout=60: on a loaded shared machine a niced harness can stall for
# seconds on an input that takes milliseconds (seen at -timeout=10).
status=0
commit=$(git rev-parse --short HEAD)
for harness in "${harnesses[@]}"; do
    log=$corpus/$harness.log
    "$build/tests/fuzz/$harness" "$corpus/$harness" \
        -max_total_time="$seconds" -max_len=65536 -timeout=60 -dict="$dict" \
        -artifact_prefix="$corpus/crashes/$harness-" -print_final_stats=1 >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    coverage=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
    crashes=$(find "$corpus/crashes" -name "$harness-*" | wc -l)
    summary="$harness ($build): ${execs:-?} executions (${rate:-?}/s) in ${seconds} s, ${coverage:-cov: ?}, $crashes crash file(s), exit status $rc"
    echo "$summary"
    echo "$(date -u +%FT%TZ) $commit $summary" >> "$corpus/campaign.log"
    if [[ $rc -ne 0 ]]; then
        grep -m1 -E 'ERROR|SUMMARY|deadly signal|uncaught' "$log"
        echo "  full log: $log"
        status=1
    fi
done
exit $status
