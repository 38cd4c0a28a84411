use super::id::ParsedId;
use super::*;

fn explicit(ms: u64, seq: u64) -> Option<ParsedId> {
    Some(ParsedId { id: StreamId::new(ms, seq), seq_given: true })
}

fn ids(s: &StreamValue, rev: bool) -> Vec<StreamId> {
    s.range(StreamId::MIN, StreamId::MAX, rev).map(|e| e.id).collect()
}

fn fields(e: &EntryRef) -> Vec<(Vec<u8>, Vec<u8>)> {
    e.fields().map(|(f, v)| (f.to_vec(), v.to_vec())).collect()
}

fn small() -> NodeLimits {
    NodeLimits { max_bytes: 4096, max_entries: 3 }
}

#[test]
fn add_range_and_nodes() {
    let mut s = StreamValue::new();
    for i in 1..=10u64 {
        let v = i.to_string();
        let pairs: Vec<&[u8]> =
            if i % 4 == 0 { vec![b"other", v.as_bytes()] } else { vec![b"f", v.as_bytes(), b"g", b"x"] };
        s.add(&pairs, explicit(i, 0), 0, small()).unwrap();
    }
    assert_eq!(s.len(), 10);
    assert_eq!(s.node_count(), 4);
    let fwd = ids(&s, false);
    let mut back = ids(&s, true);
    back.reverse();
    assert_eq!(fwd, back);
    assert_eq!(fwd.len(), 10);
    let e = s.get(StreamId::new(4, 0)).unwrap();
    assert_eq!(fields(&e), vec![(b"other".to_vec(), b"4".to_vec())]);
    let e = s.get(StreamId::new(5, 0)).unwrap();
    assert_eq!(fields(&e), vec![(b"f".to_vec(), b"5".to_vec()), (b"g".to_vec(), b"x".to_vec())]);
    let mid: Vec<_> = s.range(StreamId::new(3, 0), StreamId::new(7, 0), true).map(|e| e.id.ms).collect();
    assert_eq!(mid, vec![7, 6, 5, 4, 3]);
    assert_eq!(s.add(&[b"a", b"b"], explicit(10, 0), 0, small()), Err(AddError::IdTooSmall));
    // Automatic IDs never go backwards.
    assert_eq!(s.add(&[b"a", b"b"], None, 5, small()), Ok(StreamId::new(10, 1)));
    assert_eq!(s.add(&[b"a", b"b"], None, 50, small()), Ok(StreamId::new(50, 0)));
    let star = Some(ParsedId { id: StreamId::new(50, 0), seq_given: false });
    assert_eq!(s.add(&[b"a", b"b"], star, 0, small()), Ok(StreamId::new(50, 1)));
}

#[test]
fn delete_and_trim() {
    let mut s = StreamValue::new();
    for i in 1..=10u64 {
        s.add(&[b"f", b"v"], explicit(i, 0), 0, small()).unwrap();
    }
    assert_eq!(s.delete(&[StreamId::new(1, 0), StreamId::new(5, 0), StreamId::new(99, 0)]), 2);
    assert_eq!(s.first_id, StreamId::new(2, 0));
    assert_eq!(s.max_deleted_entry_id, StreamId::new(5, 0));
    assert!(s.get(StreamId::new(5, 0)).is_none());
    // A node whose every entry is deleted goes away.
    s.delete(&[StreamId::new(4, 0), StreamId::new(6, 0)]);
    assert_eq!(s.node_count(), 3);
    assert_eq!(s.len(), 6);
    // Approximate trimming removes whole nodes only.
    assert_eq!(s.trim(Trim::MaxLen(4), true, 0), 2);
    assert_eq!(ids(&s, false).iter().map(|i| i.ms).collect::<Vec<_>>(), vec![7, 8, 9, 10]);
    assert_eq!(s.trim(Trim::MaxLen(2), false, 0), 2);
    assert_eq!(ids(&s, false).iter().map(|i| i.ms).collect::<Vec<_>>(), vec![9, 10]);
    assert_eq!(s.first_id, StreamId::new(9, 0));
    assert_eq!(s.trim(Trim::MinId(StreamId::new(10, 0)), false, 0), 1);
    assert_eq!(s.len(), 1);
    assert_eq!(s.edge_id(true, false), StreamId::new(10, 0));
    assert_eq!(s.last_valid_id(), StreamId::new(10, 0));
}

#[test]
fn nodes_validate_and_match_redis_bytes() {
    let mut s = StreamValue::new();
    s.add(&[b"a", b"1"], explicit(1, 0), 0, NodeLimits::default()).unwrap();
    s.add(&[b"a", b"2"], explicit(2, 0), 0, NodeLimits::default()).unwrap();
    s.add(&[b"b", b"hello"], explicit(2, 5), 0, NodeLimits::default()).unwrap();
    let (master, lp) = s.nodes().next().unwrap();
    let sum = node::validate(lp, *master).unwrap();
    assert_eq!(sum.live, 3);
    // Bytes of `XADD s 1-0 a 1` in Redis 7.0 (DEBUG LISTPACK / DUMP): count 1, deleted 0,
    // 1 field "a", terminator 0, then flags 2 (SAMEFIELDS), 0, 0, value 1, lp-count 4.
    let mut one = StreamValue::new();
    one.add(&[b"a", b"1"], explicit(1, 0), 0, NodeLimits::default()).unwrap();
    let (_, lp) = one.nodes().next().unwrap();
    let expect: Vec<u8> =
        vec![28, 0, 0, 0, 10, 0, 1, 1, 0, 1, 1, 1, 0x81, b'a', 2, 0, 1, 2, 1, 0, 1, 0, 1, 1, 1, 4, 1, 0xff];
    assert_eq!(lp, &expect);
}

#[test]
fn group_reads_and_lag() {
    let mut s = StreamValue::new();
    for i in 1..=5u64 {
        s.add(&[b"f", b"v"], explicit(i, 0), 0, NodeLimits::default()).unwrap();
    }
    s.groups.insert(bytes::Bytes::from_static(b"g"), ConsumerGroup::new(StreamId::MIN, 0));
    assert_eq!(s.lag(&s.groups[&b"g"[..]]), Some(5));
    s.advance_group(b"g", StreamId::new(1, 0));
    s.advance_group(b"g", StreamId::new(2, 0));
    assert_eq!(s.groups[&b"g"[..]].entries_read, 2);
    assert_eq!(s.lag(&s.groups[&b"g"[..]]), Some(3));
    s.delete(&[StreamId::new(4, 0)]);
    assert_eq!(s.lag(&s.groups[&b"g"[..]]), None);
}
