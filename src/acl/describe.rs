//! Describing a selector's command bitmap as rules (Redis 7.0's
//! ACLDescribeSelectorCommandRules): start from `+@all` (if the selector may run future
//! commands) or `-@all`, add or remove the categories that best fit the bitmap, then the single
//! commands still different, then the allowed first arguments. The rules are applied to a
//! scratch selector as they are chosen, so the result always rebuilds exactly the bitmap.
//!
//! Redis walks its command table in hash order, which changes from one process to the next;
//! Ferrous walks it by name, so the single-command part is stable.

use super::catalog::{Catalog, CATEGORIES};
use super::selector::Selector;

pub fn describe_commands(cat: &Catalog, s: &Selector) -> Vec<u8> {
    let mut rules: Vec<u8> = Vec::new();
    let mut fake = Selector::new(false, false);
    let additive = !s.future_commands();
    if additive {
        rules.extend_from_slice(b"-@all ");
        let _ = fake.apply(cat, b"-@all");
    } else {
        rules.extend_from_slice(b"+@all ");
        let _ = fake.apply(cat, b"+@all");
    }
    // Categories, best fit first, each applied once; `temp` tracks what is left to explain.
    let mut temp = Selector::new(false, false);
    temp.allowed = s.allowed;
    let mut applied = [false; 32];
    loop {
        let mut best: Option<usize> = None;
        let (mut mindiff, mut maxsame) = (usize::MAX, 0usize);
        for (j, _) in CATEGORIES.iter().enumerate() {
            if applied[j] {
                continue;
            }
            let (on, off) = temp.count_category(cat, 1 << j);
            let (diff, same) = if additive { (off, on) } else { (on, off) };
            if same > diff && (diff < mindiff || (diff == mindiff && same > maxsame)) {
                best = Some(j);
                mindiff = diff;
                maxsame = same;
            }
        }
        let Some(j) = best else { break };
        fake.set_category(cat, 1 << j, additive);
        temp.set_category(cat, 1 << j, !additive);
        rules.extend_from_slice(if additive { b"+@" } else { b"-@" });
        rules.extend_from_slice(CATEGORIES[j].as_bytes());
        rules.push(b' ');
        applied[j] = true;
    }
    // Single commands (a container before its subcommands), then first arguments.
    for &top in &cat.top {
        let cmd = cat.get(top);
        for id in std::iter::once(top).chain(cmd.subs.iter().copied()) {
            let c = cat.get(id);
            let (user, f) = (s.bit(id), fake.bit(id));
            if user != f {
                rules.push(if user { b'+' } else { b'-' });
                rules.extend_from_slice(c.full_name.as_bytes());
                rules.push(b' ');
                fake.change_perm(cat, id, user);
            }
            if !user {
                if let Some(args) = s.firstargs.get(&id) {
                    for a in args {
                        rules.push(b'+');
                        rules.extend_from_slice(c.full_name.as_bytes());
                        rules.push(b'|');
                        rules.extend_from_slice(a);
                        rules.push(b' ');
                    }
                }
            }
        }
    }
    rules.pop();
    if fake.allowed != s.allowed {
        // Redis panics here; the bitmap is still what the user has, only its description is off.
        crate::acl::warn(&format!(
            "CRITICAL ERROR: User ACLs don't match final bitmap: '{}'",
            String::from_utf8_lossy(&rules)
        ));
    }
    rules
}
