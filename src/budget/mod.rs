//! Budgets (DESIGN.md §4): spend limits and alerts per tenant, department, project,
//! agent or model, per UTC day or month.
//!
//! The writer thread sees every usage row, so it keeps the spend ([`tracker`]) in exact
//! integer money and publishes the set of exhausted `block` budgets as an immutable
//! snapshot ([`BlockSet`]); a shard's check before relaying is a relaxed atomic load
//! of a generation number plus hash lookups in its own copy of the snapshot — never a
//! lock or a message round trip on the hot path. With `--budget-store redis://...`,
//! the [`store`] thread adds every instance's spend to Redis and reads the fleet total.

pub mod config;
pub mod store;
pub mod tracker;

pub use config::{Budget, BudgetFile};
pub use tracker::{BlockSet, Blocked, Hook, Publisher, Tracker};
