//! Every Alertmanager config file of the shared upstream corpus, loaded by
//! klaxon's notify config loader and compared with Alertmanager's verdict
//! (from `../shared/upstream/alertmanager/NOTES.md`).

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn shared() -> Option<PathBuf> {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/upstream/alertmanager"
    ));
    if p.is_dir() {
        Some(p)
    } else {
        assert!(
            !common::is_ci(),
            "shared data {} missing under CI",
            p.display()
        );
        None
    }
}

/// `file → (loads?, expected error text)` from the NOTES.md table.
fn expected(notes: &str) -> BTreeMap<String, (bool, String)> {
    let mut m = BTreeMap::new();
    for line in notes.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() >= 4 && cells[1].starts_with("conf.") && cells[1].ends_with(".yml") {
            let loads = match cells[2] {
                "loads" => true,
                "error" => false,
                _ => continue,
            };
            m.insert(cells[1].to_string(), (loads, cells[3].to_string()));
        }
    }
    m
}

fn load(p: &Path) -> Result<(), String> {
    klaxon::notify::config::load_file(p)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[test]
fn upstream_config_testdata_verdicts() {
    let Some(dir) = shared() else { return };
    let notes = std::fs::read_to_string(dir.join("NOTES.md")).unwrap();
    let want = expected(&notes);
    assert!(want.len() >= 40, "NOTES.md table not found");
    let mut compared = 0;
    let mut failures = Vec::new();
    for (file, (loads, text)) in &want {
        let path = dir.join("config/testdata").join(file);
        let got = load(&path);
        compared += 1;
        match (loads, &got) {
            (true, Err(e)) => failures.push(format!("{file}: Alertmanager loads it, klaxon: {e}")),
            (false, Ok(())) => failures.push(format!(
                "{file}: Alertmanager rejects it ({text}), klaxon loads it"
            )),
            (false, Err(e)) => {
                // Validation-level messages should match Alertmanager's.
                let key = text.trim_start_matches("(substring) ");
                if !key.starts_with("yaml:") && !e.contains(key) {
                    failures.push(format!("{file}: want error containing {key:?}, got {e}"));
                }
            }
            (true, Ok(())) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every file compared: no integration is refused any more.
    assert_eq!(compared, want.len());
}

#[test]
fn upstream_examples_and_cli_testdata() {
    let Some(dir) = shared() else { return };
    let ok = [
        "config/examples/simple.yml",
        "cli/testdata/conf.good.yml",
        "cli/testdata/conf.routing.yml",
        "cli/testdata/conf.routing-reverted.yml",
    ];
    for f in ok {
        if let Err(e) = load(&dir.join(f)) {
            panic!("{f}: {e}");
        }
    }
    let e = load(&dir.join("cli/testdata/conf.bad.yml")).unwrap_err();
    assert!(e.contains("conf.bad.yml:1:1"), "{e}");
    // Route `labels` (newer than Alertmanager 0.25) are rejected on purpose:
    // docs/compatibility.md.
    let e = load(&dir.join("config/examples/route_labels.yml")).unwrap_err();
    assert!(
        e.contains("route_labels.yml:22:3: unknown field `labels`"),
        "{e}"
    );
}

#[test]
fn group_by_all_and_empty_fields_semantics() {
    let Some(dir) = shared() else { return };
    let c = klaxon::notify::config::load_file(&dir.join("config/testdata/conf.group-by-all.yml"))
        .unwrap();
    assert_eq!(c.route.group_by, klaxon::notify::route::GroupBy::All);
    let c = klaxon::notify::config::load_file(&dir.join("config/testdata/conf.empty-fields.yml"))
        .unwrap();
    assert_eq!(c.global.smtp_auth_username, None);
    assert_eq!(c.global.smtp_auth_password, None);
    assert_eq!(c.global.smtp_hello, "localhost");
    assert_eq!(c.templates, ["/etc/alertmanager/template/*.tmpl"]);
    // conf.good.yml loads with every receiver (VictorOps, Opsgenie,
    // Pushover included).
    let good = dir.join("config/testdata/conf.good.yml");
    let stripped = std::fs::read_to_string(&good).unwrap();
    let c = klaxon::notify::config::load_str(
        &stripped,
        "conf.good.yml",
        Some(&dir.join("config/testdata")),
    )
    .unwrap();
    assert_eq!(
        c.global.smtp_auth_password.as_ref().map(|s| s.expose()),
        Some("multiline\nmysecret")
    );
    assert_eq!(c.inhibit_rules.len(), 1);
    assert_eq!(
        c.inhibit_rules[0].equal,
        ["alertname", "cluster", "service"]
    );
    assert!(
        !c.original.contains("mysecret"),
        "secrets must be masked in original"
    );
}

#[test]
fn notify_section_errors_point_into_the_klaxon_config() {
    let text = "global:\n  scrape_interval: 15s\nnotify:\n  route:\n    receiver: missing\n  receivers:\n  - name: a\n  - name: a\n";
    let e = klaxon::settings::load_str(text, "klaxon.yml")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("klaxon.yml:5:15: undefined receiver \"missing\" used in route"),
        "{e}"
    );
    assert!(
        e.contains("klaxon.yml:8:5: notification config name \"a\" is not unique"),
        "{e}"
    );
    let e = klaxon::settings::load_str("notify:\n  routes: {}\n", "k.yml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("k.yml:2:3: unknown field `routes`"), "{e}");
    let ok = klaxon::settings::load_str(
        "notify:\n  route: {receiver: a}\n  receivers: [{name: a}]\n",
        "k.yml",
    )
    .unwrap();
    let n = ok.notify.unwrap();
    assert_eq!(n.route.receiver, "a");
    // The section alone, re-written from the parsed tree.
    assert_eq!(
        n.original,
        "route:\n  receiver: a\nreceivers:\n  - name: a\n"
    );
    assert!(klaxon::settings::load_str("global: {}\n", "k.yml")
        .unwrap()
        .notify
        .is_none());
}
