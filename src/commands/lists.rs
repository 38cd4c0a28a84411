//! List commands (skeleton: being implemented for issue 3).

use super::CommandSpec;

pub static COMMANDS: &[CommandSpec] = &[];
