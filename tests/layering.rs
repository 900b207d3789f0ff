//! The module graph is a DAG: no top-level module of `src/` reaches (through `crate::`
//! paths) a module that reaches it back, and no file reaches (through `super::` or
//! `crate::` paths) a sibling file that reaches it back. A folder's `mod.rs` is the
//! folder itself (it declares and re-exports its files), so its own files' references to
//! it are not edges. Read from the source text; comments and doc lines are skipped.

// A test: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

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

/// The module path of a file: `src/proxy/call.rs` → `["proxy", "call"]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" && stem != "main" {
        parts.push(stem.to_string());
    }
    parts
}

/// The code of a file without comments, doc lines and its `#[cfg(test)]` tail.
fn code(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("#[cfg(test)]") {
            break;
        }
        let l = line.trim_start();
        if l.starts_with("//") {
            continue;
        }
        out.push_str(line.split("//").next().unwrap_or(""));
        out.push('\n');
    }
    out
}

/// Every `crate::a::b` and `super::x` path in `text`, resolved to module paths.
fn references(module: &[String], is_mod_rs: bool, text: &str) -> BTreeSet<Vec<String>> {
    let mut refs = BTreeSet::new();
    let bytes = text.as_bytes();
    for (prefix, base) in [
        ("crate::", Vec::new()),
        ("super::", {
            // `super` of a folder's mod.rs is the parent's parent; of a file, its folder.
            let mut b = module.to_vec();
            b.pop();
            if is_mod_rs {
                b.pop();
            }
            b
        }),
    ] {
        let mut at = 0;
        while let Some(i) = text[at..].find(prefix) {
            let start = at + i;
            at = start + prefix.len();
            if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
                continue;
            }
            let rest = &text[at..];
            let mut path = base.clone();
            // Up to two segments name a module (`crate::proxy::call::Call`).
            for seg in rest.split("::").take(2) {
                let name: String = seg
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if name.is_empty() || !name.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
                    break;
                }
                path.push(name);
            }
            if prefix == "super::" && rest.starts_with('{') {
                for name in rest[1..rest.find('}').unwrap_or(1)].split(',') {
                    let n: String = name
                        .trim()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if n.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
                        let mut p = base.clone();
                        p.push(n);
                        refs.insert(p);
                    }
                }
            }
            refs.insert(path);
        }
    }
    refs
}

fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            match state.get(m.as_str()) {
                Some(1) => {
                    let i = stack.iter().position(|x| x == m).unwrap();
                    let mut c = stack[i..].to_vec();
                    c.push(m.clone());
                    return Some(c);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(m, g, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        if !state.contains_key(n.as_str()) {
            if let Some(c) = visit(n, graph, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn imports_only_point_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(&src, f)).collect();
    // The longest known module that is a prefix of `path`.
    let resolve = |path: &[String]| -> Option<Vec<String>> {
        (1..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|p| modules.contains(p))
    };
    let mut top: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut siblings: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut edges = 0;
    for f in &files {
        let m = module_of(&src, f);
        if m.is_empty() {
            continue; // lib.rs, main.rs
        }
        let is_mod_rs = f.file_name().is_some_and(|n| n == "mod.rs");
        let text = code(&std::fs::read_to_string(f).unwrap());
        for r in references(&m, is_mod_rs, &text) {
            let Some(target) = resolve(&r) else { continue };
            if target[0] != m[0] {
                top.entry(m[0].clone()).or_default().insert(target[0].clone());
                edges += 1;
            }
            // Siblings: two files of one folder (its mod.rs is the folder, not a sibling).
            let folder = &m[..m.len() - usize::from(!is_mod_rs)];
            if !is_mod_rs && target.len() == m.len() && target[..target.len() - 1] == *folder && target != m {
                siblings.entry(m.join("::")).or_default().insert(target.join("::"));
            }
        }
    }
    assert!(edges > 50, "the scan found the imports ({edges} edges)");
    assert!(top.contains_key("proxy") && top["proxy"].contains("upstream"));
    if let Some(c) = find_cycle(&top) {
        panic!("top-level modules import each other: {}", c.join(" -> "));
    }
    if let Some(c) = find_cycle(&siblings) {
        panic!("files import each other: {}", c.join(" -> "));
    }
}
