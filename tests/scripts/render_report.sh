#!/usr/bin/env bash
# Renders the HTML cost report in headless Chromium and saves a screenshot to look at.
# Usage: bash tests/scripts/render_report.sh [USAGE_DIR] [OUT.png]
# Without USAGE_DIR it runs the offline demo first to produce usage files.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir="${1:-}"
out="${2:-/tmp/llmops-report.png}"
if ! command -v chromium >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
cargo build --quiet
if [ -z "$dir" ]; then
  dir="$(mktemp -d)/usage"
  ./target/debug/llmops-proxy demo --usage-dir "$dir" >/dev/null 2>&1
fi
html="$(mktemp -d)/report.html"
./target/debug/llmops-proxy report --usage-dir "$dir" --by department --html "$html"
profile="$(mktemp -d)"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --window-size=900,1400 --screenshot="$out" "file://$html" 2>/dev/null
echo "screenshot: $out"
