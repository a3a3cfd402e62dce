//! The monitoring shipped in deploy/: Prometheus alert rules and a Grafana dashboard.
//!
//! - The rules pass `promtool check rules`, their unit tests (`promtool test rules`) and
//!   the example configuration `promtool check config`; every alert has a unit test and
//!   a runbook entry in docs/OPERATIONS.md.
//! - A real Prometheus (Debian's `prometheus`) scrapes a real node and loads the rules:
//!   the target is up, a Palaver metric is queryable, every rule evaluates without error,
//!   every metric a rule or a dashboard panel names is one the node exports, and every
//!   panel's query runs. With the rules' `for:` shortened, stopping the node fires
//!   `PalaverNodeDown`.
//!
//! Without Prometheus the tests skip loudly (and fail under `CI=true`; .ci/run installs
//! it). `PROMETHEUS_BIN` and `PROMTOOL_BIN` name other binaries than /usr/bin's.

mod support;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use palaver_bench::fleet::{Fleet, FleetOptions};
use serde_json::Value;

/// The repository's deploy/ directory.
fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn rules_path() -> PathBuf {
    deploy().join("prometheus/palaver.rules.yml")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// `$env` if set, else `/usr/bin/<name>` if it exists; `None` (skipped) otherwise.
fn tool(env: &str, name: &str, what: &str) -> Option<PathBuf> {
    let path = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new("/usr/bin").join(name));
    if path.is_file() {
        return Some(path);
    }
    support::skip(
        what,
        &format!(
            "{} is missing (Debian package `prometheus`, or set {env})",
            path.display()
        ),
    );
    None
}

/// The alert names in the rules file (`- alert: Name` lines), each once.
fn alert_names(rules: &str) -> BTreeSet<String> {
    rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:"))
        .map(|n| n.trim().to_owned())
        .collect()
}

/// Runs `promtool args…` in deploy/prometheus and fails the test, with its output, unless
/// it succeeds.
fn promtool(promtool: &Path, args: &[&str]) {
    let out = Command::new(promtool)
        .args(args)
        .current_dir(deploy().join("prometheus"))
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool {}: {}\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_rules_pass_promtool_and_their_unit_tests() {
    let Some(bin) = tool(
        "PROMTOOL_BIN",
        "promtool",
        "the alert rules' promtool checks",
    ) else {
        return;
    };
    promtool(&bin, &["check", "rules", "palaver.rules.yml"]);
    promtool(&bin, &["test", "rules", "tests.yml"]);
    // The example configuration, which also loads the rules through its rule_files.
    promtool(&bin, &["check", "config", "prometheus.yml"]);
}

#[test]
fn every_alert_has_a_unit_test_and_a_runbook_entry() {
    let names = alert_names(&read(&rules_path()));
    assert!(names.len() >= 20, "alerts found: {names:?}");
    let tests = read(&deploy().join("prometheus/tests.yml"));
    let runbook = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/OPERATIONS.md"));
    for name in &names {
        assert!(
            tests.contains(&format!(
                "alertname: {name}\n        exp_alerts:\n          - "
            )),
            "{name} has no unit test in deploy/prometheus/tests.yml that expects it to fire"
        );
        assert!(
            runbook.contains(&format!("#### {name}\n")),
            "{name} has no entry (#### {name}) in docs/OPERATIONS.md"
        );
        // The annotation's anchor is the heading's, as GitHub makes it.
        assert!(
            read(&rules_path()).contains(&format!(
                "runbook: \"docs/OPERATIONS.md#{}\"",
                name.to_lowercase()
            )),
            "{name}'s runbook annotation does not point at its entry"
        );
    }
}

/// Every `expr` of the dashboard's panels, in order.
fn dashboard_exprs() -> Vec<String> {
    let dashboard: Value =
        serde_json::from_str(&read(&deploy().join("grafana/palaver.json"))).expect("JSON");
    let mut exprs = Vec::new();
    let mut panels: Vec<&Value> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .collect();
    while let Some(panel) = panels.pop() {
        if let Some(inner) = panel["panels"].as_array() {
            panels.extend(inner);
        }
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(target["expr"].as_str().expect("expr").to_owned());
        }
    }
    assert!(exprs.len() >= 20, "panel queries found: {}", exprs.len());
    exprs
}

#[test]
fn the_dashboard_is_grafana_json_with_a_query_in_every_panel_and_no_overlap() {
    let dashboard: Value =
        serde_json::from_str(&read(&deploy().join("grafana/palaver.json"))).expect("JSON");
    assert_eq!(dashboard["uid"], "palaver");
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    // Where each panel sits: x, y, width, height on Grafana's 24-column grid.
    let mut placed: Vec<(&str, [u64; 4])> = Vec::new();
    for panel in panels {
        assert!(ids.insert(panel["id"].as_u64().expect("id")), "ids repeat");
        let title = panel["title"].as_str().expect("title");
        let g = &panel["gridPos"];
        let rect = ["x", "y", "w", "h"].map(|k| g[k].as_u64().expect("gridPos"));
        assert!(rect[0] + rect[2] <= 24, "{title} is wider than the grid");
        for (other, o) in &placed {
            let apart = rect[0] + rect[2] <= o[0]
                || o[0] + o[2] <= rect[0]
                || rect[1] + rect[3] <= o[1]
                || o[1] + o[3] <= rect[1];
            assert!(apart, "{title} overlaps {other}");
        }
        placed.push((title, rect));
        if panel["type"] == "row" {
            continue;
        }
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{} has no query", panel["title"]);
        for target in targets {
            assert_eq!(target["datasource"]["uid"], "${datasource}");
        }
    }
    dashboard_exprs();
}

/// The metric names a PromQL expression reads: identifiers that start like ours or
/// Prometheus's process metrics (label names and values, functions and keywords never do).
fn metric_names(expr: &str) -> BTreeSet<String> {
    // Label values are quoted: drop quoted text first.
    let mut unquoted = String::new();
    let mut quoted = false;
    for c in expr.chars() {
        match c {
            '"' => quoted = !quoted,
            c if !quoted => unquoted.push(c),
            _ => {}
        }
    }
    unquoted
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.starts_with("palaver_") || w.starts_with("process_"))
        .map(str::to_owned)
        .collect()
}

/// A free loopback port (free when asked; Prometheus binds it right after).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A Prometheus of the test's own, killed when dropped.
struct Prometheus {
    child: std::process::Child,
    base: String,
    http: reqwest::Client,
    /// Holds its configuration, its data and its log.
    dir: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start(bin: &Path, dir: &Path, config: &str) -> Prometheus {
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write config");
        let port = free_port();
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("log");
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        Prometheus {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            dir: dir.to_path_buf(),
        }
    }

    /// `GET /api/v1/<path>`'s `data`, or `None` when it did not answer with success.
    async fn api(&self, path: &str, query: &[(&str, &str)]) -> Option<Value> {
        let response = self
            .http
            .get(format!("{}/api/v1/{path}", self.base))
            .query(query)
            .send()
            .await
            .ok()?;
        let body: Value = response.json().await.ok()?;
        (body["status"] == "success").then(|| body["data"].clone())
    }

    /// Asks `check` until it says yes, for at most `secs` seconds, then fails with what it
    /// last saw and Prometheus's log. A bound on waiting, not a timed assertion: every
    /// condition here is met within a few scrapes.
    async fn until<T>(
        &self,
        what: &str,
        secs: u64,
        mut check: impl AsyncFnMut(&Prometheus) -> Result<T, String>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            match check(self).await {
                Ok(value) => return value,
                Err(last) if tokio::time::Instant::now() > deadline => {
                    let log = std::fs::read_to_string(self.dir.join("prometheus.log"))
                        .unwrap_or_default();
                    panic!("{what}: not within {secs} s; last: {last}\nprometheus log:\n{log}");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }
}

/// The rules with every `for:` cut to a second, so a test sees alerts fire at once.
fn rules_with_short_for(rules: &str) -> String {
    rules
        .lines()
        .map(|line| match line.trim_start().strip_prefix("for:") {
            Some(_) => format!("{}for: 1s", &line[..line.len() - line.trim_start().len()]),
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The alerts of `name` in `state` ("pending" or "firing") Prometheus has now.
async fn alerts(prometheus: &Prometheus, name: &str, state: &str) -> Result<Vec<Value>, String> {
    let data = prometheus
        .api("alerts", &[])
        .await
        .ok_or("no answer from /api/v1/alerts")?;
    let all = data["alerts"].as_array().cloned().unwrap_or_default();
    let matching: Vec<Value> = all
        .iter()
        .filter(|a| a["labels"]["alertname"] == name && a["state"] == state)
        .cloned()
        .collect();
    if matching.is_empty() {
        Err(format!("alerts now: {all:?}"))
    } else {
        Ok(matching)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_a_node_loads_the_rules_and_sees_it_go_down() {
    let Some(bin) = tool(
        "PROMETHEUS_BIN",
        "prometheus",
        "a real Prometheus scraping a node",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut fleet = Fleet::start(&FleetOptions {
        server_bin: PathBuf::from(env!("CARGO_BIN_EXE_palaver")),
        dir: dir.path().join("fleet"),
        cluster: None,
        env: Vec::new(),
    })
    .await
    .expect("start a node");

    // Traffic, so the request and message metrics exist: an account, a room, a message
    // over the socket and one over HTTP, a wrong password.
    let client = palaver_client::Client::new(fleet.base()).expect("client");
    let alice = client
        .register("alice", "correct horse battery", None)
        .await
        .expect("register");
    let api = client.with_token(&alice.access_token);
    let (_, room) = api.create_room(Some("ops"), true, &[]).await.expect("room");
    let mut socket = api.connect().await.expect("socket");
    socket
        .send_message(room.id, "m1", "hello over the socket")
        .await
        .expect("socket send");
    api.send(room.id, "m2", "hello over HTTP")
        .await
        .expect("HTTP send");
    assert!(client.login("alice", "wrong password").await.is_err());

    let target = fleet
        .node_metrics(0)
        .trim_start_matches("http://")
        .to_owned();
    let rules = read(&rules_path());
    std::fs::write(dir.path().join("rules.yml"), rules_with_short_for(&rules)).expect("rules");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n  - {rules}\n\
         scrape_configs:\n  - job_name: palaver\n    scrape_timeout: 1s\n    \
         static_configs:\n      - targets: [\"{target}\"]\n",
        rules = dir.path().join("rules.yml").display(),
    );
    let prometheus = Prometheus::start(&bin, dir.path(), &config);

    // The node is a target, up, and its metrics are queryable.
    prometheus
        .until("the node's target is up", 60, async |p| {
            let data = p.api("targets", &[]).await.ok_or("no answer")?;
            let up = data["activeTargets"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|t| t["labels"]["job"] == "palaver" && t["health"] == "up");
            up.then_some(()).ok_or_else(|| format!("targets: {data}"))
        })
        .await;
    prometheus
        .until(
            "palaver_messages_total counts the messages",
            30,
            async |p| {
                let data = p
                    .api(
                        "query",
                        &[("query", "palaver_messages_total{job=\"palaver\"}")],
                    )
                    .await
                    .ok_or("no answer")?;
                let value = data["result"][0]["value"][1]
                    .as_str()
                    .and_then(|v| v.parse::<f64>().ok());
                // The two sent, and the room's own timeline events.
                (value >= Some(2.0))
                    .then_some(())
                    .ok_or_else(|| format!("{data}"))
            },
        )
        .await;

    // Every rule of the file is loaded and has evaluated without an error.
    let expected = alert_names(&rules);
    let loaded = prometheus
        .until("every rule evaluated", 30, async |p| {
            let data = p.api("rules", &[]).await.ok_or("no answer")?;
            let rules: Vec<Value> = data["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
                .collect();
            let pending = rules
                .iter()
                .filter(|r| {
                    r["lastEvaluation"]
                        .as_str()
                        .is_none_or(|t| t.starts_with("0001"))
                })
                .count();
            if rules.is_empty() || pending > 0 {
                return Err(format!(
                    "{} rules, {pending} not yet evaluated",
                    rules.len()
                ));
            }
            Ok(rules)
        })
        .await;
    let broken: Vec<String> = loaded
        .iter()
        .filter(|r| r["health"] != "ok")
        .map(|r| format!("{}: {} {}", r["name"], r["health"], r["lastError"]))
        .collect();
    assert!(broken.is_empty(), "rules with errors: {broken:#?}");
    let names: BTreeSet<String> = loaded
        .iter()
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(names, expected, "the alerts Prometheus loaded");
    assert_eq!(
        loaded.len(),
        rules.matches("- alert:").count(),
        "every rule of the file is loaded"
    );

    // Every metric a rule or a panel reads is one the node exports.
    let exported: BTreeSet<String> = prometheus
        .api("label/__name__/values", &[])
        .await
        .expect("metric names")
        .as_array()
        .expect("names")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    let panels = dashboard_exprs();
    let queries = loaded
        .iter()
        .filter_map(|r| r["query"].as_str().map(str::to_owned))
        .chain(panels.iter().cloned());
    let mut unknown = BTreeSet::new();
    for query in queries {
        unknown.extend(
            metric_names(&query)
                .into_iter()
                .filter(|m| !exported.contains(m)),
        );
    }
    assert!(
        unknown.is_empty(),
        "named by a rule or panel but not exported by the node: {unknown:?}"
    );

    // Every panel's query runs, with Grafana's variables as Grafana would fill them.
    for expr in &panels {
        let expr = expr
            .replace("$__rate_interval", "1m")
            .replace("$instance", ".*");
        assert!(
            prometheus.api("query", &[("query", &expr)]).await.is_some(),
            "the panel query does not run: {expr}"
        );
    }

    // Healthy: neither the node nor its engines are reported down (once the rules have
    // evaluated on a scrape: before the first one, no node is up yet).
    prometheus
        .until("no down alert while the node runs", 30, async |p| {
            for name in [
                "PalaverNodeDown",
                "PalaverNoNodeUp",
                "PalaverDatabaseUnreachable",
                "PalaverBusUnreachable",
                "PalaverCacheUnreachable",
            ] {
                for state in ["pending", "firing"] {
                    if alerts(p, name, state).await.is_ok() {
                        return Err(format!("{name} is {state}"));
                    }
                }
            }
            Ok(())
        })
        .await;

    // The node stops: PalaverNodeDown fires for it, and nothing is up any more.
    socket.close().await.ok();
    fleet.kill_node(0).await;
    let down = prometheus
        .until("PalaverNodeDown fires", 60, async |p| {
            alerts(p, "PalaverNodeDown", "firing").await
        })
        .await;
    assert_eq!(down[0]["labels"]["instance"], target.as_str());
    assert_eq!(down[0]["labels"]["severity"], "critical");
    prometheus
        .until("PalaverNoNodeUp fires", 60, async |p| {
            alerts(p, "PalaverNoNodeUp", "firing").await
        })
        .await;
    drop(prometheus);
    fleet.stop().await;
}
