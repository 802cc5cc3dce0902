//! Delivery: outbox, per-channel workers, retries (being written).
