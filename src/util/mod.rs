//! Small shared helpers with no better home: UTC calendar arithmetic, hex, building a
//! monoio runtime.

pub mod hex;
pub mod runtime;
pub mod time;
