# Sourced by the bench scripts: start_server OUT_DIR COMMAND... starts a loopback test server
# (an example binary that prints its URLs, one per line, then serves), stops it when the script
# exits, and waits until it has printed two lines; they are in OUT_DIR/server.out.
start_server() {
  local out=$1
  shift
  "$@" > "$out/server.out" 2> "$out/server.err" &
  server_pid=$!
  trap 'kill $server_pid 2>/dev/null || true' EXIT
  for _ in $(seq 100); do
    [ "$(wc -l < "$out/server.out")" -ge 2 ] && return
    sleep 0.1
  done
  echo "the test server did not start; see $out/server.err" >&2
  return 1
}
