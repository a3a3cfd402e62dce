//! `palaver-bench`: drives a running Palaver server over its real protocol and reports
//! throughput, latency percentiles and server cost. Bounded in count and time; loopback
//! only. See docs/BENCHMARKS.md for the server settings it expects.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use palaver_bench::fleet::{ClusterOptions, Fleet, FleetOptions};
use palaver_bench::scenarios::{
    bombs, connections, crashloop, fanout, flood, history, ingest, logins, reconnect, search, soak,
};
use palaver_bench::{Report, Target, loopback_sources};

#[derive(Parser)]
#[command(name = "palaver-bench", version, about = "Palaver load generator")]
struct Cli {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080", global = true)]
    server: String,
    /// Where the server serves `/metrics` (its `metrics_listen`); on a cluster, one node's.
    #[arg(long, default_value = "http://127.0.0.1:9090", global = true)]
    metrics: String,
    /// Loopback source addresses to spread sockets over (127.0.0.1, .2, …); each gives
    /// about 28k ephemeral ports.
    #[arg(long, default_value_t = 1, global = true)]
    sources: usize,
    /// Directory for the JSON results and plots.
    #[arg(long, default_value = "bench-results", global = true)]
    out: PathBuf,
    /// Hide the progress bars.
    #[arg(long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Concurrent uploads of decompression bombs: the server's memory and /healthz
    /// meanwhile.
    Bombs {
        #[arg(long, default_value_t = 40)]
        uploads: usize,
        /// Users the uploads are spread over.
        #[arg(long, default_value_t = 1)]
        users: usize,
        #[arg(long, value_enum, value_delimiter = ',', default_value = "gif,png")]
        bombs: Vec<bombs::Bomb>,
    },
    /// Ramp N idle connections, hold them, report memory per connection.
    Connections {
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        #[arg(long, default_value_t = 1_000)]
        users: usize,
        #[arg(long, default_value_t = 256)]
        concurrency: usize,
        #[arg(long, default_value_t = 30)]
        hold_secs: u64,
    },
    /// Group fan-out: rooms × members online, senders at a rate, several load steps.
    Fanout {
        #[arg(long, default_value_t = 20)]
        rooms: usize,
        #[arg(long, default_value_t = 100)]
        members: usize,
        #[arg(long, default_value_t = 20)]
        senders: usize,
        /// Messages per second at the full step.
        #[arg(long, default_value_t = 1_500.0)]
        rate: f64,
        /// Fractions of the rate, one row each.
        #[arg(long, value_delimiter = ',', default_value = "0.25,0.5,0.75,1.0")]
        steps: Vec<f64>,
        #[arg(long, default_value_t = 10)]
        duration_secs: u64,
        #[arg(long, default_value_t = 2)]
        warmup_secs: u64,
    },
    /// Many 1:1 conversations, everyone sending.
    Dm {
        #[arg(long, default_value_t = 1_000)]
        pairs: usize,
        #[arg(long, default_value_t = 5_000.0)]
        rate: f64,
        #[arg(long, value_delimiter = ',', default_value = "0.25,0.5,1.0")]
        steps: Vec<f64>,
        #[arg(long, default_value_t = 10)]
        duration_secs: u64,
        #[arg(long, default_value_t = 2)]
        warmup_secs: u64,
    },
    /// 1:1 chat with and without flooding clients: what a flood costs everyone else.
    /// Needs a server with real send limits (bench/flood.toml).
    Flood {
        #[arg(long, default_value_t = 200)]
        pairs: usize,
        /// Normal messages per second, all normal senders together.
        #[arg(long, default_value_t = 1_000.0)]
        rate: f64,
        #[arg(long, default_value_t = 4)]
        flooders: usize,
        /// Sends per second each flooder attempts.
        #[arg(long, default_value_t = 2_000.0)]
        flood_rate: f64,
        #[arg(long, default_value_t = 10)]
        duration_secs: u64,
        #[arg(long, default_value_t = 2)]
        warmup_secs: u64,
    },
    /// Durable ingest: sockets each keeping a window of sends in flight.
    Ingest {
        #[arg(long, default_value_t = 8)]
        senders: usize,
        #[arg(long, default_value_t = 64)]
        window: usize,
        #[arg(long, default_value_t = 10)]
        duration_secs: u64,
    },
    /// Page through a long room's history with many readers.
    History {
        #[arg(long, default_value_t = 20_000)]
        messages: usize,
        #[arg(long, default_value_t = 16)]
        readers: usize,
        #[arg(long, default_value_t = 50)]
        page: u32,
        #[arg(long, default_value_t = 10)]
        duration_secs: u64,
    },
    /// Message search over a large store: fills it (mostly English, some Chinese, Japanese
    /// and Korean), then times queries and reads the index's size from the database.
    Search {
        #[arg(long, default_value_t = 1_000_000)]
        messages: usize,
        #[arg(long, default_value_t = 200)]
        rooms: usize,
        #[arg(long, default_value_t = 4)]
        senders: usize,
        /// Sends in flight per socket while filling.
        #[arg(long, default_value_t = 256)]
        window: usize,
        /// Timed searches per query.
        #[arg(long, default_value_t = 200)]
        searches: usize,
        /// The queries (comma-separated); default: an English word, two English words,
        /// CJK runs of three, two and one characters.
        #[arg(long, value_delimiter = ',')]
        queries: Option<Vec<String>>,
        /// The server's SQLite file, to measure the index (`<data_dir>/palaver.db`).
        #[arg(long)]
        sqlite_db: Option<PathBuf>,
        /// The server's PostgreSQL, to measure the index; with `--postgres-schema` for a
        /// server with a `namespace`.
        #[arg(long)]
        postgres_url: Option<String>,
        #[arg(long)]
        postgres_schema: Option<String>,
    },
    /// N clients drop at once and resume; checks nothing is missing or duplicated.
    Reconnect {
        #[arg(long, default_value_t = 10_000)]
        clients: usize,
        #[arg(long, default_value_t = 50)]
        room_size: usize,
        #[arg(long, default_value_t = 20)]
        missed: usize,
        #[arg(long, default_value_t = 1_000)]
        concurrency: usize,
    },
    /// 1:1 chat held steady for a long time while visitors come and go; one row per
    /// interval with latency and the server's memory, open files and CPU.
    Soak {
        #[arg(long, default_value_t = 1_000)]
        pairs: usize,
        /// Messages per second, all pairs together.
        #[arg(long, default_value_t = 3_000.0)]
        rate: f64,
        #[arg(long, default_value_t = 1_800)]
        duration_secs: u64,
        #[arg(long, default_value_t = 30)]
        interval_secs: u64,
        #[arg(long, default_value_t = 100)]
        visitors: usize,
        /// Visits per second, all visitors together.
        #[arg(long, default_value_t = 10.0)]
        visit_rate: f64,
        /// The server's data directory, to report its size over time.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Hostile logins: unique 60 KB usernames from one address, then logins at once from
    /// many addresses; the server's memory before, at the peak and after, and the slowest
    /// `/healthz`. Run against default settings (real password hashing and limits).
    Logins {
        #[arg(long, default_value_t = 4_000)]
        long_names: usize,
        #[arg(long, default_value_t = 60_000)]
        name_bytes: usize,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        #[arg(long, default_value_t = 40)]
        concurrent_logins: usize,
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Starts a deployment of its own, loads it while killing (-9) and restarting nodes
    /// (on a cluster also NATS and Redis), then checks that no acknowledged message was
    /// lost or duplicated and every client saw what the store holds. Ignores --server.
    Crashloop {
        /// The server binary.
        #[arg(long, default_value = "target/release/palaver")]
        server_bin: PathBuf,
        /// Nodes behind nginx on PostgreSQL + NATS + Redis; 0 for one node on its
        /// embedded engines (SQLite).
        #[arg(long, default_value_t = 0)]
        cluster_nodes: usize,
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
        database_url: String,
        #[arg(long, default_value = "/usr/sbin/nats-server")]
        nats_bin: PathBuf,
        #[arg(long, default_value = "redis-server")]
        redis_bin: PathBuf,
        #[arg(long, default_value = "/usr/sbin/nginx")]
        nginx_bin: PathBuf,
        /// 1:1 rooms (two sending clients each).
        #[arg(long, default_value_t = 100)]
        rooms: usize,
        /// Messages per second over all clients.
        #[arg(long, default_value_t = 2_000.0)]
        rate: f64,
        #[arg(long, default_value_t = 600)]
        duration_secs: u64,
        #[arg(long, default_value_t = 30)]
        kill_every_secs: u64,
        #[arg(long, default_value_t = 2)]
        down_secs: u64,
        /// Every n-th send of a client resends an acknowledged one (0: never).
        #[arg(long, default_value_t = 10)]
        retry_every: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let target = Target {
        base: cli.server.trim_end_matches('/').to_owned(),
        metrics: cli.metrics.trim_end_matches('/').to_owned(),
        sources: loopback_sources(cli.sources),
        progress: !cli.quiet,
    };
    let secs = Duration::from_secs;
    let report: Report = match cli.scenario {
        Scenario::Bombs {
            uploads,
            users,
            bombs,
        } => {
            let opts = bombs::BombsOptions {
                uploads,
                users,
                bombs,
            };
            bombs::run(&target, &opts).await?
        }
        Scenario::Connections {
            count,
            users,
            concurrency,
            hold_secs,
        } => {
            connections::run(
                &target,
                &connections::ConnectionsOptions {
                    connections: count,
                    users,
                    concurrency,
                    hold: secs(hold_secs),
                },
            )
            .await?
        }
        Scenario::Fanout {
            rooms,
            members,
            senders,
            rate,
            steps,
            duration_secs,
            warmup_secs,
        } => {
            let opts = fanout::FanoutOptions {
                rooms,
                members,
                senders,
                rate,
                steps,
                duration: secs(duration_secs),
                warmup: secs(warmup_secs),
                direct: false,
            };
            fanout::run(&target, &opts).await?
        }
        Scenario::Dm {
            pairs,
            rate,
            steps,
            duration_secs,
            warmup_secs,
        } => {
            let opts = fanout::FanoutOptions {
                rooms: pairs,
                members: 2,
                senders: pairs * 2,
                rate,
                steps,
                duration: secs(duration_secs),
                warmup: secs(warmup_secs),
                direct: true,
            };
            fanout::run(&target, &opts).await?
        }
        Scenario::Flood {
            pairs,
            rate,
            flooders,
            flood_rate,
            duration_secs,
            warmup_secs,
        } => {
            let opts = flood::FloodOptions {
                pairs,
                rate,
                flooders,
                flood_rate,
                duration: secs(duration_secs),
                warmup: secs(warmup_secs),
            };
            flood::run(&target, &opts).await?
        }
        Scenario::Ingest {
            senders,
            window,
            duration_secs,
        } => {
            ingest::run(
                &target,
                &ingest::IngestOptions {
                    senders,
                    window,
                    duration: secs(duration_secs),
                },
            )
            .await?
        }
        Scenario::History {
            messages,
            readers,
            page,
            duration_secs,
        } => {
            history::run(
                &target,
                &history::HistoryOptions {
                    messages,
                    readers,
                    page,
                    duration: secs(duration_secs),
                },
            )
            .await?
        }
        Scenario::Search {
            messages,
            rooms,
            senders,
            window,
            searches,
            queries,
            sqlite_db,
            postgres_url,
            postgres_schema,
        } => {
            let database = match (sqlite_db, postgres_url) {
                (Some(path), _) => Some(search::size::Database::Sqlite(path)),
                (None, Some(url)) => Some(search::size::Database::Postgres {
                    url,
                    schema: postgres_schema,
                }),
                (None, None) => None,
            };
            let queries = queries.unwrap_or_else(|| {
                search::DEFAULT_QUERIES
                    .iter()
                    .map(|q| q.to_string())
                    .collect()
            });
            let opts = search::SearchOptions {
                messages,
                rooms,
                senders,
                window,
                searches,
                queries,
                database,
            };
            search::run(&target, &opts).await?
        }
        Scenario::Reconnect {
            clients,
            room_size,
            missed,
            concurrency,
        } => {
            reconnect::run(
                &target,
                &reconnect::ReconnectOptions {
                    clients,
                    room_size,
                    missed,
                    concurrency,
                },
            )
            .await?
        }
        Scenario::Soak {
            pairs,
            rate,
            duration_secs,
            interval_secs,
            visitors,
            visit_rate,
            data_dir,
        } => {
            let opts = soak::SoakOptions {
                pairs,
                rate,
                duration: secs(duration_secs),
                interval: secs(interval_secs),
                visitors,
                visit_rate,
                data_dir,
                checkpoint: Some(cli.out.clone()),
            };
            soak::run(&target, &opts).await?
        }
        Scenario::Logins {
            long_names,
            name_bytes,
            concurrency,
            concurrent_logins,
            rounds,
        } => {
            let opts = logins::LoginsOptions {
                long_names,
                name_bytes,
                concurrency,
                concurrent_logins,
                rounds,
            };
            logins::run(&target, &opts).await?
        }
        Scenario::Crashloop {
            server_bin,
            cluster_nodes,
            database_url,
            nats_bin,
            redis_bin,
            nginx_bin,
            rooms,
            rate,
            duration_secs,
            kill_every_secs,
            down_secs,
            retry_every,
        } => {
            let dir =
                std::env::temp_dir().join(format!("palaver-crashloop-{}", std::process::id()));
            let cluster = (cluster_nodes > 0).then_some(ClusterOptions {
                nodes: cluster_nodes,
                database_url,
                nats_bin,
                redis_bin,
                nginx_bin,
            });
            let mut fleet = Fleet::start(&FleetOptions {
                server_bin,
                dir: dir.clone(),
                cluster,
                env: Vec::new(),
            })
            .await?;
            let options = crashloop::CrashloopOptions {
                rooms,
                rate,
                duration: secs(duration_secs),
                kill_every: secs(kill_every_secs),
                down_for: secs(down_secs),
                retry_every,
            };
            let result = crashloop::run(&mut fleet, &options, target.progress).await;
            fleet.stop().await;
            let (report, outcome) = result?;
            for fault in &outcome.faults {
                println!("fault: {fault}");
            }
            if outcome.violations() == 0 {
                let _ = std::fs::remove_dir_all(&dir);
            } else {
                println!("logs kept in {}", dir.display());
            }
            report
        }
    };
    println!("{}", report.table());
    for path in report.write(&cli.out)? {
        println!("wrote {}", path.display());
    }
    if !report.problems.is_empty() {
        anyhow::bail!("the run saw problems: {}", report.problems.join("; "));
    }
    Ok(())
}
