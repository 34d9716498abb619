#!/usr/bin/env bash
# check-standalone.sh - fails if a tracked file reaches outside the checkout.
#
# The repository must build, test and document itself with nothing beside
# it. This lists every line of a tracked text file that names
#   - the sibling `shared` folder reached by going up one level,
#   - the folder the checkout sits in (an absolute path of this machine),
#   - the build machines' work, root and home folders,
#   - the steering documents kept outside it (the style guide, the mission),
# as FILE:LINE: TEXT, and exits 1 if there is any. Cargo.lock files are
# skipped (they hold registry checksums, no paths).
#
# The patterns are assembled below rather than written out, so this script
# does not report itself.
#
# Usage: bash scripts/check-standalone.sh   (from anywhere in the checkout)
set -euo pipefail

ROOT=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)
cd "$ROOT"

up='..'
slash='/'
patterns=(
  "$up${slash}shared"
  "${slash}work${slash}"
  "${slash}root${slash}"
  "${slash}home${slash}"
)
# The folder holding the checkout, unless it is one every machine has (a
# clone in /tmp is normal, and scripts may use /tmp on purpose).
parent=$(dirname "$ROOT")
case "$parent" in
  / | /tmp | /var/tmp) ;;
  *) patterns+=("$parent$slash") ;;
esac

# The steering documents the project grew from live outside it: naming one
# sends a reader somewhere the repository cannot take them (unless the
# repository has a file of that name itself).
for doc in STYLE MISSION DESIGN DEVELOPERS; do
  [ -n "$(git ls-files -- "$doc.md" "*/$doc.md")" ] || patterns+=("$doc.md")
done

args=()
for p in "${patterns[@]}"; do args+=(-e "$p"); done

# -I: skip binary files (captures, HEP packets); -F: fixed strings.
if hits=$(git grep -n -I -F "${args[@]}" -- . ':(exclude)Cargo.lock' ':(exclude)fuzz/Cargo.lock'); then
  printf '%s\n' "$hits" >&2
  n=$(printf '%s\n' "$hits" | wc -l)
  printf 'check-standalone: %d line(s) above name a path outside the repository\n' "$n" >&2
  printf '(looked for: %s)\n' "${patterns[*]}" >&2
  exit 1
fi
echo "check-standalone: no tracked file names a path outside the repository"
