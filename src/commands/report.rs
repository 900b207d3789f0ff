//! `report`: the usage files read back and summed, as text tables (and `--html`).

use super::{config_exit, with_sources};
use crate::args::{ConfigError, Sources};

pub(crate) fn run(rest: &[String]) -> i32 {
    with_sources(crate::report::FLAGS, rest, true, |_, sources| report(sources))
}

fn report(sources: &Sources<'_>) -> i32 {
    use crate::report::{group, html, text_table, total, GroupBy};
    let dir = sources.get("usage-dir").unwrap_or_else(|| "./usage".into());
    let by_s = sources.get("by").unwrap_or_else(|| "project".into());
    let Some(by) = GroupBy::parse(&by_s) else {
        return config_exit(&ConfigError::new(
            "by",
            format!("`{by_s}` is not one of agent, department, project, model, tenant, day, tier, scope, route"),
        ));
    };
    let path = std::path::Path::new(&dir);
    if !path.is_dir() {
        return config_exit(&ConfigError::new("usage-dir", format!("{dir} is not a directory")));
    }
    let mut rows = Vec::new();
    let scan = crate::usage::read::scan_dir(path, |batch| rows.extend(batch));
    for (file, err, counted) in &scan.bad {
        eprintln!(
            "llmops-proxy report: warning: skipped {} ({err}){}",
            file.display(),
            if *counted > 0 {
                format!("; its first {counted} rows are counted")
            } else {
                String::new()
            }
        );
    }
    let skipped = if scan.bad.is_empty() {
        String::new()
    } else {
        format!(", {} damaged file(s) skipped", scan.bad.len())
    };
    println!(
        "{} rows from {} Parquet file(s) under {dir}{skipped}\n",
        rows.len(),
        scan.files
    );
    print!("{}", text_table(&group(&rows, by), &total(&rows), by));
    print!("{}", crate::report::breakdowns(&rows, by));
    if let Some(bf) = sources.get("budgets") {
        match crate::budget::BudgetFile::load(std::path::Path::new(&bf)) {
            Ok(f) => {
                println!("\nBudgets (current UTC day/month):");
                print!(
                    "{}",
                    crate::report::budget_table(&rows, &f.budgets, crate::util::time::unix_now())
                );
            }
            Err(e) => return config_exit(&ConfigError::new("budgets", format!("{bf}: {e}"))),
        }
    }
    if let Some(out) = sources.get("html") {
        if let Err(e) = std::fs::write(&out, html(&rows, by, path)) {
            eprintln!("llmops-proxy report: cannot write {out}: {e}");
            return 1;
        }
        println!("\nHTML report written to {out}");
    }
    0
}
