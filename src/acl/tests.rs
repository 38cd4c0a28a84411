//! Rules, descriptions and checks on a small catalog.

use super::catalog::sample;
use super::*;
use bytes::Bytes;

fn rules(s: &str) -> Vec<Vec<u8>> {
    s.split(' ').filter(|w| !w.is_empty()).map(|w| w.as_bytes().to_vec()).collect()
}

fn user(cat: &Catalog, s: &str) -> User {
    User::new(false).with_rules(cat, &rules(s), false).unwrap()
}

fn describe(cat: &Catalog, u: &User) -> String {
    String::from_utf8(u.describe(cat)).unwrap()
}

fn args(s: &str) -> Vec<Bytes> {
    s.split(' ').map(|w| Bytes::copy_from_slice(w.as_bytes())).collect()
}

fn check(cat: &Catalog, u: &User, line: &str, keys: &[(usize, u8)]) -> Result<(), Denied> {
    let a = args(line);
    let cmd = cat.lookup(&a[0]).unwrap();
    let ks: Vec<KeyArg> = keys.iter().map(|&(pos, needs)| KeyArg { pos, needs }).collect();
    let find = move || ks.clone();
    let call = Call::new(cmd, &a, !keys.is_empty(), &find);
    Acl::check(u, &call)
}

#[test]
fn new_users_and_descriptions() {
    let cat = sample();
    // Redis 7.2: new users carry sanitize-payload.
    assert_eq!(describe(&cat, &User::new(false)), "off sanitize-payload resetchannels -@all");
    assert_eq!(describe(&cat, &user(&cat, "on nopass ~* &* +@all")), "on nopass sanitize-payload ~* &* +@all");
    assert_eq!(
        describe(&cat, &user(&cat, "skip-sanitize-payload +@all -config|set")),
        "off skip-sanitize-payload resetchannels +@all -config|set"
    );
    assert_eq!(
        describe(&cat, &user(&cat, "+@all -config +config|get")),
        "off sanitize-payload resetchannels +@all -config +config|get"
    );
    assert_eq!(
        describe(&cat, &user(&cat, "%R~foo %W~bar %RW~baz ~baz &ch")),
        "off sanitize-payload %R~foo %W~bar ~baz resetchannels &ch -@all"
    );
    assert_eq!(describe(&cat, &user(&cat, "%R~foo %W~foo")), "off sanitize-payload ~foo resetchannels -@all");
    assert_eq!(
        describe(&cat, &user(&cat, "+select|0 +select|1 +select|0")),
        "off sanitize-payload resetchannels -@all +select|1 +select|0"
    );
    let u = user(&cat, ">pw (~k +get)");
    assert_eq!(
        describe(&cat, &u),
        format!(
            "off sanitize-payload #{} resetchannels -@all (~k resetchannels -@all +get)",
            String::from_utf8(password::hash(b"pw")).unwrap()
        )
    );
}

/// Redis 7.2 prints the command rules in the order they were given: a later rule on a name
/// replaces the earlier one (and a rule on a container, those on its subcommands and first
/// arguments); `+@all` / `-@all` start afresh. The description always rebuilds the bitmap.
#[test]
fn command_rules_are_described_in_order() {
    let cat = sample();
    let cmds = |s: &str| {
        let u = user(&cat, s);
        let d = String::from_utf8(describe::describe_commands(&cat, u.root())).unwrap();
        let again = user(&cat, &d);
        assert_eq!(again.root().allowed, u.root().allowed, "{s} -> {d}");
        d
    };
    assert_eq!(cmds("+@all -@slow -@string +get"), "+@all -@slow -@string +get");
    assert_eq!(cmds("+@all -@string -@slow +get"), "+@all -@string -@slow +get");
    assert_eq!(cmds("+@all +config|get"), "+@all +config|get");
    assert_eq!(cmds("+@all +GET -@Slow +@SLOW"), "+@all +get +@slow");
    assert_eq!(cmds("-@all +config|get +config|set +config"), "-@all +config");
    assert_eq!(cmds("-@all +config +config|get -config|set"), "-@all +config +config|get -config|set");
    assert_eq!(cmds("-@all +select|0 -select"), "-@all -select");
    assert_eq!(cmds("+get +set +@all -set"), "+@all -set");
    assert_eq!(cmds("+@all +get nocommands +set"), "-@all +set");
    assert_eq!(cmds("allcommands -config|set"), "+@all -config|set");
    // Rules on other names stay where they were.
    assert_eq!(cmds("-@all +select|0 +set +select|1 -set"), "-@all +select|0 +select|1 -set");
    // reset starts afresh too.
    assert_eq!(cmds("+get reset +set"), "-@all +set");
}

#[test]
fn rule_errors() {
    let cat = sample();
    let err = |s: &str| User::new(false).with_rules(&cat, &rules(s), false).unwrap_err();
    assert_eq!(err("+nosuch"), "Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in ACL");
    assert_eq!(
        err("+config|get|x"),
        "Error in ACL SETUSER modifier '+config|get|x': Allowing first-arg of a subcommand is not supported"
    );
    assert!(err("+config|nosuch").contains("Unknown command"));
    assert!(err("-select|0").contains("Unknown command"));
    assert!(err("+select|").contains("Syntax error"));
    assert!(err("~* ~foo").contains("'allkeys' flag"));
    assert!(err("&* &foo").contains("'allchannels' flag"));
    assert!(err("<nopw").contains("does not exist"));
    assert!(err("#abc").contains("exactly 64 characters"));
    assert!(err("%X~foo").contains("Syntax error"));
    // Neither R nor W (CVE-2024-31227, CVE-2024-51741: Redis 7.2.6, 7.2.7): a syntax error, not a
    // pattern without permissions; `%R` alone is `%R~` (an empty pattern), as Valkey 9.1.
    assert_eq!(err("%~foo"), "Error in ACL SETUSER modifier '%~foo': Syntax error");
    assert_eq!(err("%"), "Error in ACL SETUSER modifier '%': Syntax error");
    assert_eq!(err("(%)"), "Error in ACL SETUSER modifier '(%)': Syntax error");
    assert_eq!(
        describe(&cat, &user(&cat, "%R (%RW)")),
        "off sanitize-payload %R~ resetchannels -@all (~ resetchannels -@all)"
    );
    assert!(err("bogus").contains("Syntax error"));
    assert_eq!(err("(~a +get"), "Unmatched parenthesis in acl selector starting at '(~a'.");
    assert!(err("(bogus)").starts_with("Error in ACL SETUSER modifier '(bogus)': Syntax error"));
    // Redis 7.2: a `(` inside an open selector is part of it (7.0 dropped what came before).
    assert_eq!(err("(+get (+set (+select )"), "Error in ACL SETUSER modifier '(+get (+set (+select )': Syntax error");
    assert_eq!(err("(+get (+set (+select"), "Unmatched parenthesis in acl selector starting at '(+get'.");
}

#[test]
fn checks_follow_selectors() {
    let cat = sample();
    let u = user(&cat, "on nopass +get ~k1 (+set %W~w*) (+get %R~r*)");
    assert_eq!(check(&cat, &u, "get k1", &[(1, selector::READ)]), Ok(()));
    assert_eq!(check(&cat, &u, "get r1", &[(1, selector::READ)]), Ok(()));
    assert_eq!(check(&cat, &u, "get w1", &[(1, selector::READ)]), Err(Denied::Key(1)));
    assert_eq!(check(&cat, &u, "set w1 v", &[(1, selector::WRITE)]), Ok(()));
    assert_eq!(check(&cat, &u, "set r1 v", &[(1, selector::WRITE)]), Err(Denied::Key(1)));
    assert_eq!(check(&cat, &u, "select 1", &[]), Err(Denied::Command));
    // AUTH is never refused by command rules.
    assert_eq!(check(&cat, &u, "auth a b", &[]), Ok(()));
    let u = user(&cat, "+select|0");
    assert_eq!(check(&cat, &u, "select 0", &[]), Ok(()));
    assert_eq!(check(&cat, &u, "select 1", &[]), Err(Denied::Command));
    let u = user(&cat, "+@all ~* resetchannels &news.* &lit");
    assert_eq!(check(&cat, &u, "publish news.1 x", &[]), Ok(()));
    assert_eq!(check(&cat, &u, "publish other x", &[]), Err(Denied::Channel(1)));
    assert_eq!(check(&cat, &u, "psubscribe news.*", &[]), Ok(()));
    assert_eq!(check(&cat, &u, "psubscribe lit news.1", &[]), Err(Denied::Channel(2)));
}

#[test]
fn passwords_and_default_user() {
    let cat = Arc::new(sample());
    let acl = Acl::new(cat.clone());
    assert!(!acl.auth_required());
    assert!(acl.authenticate(b"default", b"anything").is_some());
    acl.set_default_password(Some(b"secret"));
    assert!(acl.auth_required());
    assert!(acl.authenticate(b"default", b"anything").is_none());
    assert!(acl.authenticate(b"default", b"secret").is_some());
    acl.set_user(b"u", &rules("on >a >b"), false).unwrap();
    assert!(acl.authenticate(b"u", b"b").is_some());
    acl.set_user(b"u", &rules("<a off"), false).unwrap();
    assert!(acl.authenticate(b"u", b"b").is_none(), "disabled");
    assert!(acl.set_user(b"u", &rules("on <nope"), false).is_err());
    assert!(acl.authenticate(b"u", b"b").is_none(), "a failed SETUSER changes nothing");
    assert_eq!(acl.del_users(&[b"default"]).unwrap_err(), "The 'default' user cannot be removed");
    assert_eq!(acl.del_users(&[b"u", b"nosuch"]).unwrap().len(), 1);
    assert_eq!(acl.users().len(), 1);
}

#[test]
fn revoking_channels() {
    let cat = sample();
    let old = user(&cat, "resetchannels &a &b*");
    assert!(revoked_channels(&user(&cat, "resetchannels &a &b* &c"), &old).is_none());
    assert!(revoked_channels(&user(&cat, "allchannels"), &old).is_none());
    let up = revoked_channels(&user(&cat, "resetchannels &a"), &old).unwrap();
    assert!(subscriptions_allowed(&up, &[Bytes::from_static(b"a")], &[]));
    assert!(!subscriptions_allowed(&up, &[], &[Bytes::from_static(b"b*")]));
    assert!(revoked_channels(&user(&cat, "resetchannels &a"), &user(&cat, "allchannels")).is_some());
}

#[test]
fn acl_file_parsing() {
    let cat = sample();
    let ok = file::parse_acl_file(&cat, "u.acl", b"user alice on >x ~* +@all\n\nuser bob (~a +get) (~b +set)\n", false)
        .unwrap();
    assert_eq!(ok.len(), 2);
    assert_eq!(ok[1].1.selectors.len(), 3);
    let err =
        file::parse_acl_file(&cat, "u.acl", b"user a on\nuser a off\nfoo\nuser b +nosuch bogus", false).unwrap_err();
    assert_eq!(err, "WARNING: Duplicate user 'a' found on line 2. u.acl:3 should start with user keyword followed by the username. u.acl:4: Error in applying operation '+nosuch': Unknown command or category name in ACL. u.acl:4: Syntax error. WARNING: ACL errors detected, no change to the previously active ACL rules was performed");
}
