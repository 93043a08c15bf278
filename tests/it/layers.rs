//! The source's layers, as `src/lib.rs` and `docs/architecture.md` state
//! them: a module uses only modules of lower layers (or of its own group),
//! no two modules use each other however indirectly, only `store` speaks
//! SQL, only `transport::exec` builds a git command, and the decision does
//! no I/O.
//! Read from the source files, so that the rules cannot drift from the code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The groups of `src/`, top to bottom: a group may use only groups with a
/// lower rank. Groups of one rank do not use each other.
const LAYERS: [(&str, u8); 10] = [
    ("admin", 7),
    ("serve", 6),
    ("web", 5),
    ("transport", 5),
    ("authz", 4),
    ("repo", 3),
    ("store", 3),
    ("factor", 2),
    ("domain", 2),
    ("system", 1),
];

/// Each module of the crate (`a::b`) with the text of its file, test
/// modules left out.
fn modules() -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if !path.ends_with("bin") {
                    dirs.push(path);
                }
                continue;
            }
            // Unit tests (`tests.rs` and the files under `tests/`) may use
            // anything.
            let in_tests = path
                .strip_prefix(&src)
                .is_ok_and(|p| p.components().any(|c| c.as_os_str() == "tests"));
            if path.extension().is_none_or(|e| e != "rs") || path.ends_with("tests.rs") || in_tests
            {
                continue;
            }
            let relative = path.strip_prefix(&src).unwrap().with_extension("");
            let name = relative.to_str().unwrap().replace('/', "::");
            if name == "lib" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // Unit tests sit at the end of a file; they may use anything.
            let code = match text.find("#[cfg(test)]\nmod tests") {
                Some(at) => text[..at].to_string(),
                None => text,
            };
            found.insert(name, code);
        }
    }
    found
}

/// The identifiers of a path that starts at `at` (`a::b::c`).
fn path_at(text: &str, at: usize) -> Vec<&str> {
    let rest = &text[at..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(rest.len());
    rest[..end]
        .split("::")
        .take_while(|s| !s.is_empty())
        .collect()
}

/// The longest known module that `path` names.
fn resolve(known: &BTreeMap<String, String>, path: &[&str]) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|m| known.contains_key(m))
}

/// Who uses whom: `crate::…` paths, `super::…` paths, and the module's own
/// children named by their `mod` line.
fn uses(known: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut edges = BTreeMap::new();
    for (module, text) in known {
        let mut to = BTreeSet::new();
        let parent: Vec<&str> = module.split("::").collect();
        let parent = &parent[..parent.len() - 1];
        let is_word_start = |at: usize| {
            at == 0
                || !text.as_bytes()[at - 1].is_ascii_alphanumeric()
                    && text.as_bytes()[at - 1] != b'_'
                    && text.as_bytes()[at - 1] != b':'
        };
        for (at, _) in text.match_indices("crate::") {
            if is_word_start(at) {
                to.extend(resolve(known, &path_at(text, at + 7)));
            }
        }
        for (at, _) in text.match_indices("super::") {
            if is_word_start(at) {
                let mut path = parent.to_vec();
                path.extend(path_at(text, at + 7));
                to.extend(resolve(known, &path).or_else(|| Some(parent.join("::"))));
            }
        }
        for line in text.lines() {
            let line = line.trim_start_matches("pub ");
            // `child::` as a path of its own, not the end of a longer name
            // (`keys::` in `security_keys::`).
            if let Some(child) = line.strip_prefix("mod ").and_then(|l| l.strip_suffix(';'))
                && text
                    .match_indices(&format!("{child}::"))
                    .any(|(at, _)| is_word_start(at))
            {
                to.insert(format!("{module}::{child}"));
            }
        }
        to.remove(module);
        to.remove("");
        edges.insert(module.clone(), to);
    }
    edges
}

fn group(module: &str) -> &str {
    module.split("::").next().unwrap_or(module)
}

fn rank(group: &str) -> u8 {
    LAYERS
        .iter()
        .find(|(name, _)| *name == group)
        .unwrap_or_else(|| panic!("src/{group}: a group that LAYERS does not list"))
        .1
}

#[test]
fn every_module_uses_only_lower_layers() {
    let known = modules();
    let mut wrong = Vec::new();
    for (from, to) in uses(&known) {
        for to in to {
            let (a, b) = (group(&from), group(&to));
            if a != b && rank(b) >= rank(a) {
                wrong.push(format!("{from} uses {to}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "against the layers:\n{}",
        wrong.join("\n")
    );
    // The check sees real uses: these are known to exist.
    let edges = uses(&known);
    // The rules are about the domain's facts, not where they are kept: the
    // decision uses no module of `store` (by path, whatever the names).
    let stored: Vec<&String> = edges["authz::decision"]
        .iter()
        .filter(|m| group(m) == "store")
        .collect();
    assert!(stored.is_empty(), "the decision uses {stored:?}");
    assert!(edges["authz::decision"].contains("domain"));
    assert!(edges["transport::shell"].contains("authz::gate"));
    assert!(edges["serve::ssh"].contains("serve::operations"));
    assert!(edges["web"].contains("web::account"));
}

#[test]
fn no_modules_use_each_other() {
    let edges = uses(&modules());
    // Depth-first search; a module met again while still on the path
    // closes a cycle.
    fn visit<'a>(
        module: &'a str,
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<String> {
        if let Some(at) = path.iter().position(|m| *m == module) {
            return Some(format!("{} -> {module}", path[at..].join(" -> ")));
        }
        if !done.insert(module) {
            return None;
        }
        path.push(module);
        for next in edges.get(module).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for module in edges.keys() {
        let cycle = visit(module, &edges, &mut Vec::new(), &mut done);
        assert!(cycle.is_none(), "a cycle: {}", cycle.unwrap_or_default());
    }
}

#[test]
fn sql_git_and_io_stay_where_they_belong() {
    for (module, text) in modules() {
        if group(&module) != "store" {
            assert!(!text.contains("rusqlite"), "{module} speaks SQL");
        }
        // `check` reads other programs' configuration (sshd -T, nginx -T).
        if module != "transport::exec" && !module.starts_with("admin::check") {
            assert!(!text.contains("Command::new"), "{module} starts a process");
        }
        if module == "authz::decision" {
            for io in ["std::fs", "std::io", "std::net", "std::process", "Store"] {
                assert!(!text.contains(io), "the decision uses {io}");
            }
        }
    }
}

/// The project holds its own contract (`docs/design.md`): no file of the
/// repository sends a maintainer to a document outside it.
#[test]
fn no_file_cites_a_document_outside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![root.join("src"), root.join("docs"), root.join("install")];
    let mut files = vec![root.join("README.md")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    let mut cited = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for outside in ["DESIGN.md", "STYLE.md", "../shared"] {
            if text.contains(outside) {
                cited.push(format!("{} cites {outside}", file.display()));
            }
        }
    }
    assert!(cited.is_empty(), "{}", cited.join("\n"));
}

/// No file under `src/` is over 650 lines (unit tests included): a file
/// that grows past it is split where its parts part, so that each can be
/// read whole.
#[test]
fn no_source_file_is_over_650_lines() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut dirs = vec![src];
    let mut long = Vec::new();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let lines = std::fs::read_to_string(&path).unwrap().lines().count();
                if lines > 650 {
                    long.push(format!("{} ({lines} lines)", path.display()));
                }
            }
        }
    }
    assert!(long.is_empty(), "over 650 lines: {long:?}");
}
