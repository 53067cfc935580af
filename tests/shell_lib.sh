# shell_lib.sh: the helpers every shell test under tests/ shares. A test sources it after setting
# its variables:
#   source "$(dirname "${BASH_SOURCE[0]}")/../shell_lib.sh"
# expect_error runs "$lepus" and writes its streams to "$work" (the test's scratch directory).

# fail MESSAGE...: print FAIL and stop the test.
fail() { echo "FAIL: $*"; exit 1; }

# expect_error REGEX ARGS...: `$lepus ARGS...` exits with code 1 and its stderr matches the
# extended REGEX (grep -E); on failure prints stderr.
expect_error() {
  local regex=$1
  shift
  set +e
  "$lepus" "$@" >"$work/out.txt" 2>"$work/err.txt"
  local code=$?
  set -e
  [[ $code -eq 1 ]] || { cat "$work/err.txt"; fail "exit code $code, expected 1: $*"; }
  grep -Eq -- "$regex" "$work/err.txt" || { cat "$work/err.txt"; fail "stderr does not match /$regex/: $*"; }
}
