//! The search index's size on disk, read from the server's database: SQLite's page counts
//! per table and index (`dbstat`), PostgreSQL's relation sizes.

use sqlx::Connection;

use crate::{BenchError, Result};

/// Where the server's database is, to measure its index.
#[derive(Debug, Clone, serde::Serialize)]
pub enum Database {
    /// The SQLite file (`<data_dir>/palaver.db`).
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL URL and the server's schema (its `namespace`), if any.
    Postgres { url: String, schema: Option<String> },
}

/// Bytes on disk.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sizes {
    /// The search index: every table and index that holds it.
    pub index: f64,
    /// The messages table with its own indexes, for scale.
    pub messages: f64,
}

fn err(e: impl std::fmt::Display) -> BenchError {
    BenchError::Setup(format!("measuring the index: {e}"))
}

pub async fn measure(db: &Database) -> Result<Sizes> {
    match db {
        Database::Sqlite(path) => {
            let url = format!("sqlite://{}?mode=ro", path.display());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.map_err(err)?;
            // Every page of the FTS5 table's shadow tables (message_search_data, _idx,
            // _config, _docsize); and of messages with its indexes.
            let (index, messages): (i64, i64) = sqlx::query_as(
                "SELECT \
                   (SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name LIKE 'message\\_search%' ESCAPE '\\'), \
                   (SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = 'messages' \
                      OR name LIKE 'messages\\_%' ESCAPE '\\' OR name LIKE 'sqlite\\_autoindex\\_messages%' ESCAPE '\\')",
            )
            .fetch_one(&mut conn)
            .await
            .map_err(err)?;
            Ok(Sizes {
                index: index as f64,
                messages: messages as f64,
            })
        }
        Database::Postgres { url, schema } => {
            let mut conn = sqlx::PgConnection::connect(url).await.map_err(err)?;
            if let Some(schema) = schema {
                sqlx::query(&format!(
                    "SET search_path TO \"{}\"",
                    schema.replace('"', "")
                ))
                .execute(&mut conn)
                .await
                .map_err(err)?;
            }
            // Table, TOAST and every index (the GIN over the tokens, the id btree).
            let (index, messages): (i64, i64) = sqlx::query_as(
                "SELECT pg_total_relation_size('message_search'), pg_total_relation_size('messages')",
            )
            .fetch_one(&mut conn)
            .await
            .map_err(err)?;
            Ok(Sizes {
                index: index as f64,
                messages: messages as f64,
            })
        }
    }
}
