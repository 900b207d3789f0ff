//! Small shared helpers with no better home: UTC calendar arithmetic, hex, CRC-32
//! tables, building a monoio runtime, publishing snapshots to the shards.

pub mod crc;
pub mod hex;
pub(crate) mod runtime;
pub(crate) mod snapshot;
pub mod time;
