#!/usr/bin/env bash
# A PNG of a run's HTML report, rendered by headless Chromium (Debian: apt-get install chromium).
#   bash scripts/screenshot.sh runs/quickstart docs/quickstart-report.png [width] [height]
# The page is cropped to its content (the blank area below the last section is trimmed).
set -euo pipefail
run="${1:?usage: screenshot.sh RUN_DIR OUT.png [width] [height]}"
out="${2:?usage: screenshot.sh RUN_DIR OUT.png [width] [height]}"
width="${3:-1100}"; height="${4:-2600}"
[ -f "$run/report.html" ] || { echo "no report in $run (run 'genlab report $run' first)" >&2; exit 2; }
browser="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
[ -n "$browser" ] || { echo "needs Chromium: apt-get install chromium" >&2; exit 2; }
page="file://$(cd "$(dirname "$run/report.html")" && pwd)/report.html"
tmp="$(mktemp --suffix=.png)"; trap 'rm -f "$tmp"' EXIT
"$browser" --headless=new --no-sandbox --disable-gpu --hide-scrollbars \
    --window-size="$width,$height" --screenshot="$tmp" "$page" >/dev/null 2>&1
py="$(dirname "$0")/../.venv/bin/python"; [ -x "$py" ] || py=python3  # needs Pillow
"$py" - "$tmp" "$out" <<'PY'
import sys
from PIL import Image
im = Image.open(sys.argv[1]).convert("RGB")
# the last row with ink (anything darker than near-white; faint panel borders do not count)
bbox = im.convert("L").point(lambda v: 255 if v < 200 else 0).getbbox()
if bbox:
    im = im.crop((0, 0, im.width, min(im.height, bbox[3] + 24)))
im.save(sys.argv[2], optimize=True)
print(f"wrote {sys.argv[2]} ({im.width}x{im.height})")
PY
