//! Small, dependency-free helpers shared by the protocol, the keyspace and the commands.
pub mod bytetext;
pub mod dtoa;
pub mod fault;
pub mod glob;
pub mod num;
pub mod split_args;
