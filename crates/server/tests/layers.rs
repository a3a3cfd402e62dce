//! The server crate's layering rule, checked on its source: edges, then rules, then
//! engines, then the bottom (the wire types are a crate of their own, below all).
//! A module may use its own layer and the layers below; no two top-level modules use
//! each other, directly or round a loop. docs/ARCHITECTURE.md explains the layers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every top-level module of `crates/server/src`, top layer first.
const LAYERS: &[(&str, &[&str])] = &[
    ("edges", &["app", "http", "gateway", "cli"]),
    ("rules", &["service", "domain"]),
    (
        "engines",
        &[
            "store",
            "bus",
            "cache",
            "media",
            "push",
            "outbound",
            "link_preview",
            "backup",
            "rekey",
        ],
    ),
    (
        "bottom",
        &[
            "config",
            "at_rest",
            "clock",
            "files",
            "transport",
            "telemetry",
        ],
    ),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a file names through `crate::`, in paths and in grouped
/// imports (`use crate::{a::B, c};`). Comments are skipped.
fn used_modules(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            // The names at the group's first level.
            let mut depth = 0;
            let mut start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if c.is_whitespace() => {}
                    _ if start && depth == 0 => {
                        start = false;
                        let name = ident(&group[i..]);
                        if !name.is_empty() {
                            found.insert(name);
                        }
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(after);
            if !name.is_empty() {
                found.insert(name);
            }
        }
        rest = after;
    }
    found
}

#[test]
fn modules_only_use_their_own_layer_and_those_below_and_never_loop() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src");
        let top = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .map(|s| s.trim_end_matches(".rs").to_string())
            .expect("name");
        if top == "lib" || top == "main" {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("read");
        let entry = uses.entry(top.clone()).or_default();
        for used in used_modules(&text) {
            if used != top {
                entry.insert(used);
            }
        }
    }

    let mut faults = Vec::new();
    for (module, used) in &uses {
        let Some(own) = layer_of(module) else {
            faults.push(format!("`{module}` is in no layer: add it to LAYERS"));
            continue;
        };
        for other in used {
            match layer_of(other) {
                None => faults.push(format!("`{module}` uses `{other}`, which is in no layer")),
                Some(layer) if layer < own => faults.push(format!(
                    "`{module}` ({}) uses `{other}` ({}), a layer above it",
                    LAYERS[own].0, LAYERS[layer].0
                )),
                Some(_) => {}
            }
        }
    }
    // A loop: a module reachable again from itself.
    for start in uses.keys() {
        let mut stack: Vec<Vec<&str>> = vec![vec![start.as_str()]];
        let mut seen = BTreeSet::new();
        while let Some(path) = stack.pop() {
            let last = *path.last().expect("non-empty");
            for next in uses.get(last).into_iter().flatten() {
                if next == start {
                    // Each loop once, begun at its least name.
                    let least = (0..path.len()).min_by_key(|&i| path[i]).unwrap_or(0);
                    let mut ring: Vec<&str> = path[least..]
                        .iter()
                        .chain(&path[..least])
                        .copied()
                        .collect();
                    ring.push(ring[0]);
                    faults.push(format!("import loop: {}", ring.join(" -> ")));
                } else if seen.insert(next.as_str()) {
                    let mut longer = path.clone();
                    longer.push(next);
                    stack.push(longer);
                }
            }
        }
    }
    faults.sort();
    faults.dedup();
    assert!(faults.is_empty(), "layering faults:\n{}", faults.join("\n"));
}

#[test]
fn grouped_imports_are_read() {
    let text =
        "use crate::{a::B, c, d::{e, f}};\nuse crate::g::H; // crate::z\nlet x = crate::k::f();";
    let found: Vec<String> = used_modules(text).into_iter().collect();
    assert_eq!(found, ["a", "c", "d", "g", "k"]);
}
