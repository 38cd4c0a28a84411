//! Persistence formats. Today: the RDB snapshot writer used by full synchronisation (SYNC/PSYNC).
pub mod rdb;
