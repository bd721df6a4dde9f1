//! Embeds the bundled rule files (`rules/*.yml`, `recording_rules/*.yml`)
//! so the embedded default config evaluates them wherever the binary runs.
//! The folders are globbed at build time: a file added there is picked up
//! by the next build without touching any source file.

use std::fmt::Write as _;
use std::path::Path;

const DIRS: &[&str] = &["rules", "recording_rules"];

fn main() {
    let root = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let mut files = Vec::new();
    for dir in DIRS {
        let d = Path::new(&root).join(dir);
        // Cargo rescans a directory given here when anything in it changes.
        println!("cargo:rerun-if-changed={}", d.display());
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let is_rule_file = p
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| x == "yml" || x == "yaml");
            if is_rule_file && p.is_file() {
                if let Some(name) = p.file_name().and_then(|n| n.to_str()) {
                    files.push((format!("{dir}/{name}"), p.display().to_string()));
                }
            }
        }
    }
    files.sort();
    let mut out = String::from(
        "/// Bundled rule files: (path relative to the repository, content).\n\
         pub static SOURCES: &[(&str, &str)] = &[\n",
    );
    for (name, path) in &files {
        let _ = writeln!(out, "    ({name:?}, include_str!({path:?})),");
    }
    out.push_str("];\n");
    let out_dir = std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into());
    let dest = Path::new(&out_dir).join("embedded_rules.rs");
    if let Err(e) = std::fs::write(&dest, out) {
        panic!("writing {}: {e}", dest.display());
    }
}
