//! Replication, master side: a replica (or anything speaking SYNC/PSYNC, such as the Redis test
//! suite's stream reader) gets a consistent RDB snapshot, then every later effect from the
//! effect stream, encoded as RESP commands with SELECT whenever the database changes.
//!
//! Consistency: the snapshot is taken and the effect-stream subscription opened while every
//! shard is locked, and writers publish their effects before releasing their shard locks, so no
//! write can fall between the snapshot and the stream, nor appear in both.

pub mod replica;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::keyspace::effects::EffectBatch;

/// Encode one command as a RESP multibulk.
pub fn encode_command(out: &mut Vec<u8>, argv: &[impl AsRef<[u8]>]) {
    out.push(b'*');
    out.extend_from_slice(itoa::Buffer::new().format(argv.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in argv {
        let a = a.as_ref();
        out.push(b'$');
        out.extend_from_slice(itoa::Buffer::new().format(a.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Encode a batch, preceded by SELECT when it targets another database than the last one.
fn encode_batch(out: &mut Vec<u8>, batch: &EffectBatch, selected: &mut Option<usize>) {
    for e in batch {
        if *selected != Some(e.db) {
            encode_command(out, &[b"SELECT".as_slice(), itoa::Buffer::new().format(e.db).as_bytes()]);
            *selected = Some(e.db);
        }
        encode_command(out, &e.argv);
    }
}

/// Stream effects to a replica connection until it closes (or the stream ends). Whatever the
/// replica sends (REPLCONF ACK...) is read and ignored.
pub async fn stream_to_replica<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    sock: &mut S,
    mut effects: UnboundedReceiver<EffectBatch>,
) -> Result<(), String> {
    let mut selected: Option<usize> = None;
    let mut out = Vec::with_capacity(16 * 1024);
    let mut inbuf = vec![0u8; 4096];
    loop {
        tokio::select! {
            batch = effects.recv() => {
                let Some(batch) = batch else { return Ok(()) };
                out.clear();
                encode_batch(&mut out, &batch, &mut selected);
                // Drain what else is ready so a burst of writes leaves in one syscall.
                while let Ok(more) = effects.try_recv() {
                    encode_batch(&mut out, &more, &mut selected);
                }
                sock.write_all(&out).await.map_err(|e| e.to_string())?;
            }
            n = sock.read(&mut inbuf) => {
                match n {
                    Ok(0) | Err(_) => return Ok(()),
                    Ok(_) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn commands_are_resp_multibulks() {
        let mut out = Vec::new();
        super::encode_command(&mut out, &[b"SET".as_slice(), b"k", b""]);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
    }
}
