//! Persistence formats: the RDB file format (writer in `rdb`, loader in `rdb_load` and
//! `rdb_value`, over a bounds-checked `reader` on a bounded `rdb_window` of the file; streams in `rdb_stream`), the compact encodings found inside RDB
//! values (`lzf`, `listpack`, `ziplist`, `intset`, `zipmap`) and DUMP/RESTORE payloads
//! (`dump`), and the append-only file formats (`aof`: manifest and command stream;
//! `aof_rewrite`: a base file written as commands). `corruption_tests` feeds both loaders
//! damaged input of every type and encoding; `report_tests` checks what Redis's own damaged
//! payloads report.
pub mod aof;
pub mod aof_rewrite;
#[cfg(test)]
mod corruption_tests;
pub mod dump;
pub mod intset;
pub mod listpack;
pub mod lzf;
pub mod rdb;
pub mod rdb_load;
pub mod rdb_stream;
pub mod rdb_value;
pub mod rdb_window;
pub mod reader;
#[cfg(test)]
mod report_tests;
pub mod ziplist;
pub mod zipmap;
