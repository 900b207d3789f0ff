//! Small shared helpers with no better home: UTC calendar arithmetic, hex, ids.

pub mod hex;
pub mod io;
pub mod time;
