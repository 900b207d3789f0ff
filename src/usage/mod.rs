//! Usage metering: the record, the usage scan of responses (priced by `crate::pricing`),
//! the lock-free queues into the writer thread, and the rolling Parquet writer.

pub(crate) mod observe;
pub(crate) mod queue;
pub mod read;
pub mod record;
pub mod scan;
pub(crate) mod schema;
pub mod writer;

pub use record::UsageRecord;
