//! The `palaver` binary's subcommands beyond `serve` and `config`, one module each
//! (binary-only code over the library's typed errors: anyhow is allowed here).

pub mod admin;
pub mod backup;
pub mod rekey;
pub mod terminal;
