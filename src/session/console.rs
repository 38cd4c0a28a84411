//! A client's console: the I/O the Lua debugger (`scripting::ldb`) does with its client.
//!
//! The debugger runs inside the script, on the script's own stack (`scripting::fiber`), and
//! never touches the connection: for each write of its log and each wait for a command it
//! suspends the script with a [`ConsoleIo`] request. The connection task driving the script,
//! which owns the stream (and, over TLS, the TLS session), does the request through its
//! [`Console`] and resumes the script with the [`ConsoleDone`] answer. The script's thread
//! never blocks on the client, and a TLS connection is served like a plain one.

use std::future::Future;
use std::time::Duration;

/// What the debugger asks of its client's connection.
#[derive(Debug, PartialEq, Eq)]
pub enum ConsoleIo {
    /// Write all of `bytes` straight to the client (before any reply still queued), waiting
    /// for the client to take them at most `within`.
    Write { bytes: Vec<u8>, within: Duration },
    /// Wait at most `within` for the client's input.
    Read { within: Duration },
}

/// How a [`ConsoleIo`] went.
#[derive(Debug, PartialEq, Eq)]
pub enum ConsoleDone {
    /// Written whole.
    Written,
    /// Not written whole: the client did not take it in time, or the connection failed.
    NotWritten,
    /// Input from the client.
    Input(Vec<u8>),
    /// No input within the wait.
    Idle,
    /// The client closed the connection (or reading from it failed).
    Closed,
}

/// Does a debugger's requests on one client's connection.
pub trait Console {
    fn serve(&mut self, io: ConsoleIo) -> impl Future<Output = ConsoleDone>;
}

/// The console of a script run with no client to talk to: nothing is written, and the client
/// reads as gone.
pub struct NoConsole;

impl Console for NoConsole {
    async fn serve(&mut self, io: ConsoleIo) -> ConsoleDone {
        match io {
            ConsoleIo::Write { .. } => ConsoleDone::NotWritten,
            ConsoleIo::Read { .. } => ConsoleDone::Closed,
        }
    }
}
