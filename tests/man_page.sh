#!/usr/bin/env bash
# The man page renders without warnings, and documents every command and
# option: the commands listed by 'adaptk-stream --help', every option string the
# parser (src/cli/options.cpp) compares against, and every option shown by a
# command's --help. Usage: man_page.sh BINARY MAN_PAGE OPTIONS_CPP
set -euo pipefail
binary=$1 page=$2 parser=$3
command -v groff >/dev/null || { echo "groff not installed (apt install groff-base)"; exit 77; }
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

warnings=$(groff -man -ww -z "$page" 2>&1) || fail "groff exited $?"
[ -z "$warnings" ] || fail "groff warnings: $warnings"
rendered=$(MANWIDTH=80 man -l "$page" 2>&1) || fail "man -l failed"
grep -q "EXIT STATUS" <<<"$rendered" || fail "man -l output lacks EXIT STATUS"

# Source text with roff's \- as plain '-', for literal option names.
source_text=$(sed 's/\\-/-/g' "$page")

commands=$("$binary" --help | awk '/^Commands:/ {on = 1; next} on && /^  [a-z]/ {print $1} on && /^$/ {exit}')
[ "$(wc -w <<<"$commands")" -ge 8 ] || fail "found only these commands in --help: $commands"
for c in $commands; do
  # Each command is a tagged paragraph of the COMMANDS section: a line '.B <command>'.
  awk '/^\.SH COMMANDS/ {on = 1; next} /^\.SH/ {on = 0} on' "$page" | grep -qx "\.B $c" ||
    fail "command '$c' has no entry in the man page's COMMANDS section"
done

help_text=$("$binary" --help)
for c in $commands; do help_text+=$'\n'$("$binary" "$c" --help); done
help_options=$(grep -oE -- '(^|[ ,])--?[a-z][a-z-]*' <<<"$help_text" | tr -d ' ,' | sort -u)
parser_options=$(grep -oE 'arg == "-{1,2}[a-z][a-z-]*"' "$parser" | sed 's/.*"\(.*\)"/\1/' | sort -u)
[ "$(wc -w <<<"$parser_options")" -ge 14 ] || fail "found only these options in $parser: $parser_options"

for o in $parser_options; do
  grep -qx -- "$o" <<<"$help_options" || fail "parser option $o is missing from every --help"
done
for o in $parser_options $help_options; do
  grep -qE -- "(^|[^a-z-])$o([^a-z-]|$)" <<<"$source_text" || fail "option $o is missing from the man page"
done

echo "$(wc -w <<<"$commands") commands, $(wc -w <<<"$parser_options") parser options, $(wc -w <<<"$help_options") help options checked"
exit $((failures > 0))
