//! Replies read on Sentinel's links to instances: a small RESP2 decoder (with RESP3's push,
//! map, null, boolean, double and verbatim types folded into RESP2's shapes).

/// One reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Nil,
    Array(Vec<Reply>),
}

impl Reply {
    /// A bulk or status reply as text.
    pub fn text(&self) -> Option<String> {
        match self {
            Reply::Bulk(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Reply::Status(s) => Some(s.clone()),
            _ => None,
        }
    }
}

/// The longest line (a bulk length, an error text...) accepted before the link is dropped.
const MAX_LINE: usize = 64 * 1024;
/// The largest bulk accepted (an INFO reply is a few kilobytes).
const MAX_BULK: usize = 64 * 1024 * 1024;
const MAX_DEPTH: usize = 16;

/// Decode one reply from the front of `buf`: Ok(Some((reply, bytes used))), Ok(None) when it
/// is incomplete, Err on a protocol error.
pub fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, String> {
    parse_at(buf, 0, 0)
}

fn line(buf: &[u8], at: usize) -> Result<Option<(&[u8], usize)>, String> {
    let rest = &buf[at.min(buf.len())..];
    match rest.windows(2).position(|w| w == b"\r\n") {
        Some(n) => Ok(Some((&rest[..n], at + n + 2))),
        None if rest.len() > MAX_LINE => Err("line too long".into()),
        None => Ok(None),
    }
}

fn number(s: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(s).ok().and_then(|t| t.parse().ok()).ok_or_else(|| "bad number".to_string())
}

fn parse_at(buf: &[u8], at: usize, depth: usize) -> Result<Option<(Reply, usize)>, String> {
    if depth > MAX_DEPTH {
        return Err("nested too deep".into());
    }
    let Some(&kind) = buf.get(at) else { return Ok(None) };
    let Some((body, next)) = line(buf, at + 1)? else { return Ok(None) };
    let text = || String::from_utf8_lossy(body).into_owned();
    Ok(Some(match kind {
        b'+' => (Reply::Status(text()), next),
        b'-' => (Reply::Error(text()), next),
        b':' => (Reply::Int(number(body)?), next),
        b'_' => (Reply::Nil, next),
        b'#' => (Reply::Int((body == b"t") as i64), next),
        b',' | b'(' => (Reply::Bulk(body.to_vec()), next),
        b'$' | b'=' | b'!' => {
            let n = number(body)?;
            if n < 0 {
                return Ok(Some((Reply::Nil, next)));
            }
            let n = n as usize;
            if n > MAX_BULK {
                return Err("bulk too long".into());
            }
            if buf.len() < next + n + 2 {
                return Ok(None);
            }
            let mut data = buf[next..next + n].to_vec();
            if kind == b'=' && data.len() >= 4 {
                data.drain(..4); // "txt:"
            }
            match kind {
                b'!' => (Reply::Error(String::from_utf8_lossy(&data).into_owned()), next + n + 2),
                _ => (Reply::Bulk(data), next + n + 2),
            }
        }
        b'*' | b'>' | b'~' | b'%' => {
            let n = number(body)?;
            if n < 0 {
                return Ok(Some((Reply::Nil, next)));
            }
            let count = if kind == b'%' { n as usize * 2 } else { n as usize };
            let mut items = Vec::with_capacity(count.min(1024));
            let mut pos = next;
            for _ in 0..count {
                match parse_at(buf, pos, depth + 1)? {
                    Some((r, p)) => {
                        items.push(r);
                        pos = p;
                    }
                    None => return Ok(None),
                }
            }
            (Reply::Array(items), pos)
        }
        _ => return Err(format!("unexpected reply type byte {kind}")),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_replies() {
        assert_eq!(parse(b"+PONG\r\n").unwrap(), Some((Reply::Status("PONG".into()), 7)));
        assert_eq!(parse(b"-ERR x\r\n").unwrap().unwrap().0, Reply::Error("ERR x".into()));
        assert_eq!(parse(b"$3\r\nabc\r\n").unwrap().unwrap().0, Reply::Bulk(b"abc".to_vec()));
        assert_eq!(parse(b"$-1\r\n").unwrap().unwrap().0, Reply::Nil);
        let msg = b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n:1\r\n";
        assert_eq!(
            parse(msg).unwrap().unwrap(),
            (
                Reply::Array(vec![Reply::Bulk(b"message".to_vec()), Reply::Bulk(b"c".to_vec()), Reply::Int(1)]),
                msg.len()
            )
        );
    }

    #[test]
    fn incomplete_and_bad() {
        assert_eq!(parse(b"$3\r\nab").unwrap(), None);
        assert_eq!(parse(b"*2\r\n:1\r\n").unwrap(), None);
        assert_eq!(parse(b"+PON").unwrap(), None);
        assert!(parse(b"?x\r\n").is_err());
        assert!(parse(b":x\r\n").is_err());
    }
}
