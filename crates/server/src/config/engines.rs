//! The engines a node runs on (`store`, `bus`, `cache`), parsed once, when the
//! configuration is read, from the strings the file, the environment and the flags give.
//!
//! Each is its embedded default or a URL of the cluster engine. Parsing here is the only
//! check: `app.rs` matches on the variants and hands the URL to the engine's client as it
//! was written, so what passed the check is exactly what is used.

use std::fmt;
use std::str::FromStr;

use super::ConfigError;

/// A URL that parses and has one of its engine's schemes, kept as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineUrl(String);

impl EngineUrl {
    /// `value` if it is `<scheme>://…` for one of `schemes` and a valid URL.
    fn parse(value: &str, schemes: &[&str]) -> Option<EngineUrl> {
        let known = schemes
            .iter()
            .any(|s| value.strip_prefix(s).is_some_and(|r| r.starts_with("://")));
        (known && url::Url::parse(value).is_ok()).then(|| EngineUrl(value.to_owned()))
    }

    /// The URL as configured.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URL with its password (if any) replaced, for printing.
    fn redacted(&self) -> EngineUrl {
        match url::Url::parse(&self.0) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("<redacted>"));
                EngineUrl(url.to_string())
            }
            _ => self.clone(),
        }
    }
}

/// Declares an engine option: an enum of the embedded engine and the URL one, read from
/// and written as the option's string (so the file format is a plain string).
macro_rules! engine {
    (
        $(#[$doc:meta])*
        $name:ident, key $key:literal,
        $embedded:ident = $word:literal,
        $(#[$url_doc:meta])*
        $cluster:ident = [$($scheme:literal),+]
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub enum $name {
            #[doc = concat!("`", $word, "`: the embedded engine.")]
            $embedded,
            $(#[$url_doc])*
            $cluster(EngineUrl),
        }

        impl $name {
            /// The same engine with any password in its URL replaced, for printing.
            pub fn redacted(&self) -> $name {
                match self {
                    $name::$embedded => $name::$embedded,
                    $name::$cluster(url) => $name::$cluster(url.redacted()),
                }
            }

            /// The engine's name, for metrics and logs: the embedded engine's word, or
            /// the URL's first scheme (`postgres`, `nats`, `redis`).
            pub fn kind(&self) -> &'static str {
                const SCHEMES: &[&str] = &[$($scheme),+];
                match self {
                    $name::$embedded => $word,
                    $name::$cluster(_) => SCHEMES[0],
                }
            }

            fn parse(value: &str) -> Result<$name, String> {
                const SCHEMES: &[&str] = &[$($scheme),+];
                if value == $word {
                    return Ok($name::$embedded);
                }
                EngineUrl::parse(value, SCHEMES).map($name::$cluster).ok_or_else(|| {
                    format!(
                        concat!($key, " must be `", $word, "` or a {} URL"),
                        SCHEMES.join("/")
                    )
                })
            }
        }

        impl FromStr for $name {
            type Err = ConfigError;

            fn from_str(value: &str) -> Result<$name, ConfigError> {
                $name::parse(value).map_err(ConfigError::Rule)
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;

            fn try_from(value: String) -> Result<$name, String> {
                $name::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(engine: $name) -> String {
                engine.to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $name::$embedded => f.write_str($word),
                    $name::$cluster(url) => f.write_str(url.as_str()),
                }
            }
        }
    };
}

engine! {
    /// The durable store: SQLite in `<data_dir>/palaver.db`, or PostgreSQL.
    StoreEngine, key "store",
    Sqlite = "sqlite",
    /// A `postgres://` (or `postgresql://`) URL.
    Postgres = ["postgres", "postgresql"]
}

engine! {
    /// The event bus between nodes: in-process (one node), or NATS JetStream.
    BusEngine, key "bus",
    Memory = "memory",
    /// A `nats://` URL.
    Nats = ["nats"]
}

engine! {
    /// Presence, revoked sessions and rate limits: in-process (one node), or Redis.
    CacheEngine, key "cache",
    Memory = "memory",
    /// A `redis://` (or `rediss://`) URL.
    Redis = ["redis", "rediss"]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_parse_once_into_their_kind() {
        assert_eq!(
            "sqlite".parse::<StoreEngine>().ok(),
            Some(StoreEngine::Sqlite)
        );
        let pg = "postgresql://u:secret@db:5432/chat";
        assert_eq!(
            pg.parse::<StoreEngine>().ok(),
            Some(StoreEngine::Postgres(EngineUrl(pg.into())))
        );
        assert_eq!("memory".parse::<BusEngine>().ok(), Some(BusEngine::Memory));
        assert!(matches!(
            "rediss://cache:6380".parse::<CacheEngine>(),
            Ok(CacheEngine::Redis(u)) if u.as_str() == "rediss://cache:6380"
        ));
        // What metrics name them by (`palaver_engine_up{engine}`).
        let kinds = ["sqlite", "postgresql://db/chat"]
            .map(|s| s.parse::<StoreEngine>().map(|e| e.kind()).ok());
        assert_eq!(kinds, [Some("sqlite"), Some("postgres")]);
        assert_eq!(
            "rediss://c".parse::<CacheEngine>().map(|e| e.kind()).ok(),
            Some("redis")
        );
        for (bad, kind) in [
            ("mysql://db/chat", "store"),
            ("postgres", "store"),
            ("postgresx://db", "store"),
            ("postgres://[", "store"),
        ] {
            let err = bad.parse::<StoreEngine>().expect_err(bad).to_string();
            assert!(err.contains(&format!(
                "{kind} must be `sqlite` or a postgres/postgresql URL"
            )));
        }
        assert!("nats:/x".parse::<BusEngine>().is_err());
        assert!("SQLITE".parse::<StoreEngine>().is_err());
    }

    #[test]
    fn engines_print_as_written_and_redact_passwords() {
        let url = "postgres://palaver:hunter2@db.internal:5432/chat";
        let store: StoreEngine = url.parse().expect("url");
        assert_eq!(store.to_string(), url);
        assert_eq!(
            store.redacted().to_string(),
            "postgres://palaver:%3Credacted%3E@db.internal:5432/chat"
        );
        assert_eq!(BusEngine::Memory.redacted().to_string(), "memory");
    }
}
