//! Binary-only subcommands of `palaver`, one module each (anyhow allowed here).

pub mod admin;
