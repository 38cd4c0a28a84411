//! Small helpers shared by the protocol, the keyspace, the commands and the server.
pub mod bytetext;
pub mod digest;
pub mod dtoa;
pub mod fault;
pub mod glob;
pub mod lean_vec;
pub mod leb128;
pub mod net;
pub mod num;
pub mod pqsort;
pub mod prefetch;
pub mod split_args;
pub mod striped;
pub mod sysmem;
pub mod thread_priority;
pub mod timer;
