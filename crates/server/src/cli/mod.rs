//! The `palaver` binary's subcommands beyond `serve` and `config`, one module each
//! (anyhow allowed here: this is binary code, over the library's typed errors).

pub mod backup;
pub mod terminal;
