#!/bin/sh
# Runs every cargo-fuzz target for SECONDS each (default 60) on stable Rust.
# Each target first replays its saved regression inputs (fuzz/regressions/TARGET/,
# committed: every crash ever found), then fuzzes from its corpus. A crash fails
# the run: its input is copied into fuzz/regressions/TARGET/ (commit it with the
# fix) and printed as base64, so a crash seen only in CI's log can be saved too.
# Usage: fuzz/run.sh [SECONDS] [TARGET...]
set -u
cd "$(dirname "$0")"
secs=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-"pack_format pack_unpack frame_line frame_length frame_netstring line_receiver proxy_header http_request receive_header tls_records fetch_url cookie_file"}
failed=""
for t in $targets; do
    echo "== $t (${secs}s)"
    mkdir -p "corpus/$t" "regressions/$t" "artifacts/$t"
    if ! RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" "corpus/$t" "regressions/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1; then
        failed="$failed $t"
        for crash in artifacts/"$t"/crash-* artifacts/"$t"/oom-* artifacts/"$t"/timeout-*; do
            [ -f "$crash" ] || continue
            cp "$crash" "regressions/$t/"
            echo "saved $crash as regressions/$t/$(basename "$crash"); base64:"
            base64 "$crash"
        done
    fi
done
if [ -n "$failed" ]; then
    echo "failed:$failed"
    exit 1
fi
echo "all targets ran ${secs}s without a crash"
