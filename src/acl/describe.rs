//! Describing a selector's command permissions as rules (Redis 7.2's
//! ACLDescribeSelectorCommandRules): `+@all` (if the selector may run future commands) or
//! `-@all`, then the command rules as they were given since (the selector's `rules`, where a
//! later rule on a name replaced the earlier one). Replaying the description rebuilds exactly
//! the command bitmap; debug builds check it (Redis does on every call, and panics).

use super::catalog::Catalog;
use super::selector::Selector;

pub fn describe_commands(cat: &Catalog, s: &Selector) -> Vec<u8> {
    let mut out: Vec<u8> = if s.future_commands() { b"+@all".to_vec() } else { b"-@all".to_vec() };
    for r in &s.rules {
        out.push(b' ');
        out.extend_from_slice(r);
    }
    if cfg!(debug_assertions) {
        let mut fake = Selector::new(false, false);
        let _ = fake.apply(cat, if s.future_commands() { b"+@all" } else { b"-@all" });
        for r in &s.rules {
            let _ = fake.apply(cat, r);
        }
        if fake.allowed != s.allowed {
            // Redis panics here; the bitmap is still what the user has, only its description is off.
            crate::acl::warn(&format!(
                "CRITICAL ERROR: User ACLs don't match final bitmap: '{}'",
                String::from_utf8_lossy(&out)
            ));
        }
    }
    out
}
