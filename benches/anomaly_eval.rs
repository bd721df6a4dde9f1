//! Precision and recall of the rules `klaxon anomaly generate` writes,
//! against fixed 3-sigma rules, on synthetic daily-seasonal series with
//! injected spikes, drops, level shifts and slow drifts, evaluated by
//! klaxon's own rule engine (`klaxon::anomaly::eval`). Prints the table of
//! docs/benchmarks.md: `cargo bench --bench anomaly_eval`.

use klaxon::anomaly::eval::{self, Scenario, KINDS};

fn main() {
    // `cargo test --all-targets` runs bench binaries too: the full scenario
    // (minutes in a debug build) only under `cargo bench`, which passes
    // `--bench`. The small scenario is a test in tests/it/anomaly.rs.
    if !std::env::args().any(|a| a == "--bench") {
        println!("anomaly_eval: skipped outside `cargo bench --bench anomaly_eval`");
        return;
    }
    let sc = Scenario::full();
    let r = match eval::run(&sc) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("anomaly_eval: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "{} series ({} clean), {} injected anomalies, {} scored days, {}s steps",
        r.series,
        sc.clean,
        r.injected.len(),
        sc.days,
        sc.step_ms / 1000
    );
    print!("| detector | precision | recall |");
    for k in KINDS {
        print!(" {k} |");
    }
    println!(" alert episodes | false | false on clean series |");
    print!("|---|---|---|");
    for _ in KINDS {
        print!("---|");
    }
    println!("---|---|---|");
    for d in &r.detectors {
        print!("| {} | {:.2} | {:.2} |", d.name, d.precision(), d.recall());
        for k in KINDS {
            let (hit, total) = d.recall_of(k);
            print!(" {hit}/{total} |");
        }
        println!(
            " {} | {} | {} |",
            d.episodes, d.false_positives, d.false_positives_clean
        );
    }
}
