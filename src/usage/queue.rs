//! The shard side of metering: an `rtrb` SPSC queue into the writer thread. A push never
//! waits: when the queue is full (or the writer is gone) the record is dropped and
//! counted in `usage_records_dropped_total`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::record::UsageRecord;

/// Records one shard's queue holds before it drops.
pub(crate) const QUEUE_CAPACITY: usize = 16 * 1024;

/// A shard's producer end.
pub(crate) struct UsageSink {
    producer: rtrb::Producer<UsageRecord>,
    dropped: Arc<AtomicU64>,
}

/// Creates a queue: the sink for a shard and the consumer for the writer.
pub(crate) fn channel(capacity: usize, dropped: Arc<AtomicU64>) -> (UsageSink, rtrb::Consumer<UsageRecord>) {
    let (producer, consumer) = rtrb::RingBuffer::new(capacity);
    (UsageSink { producer, dropped }, consumer)
}

impl UsageSink {
    /// Queues a record; returns false (and counts) when it had to be dropped.
    pub(crate) fn push(&mut self, rec: UsageRecord) -> bool {
        if self.producer.is_abandoned() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        match self.producer.push(rec) {
            Ok(()) => true,
            Err(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_queue_drops_and_counts() {
        let dropped = Arc::new(AtomicU64::new(0));
        let (mut sink, mut cons) = channel(2, dropped.clone());
        assert!(sink.push(UsageRecord::default()));
        assert!(sink.push(UsageRecord::default()));
        assert!(!sink.push(UsageRecord::default()));
        assert_eq!(dropped.load(Ordering::Relaxed), 1);
        assert!(cons.pop().is_ok());
        drop(cons);
        assert!(!sink.push(UsageRecord::default()));
        assert_eq!(dropped.load(Ordering::Relaxed), 2);
    }
}
