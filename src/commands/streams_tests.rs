//! In-process tests of the stream commands' Redis 7.2 behaviour.

use super::testing::Harness;

#[test]
fn xsetid_refuses_an_id_below_the_max_deleted_id() {
    let mut h = Harness::new();
    for id in ["1-1", "1-2", "1-3"] {
        h.run(&["XADD", "x", id, "a", "1"]);
    }
    h.run(&["XDEL", "x", "1-2"]);
    h.run(&["XDEL", "x", "1-3"]);
    assert_eq!(
        h.run(&["XSETID", "x", "1-2"]),
        "-ERR The ID specified in XSETID is smaller than current max_deleted_entry_id\r\n"
    );
    // At or above it (and above the top item) is fine.
    assert_eq!(h.run(&["XSETID", "x", "1-3"]), "+OK\r\n");
}

#[test]
fn unbalanced_stream_lists_name_the_command() {
    let mut h = Harness::new();
    h.run(&["XADD", "s", "1-0", "f", "v"]);
    h.run(&["XGROUP", "CREATE", "s", "g", "$"]);
    assert_eq!(
        h.run(&["XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "s"]),
        "-ERR Unbalanced 'xreadgroup' list of streams: for each stream key an ID or '>' must be specified.\r\n"
    );
    assert_eq!(
        h.run(&["XREAD", "COUNT", "1", "STREAMS", "s"]),
        "-ERR Unbalanced 'xread' list of streams: for each stream key an ID or '$' must be specified.\r\n"
    );
}

#[test]
fn xreadgroup_creates_its_consumer_even_when_nothing_is_served() {
    let mut h = Harness::new();
    h.run(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    assert_eq!(h.run(&["XREADGROUP", "GROUP", "g", "alice", "COUNT", "1", "STREAMS", "s", ">"]), "*-1\r\n");
    let consumers = h.run(&["XINFO", "CONSUMERS", "s", "g"]);
    assert!(consumers.starts_with("*1\r\n*8\r\n$4\r\nname\r\n$5\r\nalice\r\n"), "{consumers}");
    assert!(consumers.ends_with("$8\r\ninactive\r\n:-1\r\n"), "{consumers}");
}

#[test]
fn claims_create_their_consumer_even_when_nothing_is_claimed() {
    let mut h = Harness::new();
    h.run(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    assert_eq!(h.run(&["XCLAIM", "s", "g", "alice", "0", "1-0", "JUSTID"]), "*0\r\n");
    assert_eq!(h.run(&["XAUTOCLAIM", "s", "g", "bob", "0", "0", "JUSTID"]), "*3\r\n$3\r\n0-0\r\n*0\r\n*0\r\n");
    // A claim that fails on its arguments creates nobody.
    assert!(h.run(&["XCLAIM", "s", "g", "carol", "0", "1-0", "IDLE", "x"]).starts_with("-ERR"));
    assert_eq!(h.run(&["XGROUP", "CREATECONSUMER", "s", "g", "alice"]), ":0\r\n");
    assert_eq!(h.run(&["XGROUP", "CREATECONSUMER", "s", "g", "bob"]), ":0\r\n");
    assert_eq!(h.run(&["XGROUP", "CREATECONSUMER", "s", "g", "carol"]), ":1\r\n");
}

#[test]
fn xautoclaim_refuses_a_count_no_host_could_allocate() {
    let mut h = Harness::new();
    h.run(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    assert_eq!(
        h.run(&["XAUTOCLAIM", "s", "g", "c", "0", "0", "COUNT", "576460752303423487"]),
        "-ERR Insufficient memory, failed allocating transient memory, COUNT too high.\r\n"
    );
    assert_eq!(h.run(&["XGROUP", "CREATECONSUMER", "s", "g", "c"]), ":1\r\n");
    assert_eq!(h.run(&["XAUTOCLAIM", "s", "g", "c", "0", "0", "COUNT", "3"]), "*3\r\n$3\r\n0-0\r\n*0\r\n*0\r\n");
}
