#!/usr/bin/env bash
# The gateway's /debug/ page in headless Chromium: it loads, it polled
# /debug/stats at least once, and the live goroutine count it shows matches
# /debug/stats fetched with curl (within a small tolerance: the browser's and
# curl's own connections are goroutines too).
#
#   bash examples/gateway/tests/browser.sh [path/to/gateway]
#
# Without an argument the gateway is built (release). Installs Debian's
# chromium and curl with apt-get when they are missing. Exits non-zero on
# failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
bin="${1:-}"
tolerance="${TOLERANCE:-10}"

if [ -z "$bin" ]; then
    (cd "$root" && cargo build --release -p gateway --bin gateway)
    bin="${CARGO_TARGET_DIR:-$root/target}/release/gateway"
fi

need() {
    if ! command -v "$1" >/dev/null 2>&1; then
        echo "installing $2 with apt-get..."
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
    fi
}
need chromium chromium
need curl curl

work="$(mktemp -d)"
gw_pid=""
cleanup() {
    if [ -n "$gw_pid" ] && kill -0 "$gw_pid" 2>/dev/null; then
        kill -KILL "$gw_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

"$bin" --listen 127.0.0.1:0 >"$work/gateway.log" 2>&1 &
gw_pid=$!
addr=""
for _ in $(seq 1 100); do
    addr="$(sed -n 's|^gateway listening on http://\([^/]*\)/.*|\1|p' "$work/gateway.log" | head -n1)"
    [ -n "$addr" ] && break
    sleep 0.1
done
if [ -z "$addr" ]; then
    echo "FAIL: the gateway did not start"; cat "$work/gateway.log"; exit 1
fi
echo "gateway on $addr (pid $gw_pid)"

# Some traffic, so the page has something to show.
for p in /users/1 /orders/2 /inventory/3 /dashboard; do
    curl -fsS "http://$addr$p" >/dev/null
done

chromium --headless --disable-gpu --no-sandbox --virtual-time-budget=5000 \
    --dump-dom "http://$addr/debug/" >"$work/dom.html" 2>"$work/chromium.log" || {
    echo "FAIL: chromium exited with an error"; tail -n 20 "$work/chromium.log"; exit 1
}
stats="$(curl -fsS "http://$addr/debug/stats")"

value_of() { # the text of the element with id $1 in the dumped DOM
    sed -n "s|.*id=\"$1\"[^>]*>\([^<]*\)<.*|\1|p" "$work/dom.html" | head -n1
}
page_goroutines="$(value_of goroutines)"
page_spawned="$(value_of spawned)"
updated="$(value_of updated)"
polls="$(sed -n 's|.*<body[^>]*data-polls="\([0-9]*\)".*|\1|p' "$work/dom.html" | head -n1)"
curl_goroutines="$(printf '%s' "$stats" | sed -n 's|^{"goroutines":\([0-9]*\),.*|\1|p')"

echo "page:  goroutines=$page_goroutines spawned=$page_spawned updated='$updated' polls=${polls:-0}"
echo "curl:  goroutines=$curl_goroutines"

fail=0
grep -q '<title>goro debug</title>' "$work/dom.html" || { echo "FAIL: not the debug page"; fail=1; }
case "$page_goroutines" in
    ''|*[!0-9]*) echo "FAIL: no goroutine count on the page"; fail=1 ;;
esac
case "$curl_goroutines" in
    ''|*[!0-9]*) echo "FAIL: no goroutine count from /debug/stats"; fail=1 ;;
esac
if [ "$updated" = "never" ] || [ -z "${polls:-}" ]; then
    echo "FAIL: the page never polled /debug/stats"; fail=1
fi
if [ "$fail" = 0 ]; then
    diff=$(( page_goroutines - curl_goroutines ))
    diff=${diff#-}
    if [ "$diff" -gt "$tolerance" ]; then
        echo "FAIL: the page shows $page_goroutines goroutines, /debug/stats $curl_goroutines (tolerance $tolerance)"
        fail=1
    fi
    if ! grep -q 'id="dump"' "$work/dom.html" || grep -q '<pre id="dump">loading…</pre>' "$work/dom.html"; then
        echo "FAIL: the grouped dump did not load"; fail=1
    fi
fi

# Graceful shutdown on SIGTERM.
kill -TERM "$gw_pid"
for _ in $(seq 1 100); do
    kill -0 "$gw_pid" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$gw_pid" 2>/dev/null; then
    echo "FAIL: the gateway did not exit on SIGTERM"; fail=1
else
    wait "$gw_pid" && code=0 || code=$?
    gw_pid=""
    grep -q '^drained' "$work/gateway.log" || { echo "FAIL: no graceful drain"; cat "$work/gateway.log"; fail=1; }
    [ "$code" = 0 ] || { echo "FAIL: the gateway exited with $code"; fail=1; }
fi

if [ "$fail" != 0 ]; then
    echo "--- dom ---"; head -c 4000 "$work/dom.html"; echo
    exit 1
fi
echo "PASS: /debug/ loaded in Chromium (polled ${polls}x); goroutines on the page $page_goroutines, /debug/stats $curl_goroutines"
