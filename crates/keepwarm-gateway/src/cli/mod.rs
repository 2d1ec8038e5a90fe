//! The `keepwarm` subcommands that are more than a few lines. `main.rs`
//! parses arguments and dispatches here.

pub mod stats;
