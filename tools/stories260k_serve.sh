# Sourced (from the repository root) by tools/clients/run.sh and
# tools/lmeval/run.sh: both check a client of `lmscore serve` on ../shared's
# stories260K against `lmscore score`, and need the same binary, GGUF and
# server start-up and shutdown.

# stories260k_gguf WORK SHARED sets $lmscore (LMSCORE, else bin/lmscore,
# built when missing) and $gguf (WORK/stories260K.gguf, converted once from
# the llama2.c files in SHARED).
stories260k_gguf() {
    lmscore=${LMSCORE:-bin/lmscore}
    if [ ! -x "$lmscore" ]; then
        go build -o bin/lmscore ./cmd/lmscore
        lmscore=bin/lmscore
    fi
    gguf=$1/stories260K.gguf
    if [ ! -f "$gguf" ]; then
        "$lmscore" convert llama2c --model "$2/stories260K.bin" --tokenizer "$2/tok512.bin" --out "$gguf"
    fi
}

# serve_start TAG LOG [FLAGS...] starts `lmscore serve` on $gguf on a free
# loopback port, with FLAGS, its stderr in LOG. It sets $pid, and $url from
# the first line the server logs; the EXIT trap stops the server should the
# caller fail before serve_stop. TAG prefixes the error messages.
serve_start() {
    serve_tag=$1
    serve_log=$2
    shift 2
    "$lmscore" serve --model "$gguf" --addr 127.0.0.1:0 "$@" 2>"$serve_log" &
    pid=$!
    trap 'kill -TERM $pid 2>/dev/null || true' EXIT
    url=""
    for _ in $(seq 1 100); do
        url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$serve_log" | head -n 1)
        [ -n "$url" ] && break
        kill -0 $pid 2>/dev/null || { cat "$serve_log"; exit 1; }
        sleep 0.1
    done
    [ -n "$url" ] || { echo "$serve_tag: the server did not start"; cat "$serve_log"; exit 1; }
}

# serve_stop stops the server the way an operator does; it must exit cleanly.
serve_stop() {
    kill -TERM $pid
    wait $pid || { echo "$serve_tag: lmscore serve exited with status $? after SIGTERM"; exit 1; }
    trap - EXIT
}
