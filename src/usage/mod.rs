//! Usage metering: the record, the usage scan of responses (`scan` for Converse,
//! `invoke` for the InvokeModel family; priced by `crate::pricing`),
//! each shard's journal of rows (`journal`), and the ledger that turns the journals into
//! rolling Parquet files exactly once (`ledger`); reading the files back (`read`).

pub(crate) mod invoke;
pub mod journal;
pub mod ledger;
pub(crate) mod observe;
pub mod read;
pub mod record;
pub mod scan;
pub(crate) mod schema;

pub use record::UsageRecord;
