//! Small shared helpers with no better home: UTC calendar arithmetic, hex, base64, integers as
//! text, CRC-32 tables, a fast hasher for maps no client fills, building a monoio runtime,
//! publishing snapshots to the shards, bounded copies of client text, eight-byte scans, wiping secrets, giving idle memory back to the OS, the allocator.

pub mod alloc;
pub mod base64;
pub mod crc;
pub mod hash;
pub mod hex;
pub(crate) mod memory;
pub mod num;
pub(crate) mod runtime;
pub(crate) mod snapshot;
pub mod swar;
pub mod text;
pub mod time;
pub mod wipe;
