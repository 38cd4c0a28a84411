//! Users from files: the ACL file (`aclfile`: ACL LOAD / ACL SAVE and start-up) and the `user`
//! directives of redis.conf, with Redis 7.0's validation and error texts.

use super::user::{merge_selector_args, User};
use super::{Acl, Catalog, RuleError};
use crate::acl::selector::{cstr, has_spaces};

/// Parse an ACL file's text into users (Redis's ACLLoadFromFile), all or nothing. `filename`
/// is `aclfile` as configured (the error texts name it). Err is the one-line description of
/// every problem found.
pub fn parse_acl_file(
    cat: &Catalog,
    filename: &str,
    text: &[u8],
    all_channels: bool,
) -> Result<Vec<(Vec<u8>, User)>, String> {
    let mut errors = String::new();
    let mut users: Vec<(Vec<u8>, User)> = Vec::new();
    let trim = |s: &[u8], set: &[u8]| -> Vec<u8> {
        let start = s.iter().position(|c| !set.contains(c)).unwrap_or(s.len());
        let end = s.iter().rposition(|c| !set.contains(c)).map_or(start, |e| e + 1);
        s[start..end.max(start)].to_vec()
    };
    // A NUL ends what Redis reads of the file (it is handled as C strings).
    let text = cstr(text);
    for (i, raw) in text.split(|&c| c == b'\n').enumerate() {
        let linenum = i + 1;
        let line = trim(raw, b" \t\r\n");
        if line.is_empty() {
            continue;
        }
        let argv: Vec<Vec<u8>> = line.split(|&c| c == b' ').map(|w| w.to_vec()).collect();
        if argv[0] != b"user" || argv.len() < 2 {
            errors.push_str(&format!("{filename}:{linenum} should start with user keyword followed by the username. "));
            continue;
        }
        let name = &argv[1];
        if has_spaces(name) {
            errors.push_str(&format!(
                "'{filename}:{linenum}: username '{}' contains invalid characters. ",
                String::from_utf8_lossy(cstr(name))
            ));
            continue;
        }
        if users.iter().any(|(n, _)| n == name) {
            errors.push_str(&format!(
                "WARNING: Duplicate user '{}' found on line {linenum}. ",
                String::from_utf8_lossy(cstr(name))
            ));
            continue;
        }
        let mut u = User::new(all_channels);
        let mut syntax_error = false;
        match merge_selector_args(&argv[2..]) {
            Err(_) => errors.push_str(&format!("{filename}:{linenum}: Unmatched parenthesis in selector definition.")),
            Ok(rules) => {
                for rule in rules {
                    let rule = trim(&rule, b"\t\r\n");
                    if let Err(e) = u.apply(cat, &rule, all_channels) {
                        if e == RuleError::Unknown {
                            errors.push_str(&format!(
                                "{filename}:{linenum}: Error in applying operation '{}': {}. ",
                                String::from_utf8_lossy(cstr(&rule)),
                                e.message()
                            ));
                        } else if !syntax_error {
                            errors.push_str(&format!("{filename}:{linenum}: {}. ", e.message()));
                            syntax_error = true;
                        }
                    }
                }
            }
        }
        users.push((name.clone(), u));
    }
    if errors.is_empty() {
        Ok(users)
    } else {
        errors.push_str("WARNING: ACL errors detected, no change to the previously active ACL rules was performed");
        Err(errors)
    }
}

/// Read and parse the ACL file (relative paths are from the working directory, `dir`).
pub fn read_acl_file(cat: &Catalog, filename: &str, all_channels: bool) -> Result<Vec<(Vec<u8>, User)>, String> {
    let text = std::fs::read(filename).map_err(|e| {
        format!("Error loading ACLs, opening file '{filename}': {}", crate::config::kinds::strerror(&e))
    })?;
    parse_acl_file(cat, filename, &text, all_channels)
}

/// ACL SAVE: every user as a `user` line, written to a temporary file renamed over the ACL
/// file. Err is the log line.
pub fn save_acl_file(acl: &Acl, filename: &str) -> Result<(), String> {
    let mut text = Vec::new();
    for cell in acl.users() {
        text.extend_from_slice(&acl.describe_line(&cell));
        text.push(b'\n');
    }
    let tmp = format!("{filename}.tmp-{}-{}", std::process::id(), super::now_ms());
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("Writing ACL file for ACL SAVE: {}", crate::config::kinds::strerror(&e)));
    }
    if let Err(e) = std::fs::rename(&tmp, filename) {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("Renaming ACL file for ACL SAVE: {}", crate::config::kinds::strerror(&e)));
    }
    Ok(())
}

/// A `user` directive of the configuration, as validated when the file is read (Redis's
/// ACLAppendUserForLoading): Err((index of the word to name, error)). Unknown commands are not
/// errors yet (they are when the users are loaded). `seen`: the names of earlier directives.
pub fn check_user_directive(cat: &Catalog, words: &[Vec<u8>], seen: &[Vec<u8>]) -> Result<(), (usize, RuleError)> {
    if words.len() < 2 || !words[0].eq_ignore_ascii_case(b"user") {
        return Err((0, RuleError::Syntax));
    }
    if seen.contains(&words[1]) {
        return Err((1, RuleError::Duplicate));
    }
    let merged = merge_selector_args(&words[2..]).map_err(|open| (open, RuleError::Syntax))?;
    let mut fake = User::new(false);
    for (j, rule) in merged.iter().enumerate() {
        // As Redis: `j` counts the merged rules but names a word of the whole directive.
        match fake.apply(cat, rule, false) {
            Err(RuleError::Unknown) | Ok(()) => {}
            Err(e) => return Err((j, e)),
        }
    }
    Ok(())
}

/// Create the users of the configuration's `user` directives (Redis's
/// ACLLoadConfiguredUsers): each directive's rules apply to a new user, or to the default user
/// after a `reset`. Ok holds notice lines, Err the warning line.
pub fn load_config_users(acl: &Acl, directives: &[Vec<Vec<u8>>], all_channels: bool) -> Result<Vec<String>, String> {
    let mut notices = Vec::new();
    for words in directives {
        let (name, rules) = (&words[1], &words[2..]);
        if has_spaces(name) {
            return Err("Spaces not allowed in ACL usernames".into());
        }
        let merged = merge_selector_args(rules).unwrap_or_else(|_| rules.to_vec());
        let base = if name == b"default" {
            let mut d = (**acl.default_user().rules()).clone();
            let _ = d.apply(&acl.catalog, b"reset", all_channels);
            d
        } else {
            User::new(all_channels)
        };
        let mut u = base;
        for rule in &merged {
            if let Err(e) = u.apply(&acl.catalog, rule, all_channels) {
                return Err(format!(
                    "Error loading ACL rule '{}' for the user named '{}': {}",
                    String::from_utf8_lossy(cstr(rule)),
                    String::from_utf8_lossy(cstr(name)),
                    e.message()
                ));
            }
        }
        if u.has(super::user::DISABLED) {
            notices.push(format!(
                "The user '{}' is disabled (there is no 'on' modifier in the user description). Make sure this is not a configuration error.",
                String::from_utf8_lossy(cstr(name))
            ));
        }
        acl.install(name, u);
    }
    Ok(notices)
}
