#!/usr/bin/env bash
# Benchmark of `ssgen serve` against Debian's nginx on the same root, in
# the same run (ratios, not rates, are what to compare across machines):
# catalog requests/s over HTTPS, uncompressed and gzip, with 1 and 16
# connections (wrk), and the throughput of one 256 MiB download (curl,
# HTTP/1.1 and HTTP/2). Both servers listen on 127.0.0.1 only, run as
# processes of this script with their own files in a temp directory, and
# are stopped by PID.
#
# The machine is shared and noisy: each figure is the median of ROUNDS
# runs, taken in turns (nginx, ssgen, nginx, ...), so that a burst of load
# from elsewhere hits both alike.
#
# Usage: bench/serve.sh [SECONDS_PER_RUN] [ROUNDS]   (default 3 s, 5 rounds)
# Needs: nginx (nginx-light), wrk, curl; builds ssgen in release mode.
# Goals: catalog req/s >= 0.5x nginx, large-file throughput >= 0.9x.
set -euo pipefail
secs=${1:-3}
rounds=${2:-5}
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ssgen="$repo/target/release/ssgen"
cargo build --release -p ssgen --manifest-path "$repo/Cargo.toml" >&2
for tool in nginx wrk curl; do
    command -v "$tool" >/dev/null || { echo "bench/serve.sh needs $tool (scripts/setup.sh)" >&2; exit 2; }
done
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
# nginx's workers run as nobody: everything they serve must be readable.
chmod 755 "$work"

www="$work/www"
"$ssgen" demo "$www" >/dev/null 2>&1
head -c $((256 << 20)) /dev/urandom > "$www/images/big.img"
chmod -R a+rX "$www/images" "$www/streams"

# A free port the kernel picks (bound and released at once).
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ssgen_port=$(port)
nginx_port=$(port)

setsid "$ssgen" serve --self-signed --listen "127.0.0.1:$ssgen_port" "$www" \
    >"$work/ssgen.out" 2>"$work/ssgen.err" &
pids+=($!)
for _ in $(seq 100); do grep -q '^serving' "$work/ssgen.out" 2>/dev/null && break; sleep 0.1; done
grep -q '^serving' "$work/ssgen.out" || { cat "$work/ssgen.err" >&2; exit 2; }
tls="$www/.ssgen/tls"

mkdir -p "$work/nginx-tmp"
cat > "$work/nginx.conf" <<EOF
worker_processes 2;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    types { application/json json; }
    default_type application/octet-stream;
    gzip on;
    gzip_types application/json;
    gzip_min_length 0;
    client_body_temp_path $work/nginx-tmp/body;
    proxy_temp_path $work/nginx-tmp/proxy;
    fastcgi_temp_path $work/nginx-tmp/fastcgi;
    uwsgi_temp_path $work/nginx-tmp/uwsgi;
    scgi_temp_path $work/nginx-tmp/scgi;
    server {
        listen 127.0.0.1:$nginx_port ssl http2;
        ssl_certificate $tls/cert.pem;
        ssl_certificate_key $tls/key.pem;
        ssl_session_cache shared:SSL:1m;
        root $www;
    }
}
EOF
setsid nginx -c "$work/nginx.conf" -e "$work/nginx-error.log" &
pids+=($!)
for _ in $(seq 100); do
    curl -sk -o /dev/null "https://127.0.0.1:$nginx_port/streams/v1/index.json" && break
    sleep 0.1
done

catalog=streams/v1/images.json
curl -sSf -o /dev/null --cacert "$tls/ca.pem" "https://127.0.0.1:$ssgen_port/$catalog"
size=$(stat -c %s "$www/$catalog")
# Both compress the catalog when asked (else the gzip runs compare nothing).
for p in "$nginx_port" "$ssgen_port"; do
    curl -sS -D - -o /dev/null -H 'Accept-Encoding: gzip' --cacert "$tls/ca.pem" \
        "https://127.0.0.1:$p/$catalog" | grep -qi '^content-encoding: gzip' \
        || { echo "the server on port $p does not gzip $catalog" >&2; exit 2; }
done

# Requests/s of one wrk run: threads, connections, URL, extra args.
rps() {
    local threads=$1 conns=$2 url=$3
    shift 3
    wrk -t"$threads" -c"$conns" -d"${secs}s" "$@" "$url" | awk '/^Requests\/sec:/ {print $2}'
}
# Bytes/s of one download.
download() { curl -sS -o /dev/null -w '%{speed_download}' "$@"; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
ratio() { echo "$1 / $2" | bc -l; }
# Runs "$@" COUNT times with each server's base URL in turns; sets n and s
# to the medians.
turns() {
    local count=$1 nv=() sv=() i
    shift
    for i in $(seq "$count"); do
        nv+=("$("$@" "https://127.0.0.1:$nginx_port")")
        sv+=("$("$@" "https://127.0.0.1:$ssgen_port")")
    done
    n=$(median "${nv[@]}")
    s=$(median "${sv[@]}")
}
catalog_rps() { # threads conns encoding base
    local args=()
    [ "$3" = gzip ] && args=(-H "Accept-Encoding: gzip")
    rps "$1" "$2" "$4/$catalog" "${args[@]}"
}
big_download() { download "$1" --cacert "$tls/ca.pem" "$2/images/big.img"; }

echo "catalog: $catalog, $size bytes; large file: 256 MiB; $(nproc) cores; medians of $rounds runs of ${secs}s (downloads: $((rounds * 2 + 1)))"
printf '%-34s %14s %14s %10s\n' "request (HTTPS)" "nginx" "ssgen serve" "ssgen/nginx"
for encoding in plain gzip; do
    for conns in 1 16; do
        threads=$((conns < 2 ? 1 : 2))
        turns "$rounds" catalog_rps "$threads" "$conns" "$encoding"
        printf '%-34s %10.0f r/s %10.0f r/s %9.2fx\n' \
            "catalog, $encoding, $conns connection(s)" "$n" "$s" "$(ratio "$s" "$n")"
    done
done
for proto in --http1.1 --http2; do
    # Under a second each: more of them.
    turns $((rounds * 2 + 1)) big_download "$proto"
    printf '%-34s %9.0f MB/s %9.0f MB/s %9.2fx\n' \
        "256 MiB download, ${proto#--}" "$(echo "$n/1000000" | bc -l)" "$(echo "$s/1000000" | bc -l)" "$(ratio "$s" "$n")"
done
