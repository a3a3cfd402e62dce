//! A deployment the load generator starts, breaks and restarts itself: one node on its
//! embedded engines, or several nodes on PostgreSQL + NATS + Redis behind nginx, with
//! NATS and Redis processes of its own (so restarting them touches nobody else).
//!
//! Used by the crash loop (scenarios/crashloop.rs): `kill -9` is `SIGKILL` here, with no
//! chance for the process to flush or say goodbye.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::{BenchError, Result};

/// The nginx configuration of deploy/, the one a deployment uses.
const NGINX_TEMPLATE: &str = include_str!("../../../deploy/nginx.conf.template");

/// What to start.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// The `palaver` server binary.
    pub server_bin: PathBuf,
    /// Where every process keeps its state and log.
    pub dir: PathBuf,
    /// `None`: one node on SQLite, in-process bus and cache. `Some`: a cluster.
    pub cluster: Option<ClusterOptions>,
    /// More server configuration for every node (`PALAVER_*` variables).
    pub env: Vec<(String, String)>,
}

/// A cluster: nodes behind nginx, on a PostgreSQL of the caller's and NATS and Redis of
/// the fleet's own.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub nodes: usize,
    /// e.g. `postgres://postgres@127.0.0.1:5432/test`; the fleet works in a schema of its
    /// own and drops it when stopped.
    pub database_url: String,
    pub nats_bin: PathBuf,
    pub redis_bin: PathBuf,
    pub nginx_bin: PathBuf,
}

/// One process the fleet can kill and start again with the same arguments.
struct Managed {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    port: u16,
    /// A node's metrics listener; none for the other processes.
    metrics_port: Option<u16>,
    child: Option<Child>,
}

impl Managed {
    async fn start(&mut self, dir: &Path) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("{}.log", self.name)))?;
        let child = Command::new(&self.program)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| BenchError::Setup(format!("start {}: {e}", self.name)))?;
        self.child = Some(child);
        wait_for_port(self.port, &self.name).await
    }

    /// SIGKILL, and wait until it is gone.
    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
}

/// A free loopback port (free when asked; the process binds it right after).
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn wait_for_port(port: u16, what: &str) -> Result<()> {
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(BenchError::Setup(format!(
        "{what} did not listen on {port} within 15 s"
    )))
}

/// The running deployment.
pub struct Fleet {
    dir: PathBuf,
    nodes: Vec<Managed>,
    nats: Option<Managed>,
    redis: Option<Managed>,
    nginx: Option<Managed>,
    /// The cluster's schema and the database it is in, dropped on `stop`.
    schema: Option<(String, String)>,
    base: String,
}

impl Fleet {
    /// Starts everything and waits until clients can connect.
    pub async fn start(options: &FleetOptions) -> Result<Fleet> {
        let dir = options.dir.clone();
        std::fs::create_dir_all(&dir)?;
        let secret = format!("crash-loop-secret-{}", uuid::Uuid::now_v7().simple());
        // Generous limits: the load is the point, not the limiter.
        let mut env = vec![
            ("PALAVER_JWT_SECRET".to_owned(), secret),
            (
                "PALAVER_INSECURE_FAST_PASSWORD_HASHING".into(),
                "true".into(),
            ),
            ("PALAVER_TRUSTED_PROXIES".into(), r#"["127.0.0.1"]"#.into()),
            ("PALAVER_LOG".into(), "warn".into()),
        ];
        for (k, v) in [
            ("SEND_PER_MINUTE", "6000000"),
            ("SEND_BURST", "100000"),
            ("REGISTER_PER_MINUTE", "600000"),
            ("REGISTER_BURST", "100000"),
            ("LOGIN_PER_MINUTE", "600000"),
            ("LOGIN_BURST", "100000"),
        ] {
            env.push((format!("PALAVER_RATE_LIMITS__{k}"), v.into()));
        }
        env.extend(options.env.iter().cloned());
        let mut fleet = Fleet {
            dir: dir.clone(),
            nodes: Vec::new(),
            nats: None,
            redis: None,
            nginx: None,
            schema: None,
            base: String::new(),
        };
        let node = |i: usize, mut env: Vec<(String, String)>| -> Result<Managed> {
            let port = free_port()?;
            // Nodes share a host, so each needs a metrics port of its own.
            let metrics_port = free_port()?;
            env.push((
                "PALAVER_METRICS_LISTEN".into(),
                format!("127.0.0.1:{metrics_port}"),
            ));
            let data = dir.join(format!("node{i}"));
            std::fs::create_dir_all(&data)?;
            Ok(Managed {
                name: format!("node{i}"),
                program: options.server_bin.clone(),
                args: vec![
                    "serve".into(),
                    "--listen".into(),
                    format!("127.0.0.1:{port}"),
                    "--data-dir".into(),
                    data.display().to_string(),
                ],
                env,
                port,
                metrics_port: Some(metrics_port),
                child: None,
            })
        };
        let Some(cluster) = &options.cluster else {
            let mut single = node(1, env)?;
            single.start(&dir).await?;
            fleet.base = format!("http://127.0.0.1:{}", single.port);
            fleet.nodes.push(single);
            return Ok(fleet);
        };

        let nats_port = free_port()?;
        let nats_dir = dir.join("nats");
        let mut nats = Managed {
            name: "nats".into(),
            program: cluster.nats_bin.clone(),
            args: vec![
                "-a".into(),
                "127.0.0.1".into(),
                "-p".into(),
                nats_port.to_string(),
                "-js".into(),
                "-sd".into(),
                nats_dir.display().to_string(),
            ],
            env: Vec::new(),
            port: nats_port,
            metrics_port: None,
            child: None,
        };
        nats.start(&dir).await?;
        let redis_port = free_port()?;
        let mut redis = Managed {
            name: "redis".into(),
            program: cluster.redis_bin.clone(),
            // As deployed here: nothing kept on disk, so a restart forgets everything.
            args: vec![
                "--bind".into(),
                "127.0.0.1".into(),
                "--port".into(),
                redis_port.to_string(),
                "--save".into(),
                String::new(),
                "--appendonly".into(),
                "no".into(),
                "--dir".into(),
                dir.display().to_string(),
            ],
            env: Vec::new(),
            port: redis_port,
            metrics_port: None,
            child: None,
        };
        redis.start(&dir).await?;
        fleet.nats = Some(nats);
        fleet.redis = Some(redis);

        let namespace = format!("crash_{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
        fleet.schema = Some((cluster.database_url.clone(), namespace.clone()));
        env.extend([
            ("PALAVER_STORE".to_owned(), cluster.database_url.clone()),
            (
                "PALAVER_BUS".into(),
                format!("nats://127.0.0.1:{nats_port}"),
            ),
            (
                "PALAVER_CACHE".into(),
                format!("redis://127.0.0.1:{redis_port}"),
            ),
            ("PALAVER_NAMESPACE".into(), namespace),
            (
                "PALAVER_BUS_STREAM_MAX_BYTES".into(),
                (64u64 << 20).to_string(),
            ),
        ]);
        for i in 1..=cluster.nodes.max(1) {
            let mut n = node(i, env.clone())?;
            n.start(&dir).await?;
            fleet.nodes.push(n);
        }

        let nginx_port = free_port()?;
        let upstreams: String = fleet
            .nodes
            .iter()
            .map(|n| {
                format!(
                    "        server 127.0.0.1:{} max_fails=1 fail_timeout=2s;\n",
                    n.port
                )
            })
            .collect();
        let prefix = dir.join("nginx");
        for sub in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            std::fs::create_dir_all(prefix.join(sub))?;
        }
        let conf = NGINX_TEMPLATE
            .replace("@UPSTREAMS@\n", &upstreams)
            .replace("@LISTEN@", &format!("127.0.0.1:{nginx_port}"))
            .replace("@PREFIX@", &prefix.display().to_string());
        let conf_path = prefix.join("nginx.conf");
        std::fs::write(&conf_path, conf)?;
        let mut nginx = Managed {
            name: "nginx".into(),
            program: cluster.nginx_bin.clone(),
            args: vec![
                "-c".into(),
                conf_path.display().to_string(),
                "-p".into(),
                prefix.display().to_string(),
                "-g".into(),
                "daemon off;".into(),
            ],
            env: Vec::new(),
            port: nginx_port,
            metrics_port: None,
            child: None,
        };
        nginx.start(&dir).await?;
        fleet.base = format!("http://127.0.0.1:{nginx_port}");
        fleet.nginx = Some(nginx);
        Ok(fleet)
    }

    /// Where clients connect: nginx on a cluster, the node otherwise.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Where node `i` serves `/metrics` (nginx does not pass it on).
    pub fn node_metrics(&self, i: usize) -> String {
        format!(
            "http://127.0.0.1:{}",
            self.nodes[i].metrics_port.unwrap_or(self.nodes[i].port)
        )
    }

    /// Node `i`'s own address, past nginx.
    pub fn node_base(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.nodes[i].port)
    }

    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_cluster(&self) -> bool {
        self.nginx.is_some()
    }

    /// `kill -9` node `i` (0-based).
    pub async fn kill_node(&mut self, i: usize) {
        self.nodes[i].kill().await;
    }

    /// Starts node `i` again over its data directory.
    pub async fn start_node(&mut self, i: usize) -> Result<()> {
        let dir = self.dir.clone();
        self.nodes[i].start(&dir).await
    }

    /// `kill -9` NATS and start it again over its stored stream.
    pub async fn restart_nats(&mut self, down: Duration) -> Result<()> {
        let dir = self.dir.clone();
        if let Some(nats) = &mut self.nats {
            nats.kill().await;
            tokio::time::sleep(down).await;
            nats.start(&dir).await?;
        }
        Ok(())
    }

    /// `kill -9` Redis and start it again, empty.
    pub async fn restart_redis(&mut self, down: Duration) -> Result<()> {
        let dir = self.dir.clone();
        if let Some(redis) = &mut self.redis {
            redis.kill().await;
            tokio::time::sleep(down).await;
            redis.start(&dir).await?;
        }
        Ok(())
    }

    /// Stops every process and drops the cluster's schema.
    pub async fn stop(mut self) {
        if let Some(nginx) = &mut self.nginx {
            nginx.kill().await;
        }
        for node in &mut self.nodes {
            node.kill().await;
        }
        for service in [&mut self.nats, &mut self.redis].into_iter().flatten() {
            service.kill().await;
        }
        if let Some((url, schema)) = self.schema.take() {
            let dropped = Command::new("psql")
                .args([
                    url.as_str(),
                    "-qc",
                    &format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"),
                ])
                // Not the list of everything the cascade took with it.
                .env("PGOPTIONS", "--client-min-messages=warning")
                .stdout(Stdio::null())
                .status()
                .await;
            if !dropped.is_ok_and(|s| s.success()) {
                eprintln!("could not drop schema {schema}; drop it by hand");
            }
        }
    }
}
