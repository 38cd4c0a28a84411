//! A connection's [`Console`]: the Lua debugger's writes and reads, done by the connection
//! task on its own [`Stream`] while the debugged script waits on its stack (see
//! `session::console`). TCP, Unix and TLS streams alike: over TLS the bytes go through the
//! connection's TLS session, as Redis's debugger writes through its connection abstraction.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::listen::Stream;
use crate::session::console::{Console, ConsoleDone, ConsoleIo};

/// The most input one read hands the debugger (as Redis's ldbRepl reads).
const READ_CHUNK: usize = 1024;

/// The console of the connection whose task drives the script.
pub struct StreamConsole<'a>(pub &'a mut Stream);

impl Console for StreamConsole<'_> {
    async fn serve(&mut self, io: ConsoleIo) -> ConsoleDone {
        match io {
            ConsoleIo::Write { bytes, within } => {
                let sock = &mut *self.0;
                let write = async {
                    sock.write_all(&bytes).await?;
                    // TLS: the records leave now, not with the next reply.
                    sock.flush().await
                };
                match crate::util::timer::timeout(within, write).await {
                    Ok(Ok(())) => ConsoleDone::Written,
                    _ => ConsoleDone::NotWritten,
                }
            }
            ConsoleIo::Read { within } => read(self.0, within).await,
        }
    }
}

/// Wait at most `within` for input (a read is cancelled safely: what TLS already decrypted
/// stays in its session for the next one).
async fn read(sock: &mut Stream, within: Duration) -> ConsoleDone {
    let mut buf = vec![0u8; READ_CHUNK];
    match crate::util::timer::timeout(within, sock.read(&mut buf)).await {
        Err(_) => ConsoleDone::Idle,
        Ok(Ok(0)) | Ok(Err(_)) => ConsoleDone::Closed,
        Ok(Ok(n)) => {
            buf.truncate(n);
            ConsoleDone::Input(buf)
        }
    }
}
