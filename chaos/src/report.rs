//! The results: a table on standard output, the verdicts as JSON.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::checker::Verdict;

fn ms(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.0} ms"))
        .unwrap_or_else(|| "-".into())
}

pub fn table(verdicts: &[Verdict]) -> String {
    let mut out = String::from(
        "| scenario | faults injected | acknowledged | lost | QoS 1 dup | QoS 2 dup | unavailable p50 | unavailable max | result |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n",
    );
    for v in verdicts {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            v.scenario,
            v.faults.len(),
            v.acked,
            v.lost,
            v.duplicates_qos1,
            v.duplicates_qos2,
            ms(v.unavailability_p50_ms),
            ms(v.unavailability_max_ms),
            if v.passed() { "pass" } else { "FAIL" }
        ));
    }
    out
}

/// Every violation and note, scenario by scenario.
pub fn details(verdicts: &[Verdict]) -> String {
    let mut out = String::new();
    for v in verdicts {
        for line in &v.violations {
            out.push_str(&format!("{}: VIOLATION {line}\n", v.scenario));
        }
        for line in v.notes.iter().take(10) {
            out.push_str(&format!("{}: note {line}\n", v.scenario));
        }
    }
    out
}

#[derive(Serialize)]
struct Results<'a> {
    passed: bool,
    scenarios: &'a [Verdict],
}

pub fn write_json(path: &Path, verdicts: &[Verdict]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let results = Results {
        passed: verdicts.iter().all(Verdict::passed),
        scenarios: verdicts,
    };
    let text = serde_json::to_string_pretty(&results)?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
