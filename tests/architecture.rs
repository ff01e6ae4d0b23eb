//! Imports run one way (issue 17, and the architecture the README describes): no two modules
//! of the crate reach each other, directly or round a longer circle; inside the front-end the
//! kit (`src/bot/kit/`) reaches no screen and nothing reaches the router but the tree above it.
//! Read from the source as text: every `crate::…` and `super::…` path outside tests and
//! comments counts, `use` or not.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The module a file is, as a path of names (`src/bot/kit/send.rs` is `bot/kit/send`).
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|l| l == "mod" || l == "lib") {
        parts.pop();
    }
    parts
}

/// The code of a file without its test modules and comments.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Each path segment list following `prefix` (`crate::`, `super::`) in `code`.
fn paths_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = code[at..].find(prefix) {
        let start = at + i;
        at = start + prefix.len();
        if code[..start].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &code[start + prefix.len()..];
        let segs: Vec<String> = rest
            .split("::")
            .map(|s| {
                s.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .take_while(|s| !s.is_empty())
            .collect();
        out.push(segs);
    }
    out
}

/// Edges between the modules that are files or folders: the longest known module each path
/// names.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(&src, f)).collect();
    let known = |path: &[String]| -> Option<String> {
        (1..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|p| modules.contains(p))
            .map(|p| p.join("/"))
    };
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let me = module_of(&src, f);
        let text = code(&std::fs::read_to_string(f).unwrap());
        let mut targets = Vec::new();
        for p in paths_after(&text, "crate::") {
            targets.push(p);
        }
        for p in paths_after(&text, "super::") {
            // `super::super::x` climbs twice; the segments after the `super`s are the path.
            let ups = 1 + p.iter().take_while(|s| *s == "super").count();
            let rest: Vec<String> = p.into_iter().skip_while(|s| s == "super").collect();
            // A file's parent module is its own path minus one name.
            let base_len = me.len().saturating_sub(ups);
            let mut full = me[..base_len].to_vec();
            full.extend(rest);
            targets.push(full);
        }
        let from = me.join("/");
        for t in targets {
            if let Some(to) = known(&t) {
                // A module reaching its own parent or child is how Rust nests; not an edge.
                if to != from && !from.starts_with(&format!("{to}/")) && !to.starts_with(&format!("{from}/")) {
                    edges.entry(from.clone()).or_default().insert(to);
                }
            }
        }
        edges.entry(from).or_default();
    }
    edges
}

/// The circles of the graph (strongly connected components of more than one module).
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Kosaraju: order by finish time, then walk the reversed graph.
    fn visit(n: &str, e: &BTreeMap<String, BTreeSet<String>>, seen: &mut BTreeSet<String>, out: &mut Vec<String>) {
        if !seen.insert(n.to_string()) {
            return;
        }
        for m in e.get(n).into_iter().flatten() {
            visit(m, e, seen, out);
        }
        out.push(n.to_string());
    }
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    for n in edges.keys() {
        visit(n, edges, &mut seen, &mut order);
    }
    let mut reversed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, bs) in edges {
        for b in bs {
            reversed.entry(b.clone()).or_default().insert(a.clone());
        }
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for n in order.iter().rev() {
        let mut comp = Vec::new();
        visit(n, &reversed, &mut seen, &mut comp);
        if comp.len() > 1 {
            comp.sort();
            out.push(comp);
        }
    }
    out
}

#[test]
fn no_modules_reach_each_other_round_a_circle() {
    let edges = graph();
    assert!(
        edges.contains_key("bot/router") && edges.contains_key("bot/kit/send"),
        "the graph reads the source"
    );
    assert_eq!(circles(&edges), Vec::<Vec<String>>::new());
}

#[test]
fn the_bots_kit_reaches_no_screen_and_no_screen_reaches_the_router() {
    let edges = graph();
    for (from, to) in &edges {
        for t in to {
            if from.starts_with("bot/kit") {
                assert!(
                    !t.starts_with("bot/") || t.starts_with("bot/kit"),
                    "{from} reaches {t}: the kit sits below every screen"
                );
            }
            if t.starts_with("bot/router") {
                assert!(
                    from.starts_with("bot/router") || from == "bot",
                    "{from} reaches the router {t}"
                );
            }
        }
    }
}

#[test]
fn the_checker_sees_a_circle() {
    let mut e: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    e.entry("a".into()).or_default().insert("b".into());
    e.entry("b".into()).or_default().insert("c".into());
    e.entry("c".into()).or_default().insert("a".into());
    e.entry("d".into()).or_default().insert("a".into());
    assert_eq!(circles(&e), vec![vec!["a".to_string(), "b".into(), "c".into()]]);
}
