//! The `palaver` binary's subcommands beyond `serve` and `config`, one module each
//! (binary-only code: anyhow is allowed here).

pub mod admin;
pub mod terminal;
