#!/bin/sh
# Runs every cargo-fuzz target for SECONDS each (default 60) on stable Rust.
# Crashes are left in fuzz/artifacts/TARGET/; the script exits non-zero if any
# target failed. Usage: fuzz/run.sh [SECONDS] [TARGET...]
set -u
cd "$(dirname "$0")"
secs=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-"pack_format pack_unpack frame_line frame_length frame_netstring line_receiver proxy_header http_request fetch_url cookie_file"}
failed=""
for t in $targets; do
    echo "== $t (${secs}s)"
    mkdir -p "corpus/$t"
    if ! RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" "corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1; then
        failed="$failed $t"
    fi
done
if [ -n "$failed" ]; then
    echo "failed:$failed"
    exit 1
fi
echo "all targets ran ${secs}s without a crash"
