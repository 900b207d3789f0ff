//! Small shared helpers with no better home: UTC calendar arithmetic, hex, building a
//! monoio runtime, publishing snapshots to the shards.

pub mod hex;
pub(crate) mod runtime;
pub(crate) mod snapshot;
pub mod time;
