#!/usr/bin/env python3
"""Turns a terminal capture with colour escapes (`tmux capture-pane -e -p`) into an HTML
page that looks like the terminal, for screenshots of the terminal client
(scripts/tui-screenshot.sh). Handles the SGR sequences tmux emits: bold, dim, italic,
underline, reverse, the 8/16 colours, 256 colours and RGB."""

import html
import re
import sys

BASE = ["#1e1e1e", "#e06c75", "#98c379", "#e5c07b", "#61afef", "#c678dd", "#56b6c2", "#dcdfe4",
        "#5c6370", "#ff7a85", "#b5e890", "#ffd68a", "#82c4ff", "#de9bff", "#7fd8e3", "#ffffff"]
FG, BG = "#dcdfe4", "#1e1e1e"


def color256(n):
    if n < 16:
        return BASE[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return "#%02x%02x%02x" % (steps[n // 36], steps[(n // 6) % 6], steps[n % 6])
    v = 8 + (n - 232) * 10
    return "#%02x%02x%02x" % (v, v, v)


def apply(state, params):
    codes = [int(p) if p else 0 for p in params.split(";")] if params else [0]
    i = 0
    while i < len(codes):
        c = codes[i]
        if c == 0:
            state.clear()
        elif c in (1, 2, 3, 4, 7):
            state[c] = True
        elif c in (22, 23, 24, 27):
            for k in {22: (1, 2), 23: (3,), 24: (4,), 27: (7,)}[c]:
                state.pop(k, None)
        elif 30 <= c <= 37:
            state["fg"] = BASE[c - 30]
        elif 90 <= c <= 97:
            state["fg"] = BASE[c - 90 + 8]
        elif 40 <= c <= 47:
            state["bg"] = BASE[c - 40]
        elif 100 <= c <= 107:
            state["bg"] = BASE[c - 100 + 8]
        elif c == 39:
            state.pop("fg", None)
        elif c == 49:
            state.pop("bg", None)
        elif c in (38, 48) and i + 1 < len(codes):
            key = "fg" if c == 38 else "bg"
            if codes[i + 1] == 5 and i + 2 < len(codes):
                state[key] = color256(codes[i + 2])
                i += 2
            elif codes[i + 1] == 2 and i + 4 < len(codes):
                state[key] = "#%02x%02x%02x" % tuple(codes[i + 2:i + 5])
                i += 4
        i += 1


def style(state):
    fg, bg = state.get("fg", FG), state.get("bg", BG)
    if state.get(7):
        fg, bg = bg, fg
    css = ["color:" + fg, "background:" + bg]
    if state.get(1):
        css.append("font-weight:bold")
    if state.get(2):
        css.append("opacity:0.6")
    if state.get(3):
        css.append("font-style:italic")
    if state.get(4):
        css.append("text-decoration:underline")
    return ";".join(css)


def convert(text, title):
    out, state = [], {}
    for line in text.rstrip("\n").split("\n"):
        parts = re.split(r"\x1b\[([0-9;]*)m", line)
        row = []
        for k, part in enumerate(parts):
            if k % 2:
                apply(state, part)
            elif part:
                row.append('<span style="%s">%s</span>' % (style(state), html.escape(part)))
        out.append("".join(row))
    body = "\n".join(out)
    return f"""<!doctype html><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ margin: 0; background: {BG}; }}
pre {{ margin: 0; padding: 12px 14px; color: {FG}; background: {BG};
  font: 15px/1.15 "DejaVu Sans Mono", "Noto Sans Mono", monospace; }}
</style>
<pre>{body}</pre>
"""


if __name__ == "__main__":
    source = open(sys.argv[1], encoding="utf-8").read() if len(sys.argv) > 1 else sys.stdin.read()
    sys.stdout.write(convert(source, "palaver chat"))
