//! Usage metering: the record, the usage scan of responses, prices and exact cost,
//! the lock-free queues into the writer thread, and the rolling Parquet writer.

pub mod observe;
pub mod pricing;
pub mod queue;
pub mod read;
pub mod record;
pub mod scan;
pub mod schema;
pub mod writer;

pub use record::UsageRecord;
