#!/usr/bin/env bash
# The README's screenshot of the terminal client: the pseudo-terminal test
# (crates/server/tests/terminal.rs) runs a real `palaver chat` session in tmux and, with
# TUI_CAPTURE set, saves the screen with its colours; that becomes HTML
# (scripts/ansi-to-html.py) and Chromium takes the picture.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/screenshots/terminal.png}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
TUI_CAPTURE="$work/screen.ans" cargo test -p palaver-server --test terminal -- --exact \
  chat_session_in_a_pseudo_terminal
python3 scripts/ansi-to-html.py "$work/screen.ans" > "$work/screen.html"
chromium --headless --no-sandbox --hide-scrollbars --force-device-scale-factor=1 \
  --window-size="${SIZE:-752,440}" --screenshot="$PWD/$out" "file://$work/screen.html"
echo "wrote $out"
