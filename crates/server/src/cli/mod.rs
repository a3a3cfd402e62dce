//! The `palaver` binary's subcommands beyond `serve` and `config`, one module each.

pub mod terminal;
