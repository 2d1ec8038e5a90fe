//! The `keepwarm` subcommands that are more than a few lines: `demo`,
//! `bench` and `stats`. `main.rs` parses arguments and dispatches here.

pub mod bench;
pub mod demo;
mod demo_mock;
pub mod report;
pub mod stats;
