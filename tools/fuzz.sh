#!/usr/bin/env bash
# Builds the libFuzzer harnesses (clang, ASan + UBSan) in build-fuzz/, seeds
# fuzz-corpus/ (git-ignored) from tests/data, and runs each harness for a
# bounded time. Usage: tools/fuzz.sh [seconds per harness, default 60] [harness...]
# (default: every harness)
# Crash inputs land in fuzz-corpus/crashes/; replay one with
#   build-fuzz/tests/fuzz/<harness> fuzz-corpus/crashes/<file>
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
build=build-fuzz
corpus=fuzz-corpus
all_harnesses=(fuzz_safetensors_header fuzz_index fuzz_gguf fuzz_llama2c)
harnesses=("${all_harnesses[@]}")
if [[ $# -gt 1 ]]; then harnesses=("${@:2}"); fi

if [[ ! -f $build/build.ninja ]]; then
    CXX=${CXX:-clang++} meson setup "$build" -Dfuzz=true -Dtests=disabled || exit 1
fi
meson compile -C "$build" "${harnesses[@]}" || exit 1

mkdir -p "$corpus/crashes" "${all_harnesses[@]/#/$corpus/}"

# Seeds, named by content so repeated runs do not pile up copies.
seed() {  # seed <dir> <file>
    cp -f "$2" "$1/seed-$(sha1sum "$2" | cut -c1-16)"
}
while IFS= read -r -d '' file; do
    seed "$corpus/fuzz_safetensors_header" "$file"
done < <(find tests/data -name '*.safetensors' -print0)
while IFS= read -r -d '' file; do
    seed "$corpus/fuzz_index" "$file"
done < <(find tests/data -name '*.index.json' -print0)
# GGUF seeds: the real files are 1-2 MB, over -max_len; their first 64 KiB
# (magic, key-values, the start of the tensor infos) still steer mutations.
while IFS= read -r -d '' file; do
    head -c 65536 "$file" > "$corpus/fuzz_gguf/seed-head-$(sha1sum "$file" | cut -c1-16)"
done < <(find tests/data -name '*.gguf' -print0)
# An index that opens: it names the harness's own tiny shard.
shard=model-00001-of-00001.safetensors
printf '{"metadata":{"total_size":36},"weight_map":{"model.layers.0.self_attn.q_proj.weight":"%s","model.layers.0.mlp.down_proj.weight":"%s","model.norm.weight":"%s"}}' \
    "$shard" "$shard" "$shard" > "$corpus/fuzz_index/seed-valid"

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
DICT

status=0
for harness in "${harnesses[@]}"; do
    log=$corpus/$harness.log
    "$build/tests/fuzz/$harness" "$corpus/$harness" \
        -max_total_time="$seconds" -max_len=65536 -timeout=10 -dict="$dict" \
        -artifact_prefix="$corpus/crashes/$harness-" -print_final_stats=1 >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    crashes=$(find "$corpus/crashes" -name "$harness-*" | wc -l)
    echo "$harness: ${execs:-?} executions (${rate:-?}/s) in ${seconds} s, $crashes crash file(s), exit status $rc"
    if [[ $rc -ne 0 ]]; then
        grep -m1 -E 'ERROR|SUMMARY|deadly signal|uncaught' "$log"
        echo "  full log: $log"
        status=1
    fi
done
exit $status
