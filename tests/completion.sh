#!/usr/bin/env bash
# The bash completion, sourced in a non-interactive bash and driven the way
# readline drives it (COMP_WORDS / COMP_CWORD, then the function 'complete'
# registered). A command's options are offered exactly as its --help shows them.
# Usage: completion.sh BINARY COMPLETION_SCRIPT
set -uo pipefail
binary=$1 script=$2
# shellcheck source=/dev/null
source "$script"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

function_name=$(complete -p adaptk-stream | sed -n 's/.*-F \([^ ]*\) .*/\1/p')
[ -n "$function_name" ] || { echo "FAIL: no completion registered for adaptk-stream"; exit 1; }

# complete WORD... : completions for the last word, sorted, one per line.
complete_words() {
  COMP_WORDS=(adaptk-stream "$@")
  COMP_CWORD=$#
  COMPREPLY=()
  "$function_name" adaptk-stream "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
  printf '%s\n' "${COMPREPLY[@]}" | sort
}
expect() {  # expect "DESCRIPTION" "EXPECTED (newline separated, sorted)" WORDS...
  local what=$1 want=$2
  shift 2
  local got
  got=$(complete_words "$@")
  [ "$got" = "$want" ] || fail "$what: got [$(tr '\n' ' ' <<<"$got")] want [$(tr '\n' ' ' <<<"$want")]"
}

expect "pro<TAB>" "profile" pro
expect "r<TAB>" "report" r
expect "commands" "$(printf '%s\n' --help --version accumulate allocate budget compare frontier groups inspect layers profile report spectrum | sort)" ""
expect "--part and --state on accumulate" "$(printf '%s\n' --part)" accumulate model --pa
expect "no --from-state on compare" "" compare model --from
expect "--from-state and --model on layers" "$(printf '%s\n' --model)" layers --from-state s --mod
expect "--per-matrix on accumulate" "--per-matrix" accumulate model --per
expect "--format values" "$(printf '%s\n' csv json tsv)" profile model --format ""
expect "--format j" "json" report model --format j
expect "--universal-weighting values" "$(printf '%s\n' sum trace)" groups model --universal-weighting ""
expect "no analysis options for inspect" "" inspect model --k
expect "no rsvd options for budget" "" budget model --meth
expect "--method values" "$(printf '%s\n' auto exact rsvd)" report model --method ""
expect "--per values" "$(printf '%s\n' matrix type)" allocate model --per ""
expect "--thr on budget" "$(printf '%s\n' --threads --threshold)" budget model --thr
expect "--thr on profile" "$(printf '%s\n' --threads --thresholds)" profile model --thr
expect "no --universal-weighting for compare" "" compare a b --univ

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/out-dir" "$work/model-dir"
touch "$work/out-file.txt" "$work/model.safetensors" "$work/notes.txt"
expect "--out takes directories" "$work/out-dir" report model --out "$work/out"
expect "MODEL: directories and .safetensors" "$(printf '%s\n' "$work/model-dir" "$work/model.safetensors")" profile "$work/mo"

commands=$("$binary" --help | awk '/^Commands:/ {on = 1; next} on && /^  [a-z]/ {print $1} on && /^$/ {exit}')
for c in $commands; do
  offered=$(complete_words "$c" model --)
  shown=$("$binary" "$c" --help | grep -oE -- '(^|[ ,])--[a-z][a-z-]*' | tr -d ' ,' | sort -u)
  for o in $shown; do
    grep -qx -- "$o" <<<"$offered" || fail "$c: '$o' from --help is not completed"
  done
  for o in $offered; do  # and nothing the command refuses
    grep -qx -- "$o" <<<"$shown" || fail "$c: '$o' is completed but not in its --help"
  done
done
echo "checked $(wc -w <<<"$commands") commands"
exit $((failures > 0))
