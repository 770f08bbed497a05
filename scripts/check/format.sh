#!/usr/bin/env bash
# clang-format check of every C++ source (the root .clang-format): lists the files whose
# formatting differs and exits 1 when there is one. Fix with: scripts/check/format.sh --fix
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
# One version, Debian bookworm's: another formats some constructs differently.
clang_format=${EBM_CLANG_FORMAT:-clang-format-14}
mapfile -t files < <(find bench datasets ebm examples fuzz plugin tests -name '*.cc' -o -name '*.h' | sort)
if [[ "${1:-}" == --fix ]]; then
  "$clang_format" -i "${files[@]}"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  "$clang_format" --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if ((${#bad[@]})); then
  printf '%s\n' "${bad[@]}"
  echo "format: ${#bad[@]} of ${#files[@]} files differ from clang-format ($("$clang_format" --version)); fix with scripts/check/format.sh --fix"
  exit 1
fi
echo "format: ${#files[@]} files as clang-format writes them"
