# Shared helpers of the CLI golden tests (sourced; not a test itself).
# Usage in a test: source "$(dirname "$0")/common.bash" "$@"  -> $QPRUNE, $DATA, $TMP set.
set -Eeuo pipefail
# A command that fails outside a check (its output often sent to /dev/null) names itself: a CI log
# must never show a failed test with nothing printed.
# (Only while errexit is on: a test that turns it off around an expected failure stays quiet.)
trap 'rc=$?; [[ $- != *e* ]] || echo "FAIL: ${BASH_SOURCE[0]##*/}:$LINENO: exit $rc: $BASH_COMMAND" >&2' ERR
QPRUNE=$1
DATA=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# expect_line OUTPUT KEY VALUE: OUTPUT has a line `KEY <spaces>: VALUE`.
expect_line() {
  grep -Eq "^$2 *: $3\$" <<<"$1" || { echo "$1" >&2; fail "expected line '$2 : $3'"; }
}
# expect_exit CODE CMD...: CMD exits with CODE; its stderr is left in $TMP/stderr.
expect_exit() {
  local want=$1; shift
  local got=0
  "$@" >"$TMP/stdout" 2>"$TMP/stderr" || got=$?
  [[ $got -eq $want ]] || { cat "$TMP/stderr" >&2; fail "'$*' exited $got, expected $want"; }
}
# MPI tests (tests/cli/mpi_*.sh) get the launcher as a third argument: $MPIRUN runs N ranks on this
# machine (as root OpenMPI needs --allow-run-as-root; --oversubscribe lets 2 ranks share 1 core).
if [[ $# -ge 3 ]]; then
  # Containers often forbid the cross-process memory copy OpenMPI uses for large messages.
  export OMPI_MCA_btl_vader_single_copy_mechanism=none
  MPIRUN=("$3" --oversubscribe)
  [[ $(id -u) -eq 0 ]] && MPIRUN+=(--allow-run-as-root)
  mpirun_np() { local n=$1; shift; "${MPIRUN[@]}" -np "$n" "$@"; }
fi

# variant NAME EDIT: a copy of the checkpoint $SRC whose config (cfg) and safetensors header (h, a
# dict name -> entry) the python statements EDIT change; the data bytes stay as they are.
variant() {
  local dir=$TMP/$1
  cp -r "$SRC" "$dir"
  python3 - "$dir" "$2" <<'EOF'
import json, struct, sys
d, edit = sys.argv[1], sys.argv[2]
cfg = json.load(open(d + '/config.json'))
b = open(d + '/model.safetensors', 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n])
def rename(old, new): h[new] = h.pop(old)
exec(edit)
json.dump(cfg, open(d + '/config.json', 'w'))
t = json.dumps(h).encode()
t += b' ' * (-len(t) % 8)
open(d + '/model.safetensors', 'wb').write(struct.pack('<Q', len(t)) + t + b[8 + n:])
EOF
  echo "$dir"
}
