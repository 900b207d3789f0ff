//! What SIGHUP reloads, and start-up loads the same way: the keys, the prices, the
//! optimizer's routes and the TLS listener's certificate (published together to every
//! shard), and the budget file (spend kept; the routes' downgrade thresholds set on its
//! tracker). A bad file is logged as `reload_rejected` and the previous one stays.

use std::sync::{Arc, Mutex};

use super::config::ServeConfig;
use crate::args::ConfigError;
use crate::pricing::PriceTable;
use crate::proxy::shard::{Reloadable, Shared};
use crate::tenant::KeyStore;
use crate::util::snapshot::lock;

/// Loads keys, prices and the TLS listener's configuration (start-up and SIGHUP).
pub fn load(cfg: &ServeConfig) -> Result<Reloadable, ConfigError> {
    let keys = match &cfg.keys {
        None => KeyStore::open(),
        Some(p) => KeyStore::load(p).map_err(|e| ConfigError::new("keys", format!("{}: {e}", p.display())))?,
    };
    let prices = PriceTable::with_overrides(cfg.pricing.as_deref()).map_err(|e| {
        ConfigError::new(
            "pricing",
            format!(
                "{}: {e}",
                cfg.pricing
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ),
        )
    })?;
    let routes = load_routes(cfg)?;
    let (tls, cert_not_after) = match (&cfg.listen_tls, &cfg.tls_cert, &cfg.tls_key) {
        (Some(_), Some(cert), Some(key)) => {
            let sc = server_tls(
                cert,
                key,
                cfg.client_ca.as_deref(),
                ["tls-cert", "tls-key", "client-ca"],
            )?;
            let not_after = crate::tls::load_certs(cert)
                .ok()
                .and_then(|c| c.first().and_then(|c| crate::tls::not_after(c.as_ref())));
            (Some(sc), not_after)
        }
        _ => (None, None),
    };
    let admin_tls = match (&cfg.admin_tls_cert, &cfg.admin_tls_key) {
        (Some(cert), Some(key)) => Some(server_tls(
            cert,
            key,
            cfg.admin_client_ca.as_deref(),
            ["admin-tls-cert", "admin-tls-key", "admin-client-ca"],
        )?),
        _ => None,
    };
    Ok(Reloadable {
        keys: Arc::new(keys),
        prices: Arc::new(prices),
        routes: Arc::new(routes),
        admin_tls,
        tls,
        cert_not_after,
    })
}

/// A listener's TLS configuration; an error names the flag of the file at fault
/// (`flags`: the certificate's, the key's, the client CA's).
fn server_tls(
    cert: &std::path::Path,
    key: &std::path::Path,
    client_ca: Option<&std::path::Path>,
    flags: [&'static str; 3],
) -> Result<Arc<rustls::ServerConfig>, ConfigError> {
    use crate::tls::TlsConfigError;
    crate::tls::server_config(cert, key, client_ca).map_err(|e| {
        let flag = match &e {
            TlsConfigError::Key { .. } | TlsConfigError::Mismatch(_) => flags[1],
            TlsConfigError::Read { path, .. } | TlsConfigError::NoCertificate(path)
                if client_ca.is_some_and(|c| c.display().to_string() == *path) =>
            {
                flags[2]
            }
            _ => flags[0],
        };
        ConfigError::new(flag, e.to_string())
    })
}

/// The routes file, its downgrade rules checked against the budget file's names.
fn load_routes(cfg: &ServeConfig) -> Result<crate::optimizer::Routes, ConfigError> {
    let Some(p) = &cfg.routes else {
        return Ok(crate::optimizer::Routes::default());
    };
    let bad = |e: crate::optimizer::RoutesFileError| ConfigError::new("routes", format!("{}: {e}", p.display()));
    let routes = crate::optimizer::Routes::load(p).map_err(bad)?;
    let names: Vec<String> = match &cfg.budgets {
        None => Vec::new(),
        Some(b) => crate::budget::BudgetFile::load(b)
            .map(|f| f.budgets.into_iter().map(|b| b.name).collect())
            .unwrap_or_default(),
    };
    routes.check_budgets(|b| names.iter().any(|n| n == b)).map_err(bad)?;
    Ok(routes)
}

/// Gives the budget tracker the routes' downgrade thresholds and republishes.
pub fn set_thresholds(hook: &crate::budget::Hook, routes: &crate::optimizer::Routes) {
    let mut t = lock(&hook.tracker);
    t.set_thresholds(routes.thresholds());
    if let Some(set) = t.evaluate(crate::util::time::unix_now()) {
        hook.publisher.publish(set);
    }
}

/// This month's `dt=` partitions under the usage directory.
fn month_partitions(usage_dir: &std::path::Path, prefix: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(usage_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

/// Loads the budget file and rebuilds the current periods' spend from the Parquet files
/// already written (this month's `dt=` partitions), so a restart does not reset a budget.
pub fn load_budgets(path: &std::path::Path, usage_dir: &std::path::Path) -> Result<crate::budget::Hook, ConfigError> {
    let f = crate::budget::BudgetFile::load(path)
        .map_err(|e| ConfigError::new("budgets", format!("{}: {e}", path.display())))?;
    let mut tracker = crate::budget::Tracker::new(f.budgets);
    let now = crate::util::time::unix_now();
    let today = crate::util::time::Civil::from_unix(now);
    let prefix = format!("dt={:04}-{:02}-", today.year, today.month);
    let mut rebuilt = 0usize;
    for part in month_partitions(usage_dir, &prefix) {
        // One batch of rows in memory at a time; a damaged file is skipped and named.
        let scan = crate::usage::read::scan_dir(&part, |rows| tracker.observe(&rows));
        rebuilt += scan.rows;
        for (file, err, counted) in scan.bad {
            crate::log::warn(
                "budget_rebuild_skipped",
                &[
                    ("file", &file.display().to_string()),
                    ("error", &err.to_string()),
                    ("rows_counted_before_the_damage", &counted.to_string()),
                ],
            );
        }
    }
    let publisher = Arc::new(crate::budget::Publisher::default());
    if let Some(set) = tracker.evaluate(now) {
        publisher.publish(set);
    }
    crate::log::info(
        "budgets_loaded",
        &[
            ("budgets", &tracker.budgets().len().to_string()),
            ("rows_rebuilt", &rebuilt.to_string()),
        ],
    );
    Ok(crate::budget::Hook {
        tracker: Arc::new(Mutex::new(tracker)),
        publisher,
    })
}

/// Reloads after SIGHUP: the budget file (spend kept), then keys, prices and TLS.
pub fn reload(cfg: &ServeConfig, shared: &Shared) {
    if let (Some(h), Some(p)) = (&shared.budgets, &cfg.budgets) {
        match crate::budget::BudgetFile::load(p) {
            Ok(f) => {
                let n = f.budgets.len();
                let mut t = lock(&h.tracker);
                t.set_budgets(f.budgets);
                if let Some(set) = t.evaluate(crate::util::time::unix_now()) {
                    h.publisher.publish(set);
                }
                crate::log::info("budgets_reloaded", &[("budgets", &n.to_string()), ("spend", "kept")]);
            }
            Err(e) => crate::log::error(
                "reload_rejected",
                &[
                    ("file", "budgets"),
                    ("error", &e.to_string()),
                    ("kept", "previous budgets"),
                ],
            ),
        }
    }
    match load(cfg) {
        Ok(r) => {
            let nkeys = if r.keys.is_open() {
                "open".to_string()
            } else {
                r.keys.len().to_string()
            };
            let nprices = r.prices.len().to_string();
            let ntls = if r.tls.is_some() { "certificate reloaded" } else { "off" };
            let nroutes = r.routes.rules.len().to_string();
            if let Some(h) = &shared.budgets {
                set_thresholds(h, &r.routes);
            }
            shared.reloadable.publish(Arc::new(r));
            crate::log::info(
                "reloaded",
                &[
                    ("keys", &nkeys),
                    ("prices", &nprices),
                    ("routes", &nroutes),
                    ("tls", ntls),
                ],
            );
        }
        Err(e) => crate::log::error(
            "reload_rejected",
            &[
                ("error", &e.to_string()),
                ("kept", "previous keys, prices, routes and certificate"),
            ],
        ),
    }
}
