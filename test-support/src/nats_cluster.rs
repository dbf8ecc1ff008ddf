//! A cluster of `nats-server` processes with JetStream, for tests of the JETSTREAM store.
//!
//! Every node runs under a small `sh` supervisor whose standard input is a pipe from this
//! process. When the pipe closes (the [`JsCluster`] is dropped, or the test process exits or
//! dies in any way, since the kernel closes the pipe then) the supervisor kills its node with
//! SIGKILL and removes the node's directory. So a cluster kept in a `static`, which is never
//! dropped, still leaves no `nats-server` behind once the test binary has exited.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::{free_port, nats_server_binary};

/// How long a cluster (or a restarted node) may take to have JetStream ready.
const READY_LIMIT: Duration = Duration::from_secs(60);

/// The supervisor of one node: `$1` is the node's directory, the rest the server's command.
/// It prints the server's PID, then waits for a line on its standard input: `kill` kills the
/// server and keeps the directory (for a restart); end of input kills it and removes the
/// directory. Signals that would stop the supervisor first (Ctrl-C of the terminal's process
/// group) are ignored, so it always gets to clean up.
const SUPERVISOR: &str = r#"trap '' INT HUP TERM QUIT
dir=$1; shift
"$@" </dev/null >>"$dir/server.log" 2>&1 &
pid=$!
echo "$pid"
cmd=
read -r cmd
kill -9 "$pid" 2>/dev/null
wait "$pid"
if [ "$cmd" != kill ]; then rm -rf "$dir"; fi
"#;

/// A running node: its supervisor and the server's PID.
struct NodeProcess {
    supervisor: Child,
    stdin: ChildStdin,
    pid: u32,
}

impl NodeProcess {
    /// Whether the server process still runs (it is the supervisor's child, so a dead one
    /// stays a zombie until the supervisor reaps it: its PID cannot be reused meanwhile).
    fn alive(&self) -> bool {
        match std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) {
            // The state follows the command name in parentheses: "1234 (nats-server) S ...".
            Ok(stat) => stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next())
                .is_some_and(|state| state != 'Z' && state != 'X'),
            Err(_) => false,
        }
    }

    /// Kills the server (SIGKILL) and waits until it is gone; `keep_dir` keeps its store.
    fn stop(mut self, keep_dir: bool) {
        if keep_dir {
            let _ = self.stdin.write_all(b"kill\n");
            let _ = self.stdin.flush();
        }
        drop(self.stdin);
        let _ = self.supervisor.wait();
    }
}

/// One node's fixed settings (kept across restarts).
struct Node {
    name: String,
    client_port: u16,
    cluster_port: u16,
    monitor_port: u16,
    dir: PathBuf,
}

/// A cluster of `n` JetStream-enabled `nats-server` nodes on loopback ports, each with its own
/// store directory. Nodes can be killed (SIGKILL) and restarted on the same ports and
/// directory. Dropping it kills every node and removes the directories.
///
/// ```no_run
/// # #[tokio::main] async fn main() {
/// use stan_test_support::JsCluster;
/// let Some(cluster) = JsCluster::start(3).await else { return }; // nats-server missing
/// let client = async_nats::connect(cluster.node_url(0)).await.unwrap();
/// cluster.kill(2);
/// cluster.restart(2).await;
/// # drop(client);
/// # }
/// ```
pub struct JsCluster {
    bin: &'static str,
    cluster_name: String,
    root: PathBuf,
    nodes: Vec<Node>,
    procs: Mutex<Vec<Option<NodeProcess>>>,
}

impl JsCluster {
    /// Starts an `n`-node cluster and returns once JetStream is ready cluster-wide (a stream
    /// with `n` replicas can be created and deleted), or returns `None` (printing
    /// `SKIPPED: ...`) when `nats-server` is not installed.
    ///
    /// Panics when the cluster does not come up (after a few tries on other ports).
    pub async fn start(n: usize) -> Option<JsCluster> {
        assert!(n > 0, "a cluster needs at least one node");
        let Some(bin) = nats_server_binary() else {
            eprintln!("SKIPPED: nats-server is not installed (apt-get install -y nats-server)");
            return None;
        };
        let mut last_err = String::new();
        for _ in 0..3 {
            // A port picked here may be taken before the server binds it: that node then
            // exits, and the next round tries other ports.
            let cluster = JsCluster::spawn(bin, n);
            match cluster.ready(READY_LIMIT).await {
                Ok(()) => return Some(cluster),
                Err(e) => last_err = format!("{e}\n{}", cluster.logs()),
            }
        }
        panic!("the JetStream cluster did not start: {last_err}");
    }

    fn spawn(bin: &'static str, n: usize) -> JsCluster {
        let id = nuid::next().to_string();
        let root = cluster_root().join(&id);
        std::fs::create_dir_all(&root).expect("create the cluster's directory");
        let nodes = (0..n)
            .map(|i| Node {
                name: format!("node{i}"),
                client_port: free_port(),
                cluster_port: free_port(),
                monitor_port: free_port(),
                dir: root.join(format!("node{i}")),
            })
            .collect();
        let cluster = JsCluster {
            bin,
            cluster_name: format!("stan-test-{id}"),
            root,
            nodes,
            procs: Mutex::new((0..n).map(|_| None).collect()),
        };
        for i in 0..n {
            let p = cluster.spawn_node(i);
            cluster.procs.lock().unwrap()[i] = Some(p);
        }
        cluster
    }

    fn spawn_node(&self, i: usize) -> NodeProcess {
        let node = &self.nodes[i];
        std::fs::create_dir_all(node.dir.join("js")).expect("create the node's directory");
        // A fixed JetStream file budget: without one the server allows 75 % of the disk space
        // free at its start, and the streams' reservations (a channel's `max_bytes` on every
        // replica) then fail with "insufficient storage" on a machine with little free disk,
        // although the tests write far less.
        let config = node.dir.join("limits.conf");
        std::fs::write(&config, "jetstream {\n  max_file_store: 1TB\n}\n")
            .expect("write the node's configuration");
        let routes: Vec<String> = self
            .nodes
            .iter()
            .filter(|other| other.name != node.name)
            .map(|other| format!("nats://127.0.0.1:{}", other.cluster_port))
            .collect();
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(SUPERVISOR)
            .arg("stan-js-node")
            .arg(&node.dir)
            .arg(self.bin)
            .arg("-c")
            .arg(&config)
            .args(["-a", "127.0.0.1", "-p", &node.client_port.to_string()])
            .args(["-m", &node.monitor_port.to_string()])
            .args(["-n", &node.name, "-js", "--store_dir"])
            .arg(node.dir.join("js"));
        if !routes.is_empty() {
            // A single node runs without a cluster: its JetStream would wait for peers.
            cmd.args(["--cluster_name", &self.cluster_name, "--cluster"])
                .arg(format!("nats://127.0.0.1:{}", node.cluster_port))
                .args(["--routes", &routes.join(",")]);
        }
        let mut supervisor = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sh (the nats-server supervisor)");
        let stdin = supervisor.stdin.take().expect("piped stdin");
        let mut line = String::new();
        BufReader::new(supervisor.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("read the server's PID");
        let pid = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the supervisor printed {line:?}, not a PID"));
        NodeProcess {
            supervisor,
            stdin,
            pid,
        }
    }

    /// The client URLs of all nodes, comma separated (the broker's `-ns` form).
    pub fn url(&self) -> String {
        (0..self.nodes.len())
            .map(|i| self.node_url(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The client URLs of all nodes, one each (for `async_nats::connect`, which takes a list
    /// but does not split a comma-separated string).
    pub fn urls(&self) -> Vec<String> {
        (0..self.nodes.len()).map(|i| self.node_url(i)).collect()
    }

    /// The client URL of node `i` (`nats://127.0.0.1:<port>`).
    pub fn node_url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[i].client_port)
    }

    /// The number of nodes (running or not).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Always false: a cluster has at least one node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The JetStream store directory of node `i`.
    pub fn store_dir(&self, i: usize) -> PathBuf {
        self.nodes[i].dir.join("js")
    }

    /// Whether node `i`'s server process runs.
    pub fn is_running(&self, i: usize) -> bool {
        self.procs.lock().unwrap()[i]
            .as_ref()
            .is_some_and(NodeProcess::alive)
    }

    /// Kills node `i` with SIGKILL and returns once it is gone (its store stays for
    /// [`restart`](Self::restart)). Does nothing if it is not running.
    pub fn kill(&self, i: usize) {
        let p = self.procs.lock().unwrap()[i].take();
        if let Some(p) = p {
            p.stop(true);
        }
    }

    /// Starts node `i` again on the same ports with the same store directory (killing it
    /// first if it still runs) and returns once JetStream is ready again on every running node
    /// (see [`wait_ready`](Self::wait_ready)). Panics if it does not come up.
    pub async fn restart(&self, i: usize) {
        self.kill(i);
        let mut last_err = String::new();
        for _ in 0..3 {
            let p = self.spawn_node(i);
            self.procs.lock().unwrap()[i] = Some(p);
            match self.ready(READY_LIMIT).await {
                Ok(()) => return,
                Err(e) => last_err = format!("{e}\n{}", self.logs()),
            }
            // The old listener may hold the port for a moment: the new server exited.
            self.kill(i);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("node{i} did not come back: {last_err}");
    }

    /// Returns once JetStream is ready on the running nodes: a stream with as many replicas
    /// as nodes run can be created (through each of them) and deleted, and each node's
    /// `/healthz` says ok (in a cluster: it knows the meta leader, and its replicas of the
    /// existing streams have caught up). Panics after a minute.
    pub async fn wait_ready(&self) {
        if let Err(e) = self.ready(READY_LIMIT).await {
            panic!("the JetStream cluster is not ready: {e}\n{}", self.logs());
        }
    }

    async fn ready(&self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        let running: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.procs.lock().unwrap()[i].is_some())
            .collect();
        let mut last = String::from("not tried");
        for &i in &running {
            // Each running node must accept clients and answer the JetStream API.
            let client = loop {
                if !self.is_running(i) {
                    return Err(format!("node{i} exited"));
                }
                if Instant::now() > deadline {
                    return Err(format!("node{i} does not accept clients: {last}"));
                }
                match async_nats::connect(self.node_url(i)).await {
                    Ok(c) => break c,
                    Err(e) => last = e.to_string(),
                }
                // Polling: nats-server has no readiness signal to await.
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            let name = format!("READY_{}", nuid::next());
            let config = serde_json::json!({
                "name": name,
                "subjects": [format!("stan.test.ready.{name}")],
                "num_replicas": running.len(),
                "storage": "memory",
            });
            loop {
                if !self.is_running(i) {
                    return Err(format!("node{i} exited"));
                }
                if Instant::now() > deadline {
                    return Err(format!("JetStream is not ready through node{i}: {last}"));
                }
                match js_request(&client, &format!("STREAM.CREATE.{name}"), Some(&config)).await {
                    Ok(_) => break,
                    Err(e) => last = e,
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            loop {
                match js_request(&client, &format!("STREAM.DELETE.{name}"), None).await {
                    Ok(_) => break,
                    Err(e) if Instant::now() > deadline => {
                        return Err(format!("deleting the probe stream: {e}"))
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        }
        for &i in &running {
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.nodes[i].monitor_port));
            loop {
                if tokio::net::TcpStream::connect(addr).await.is_ok() {
                    let r = crate::http::get(addr, "/healthz").await;
                    if r.status == 200 {
                        break;
                    }
                    last = r.body;
                }
                if !self.is_running(i) {
                    return Err(format!("node{i} exited"));
                }
                if Instant::now() > deadline {
                    return Err(format!("node{i} is not healthy: {last}"));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// The last lines of every node's log, for panic messages.
    fn logs(&self) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            let log = std::fs::read_to_string(n.dir.join("server.log")).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            out.push_str(&format!("--- {} log (last lines) ---\n", n.name));
            for l in &lines[lines.len().saturating_sub(15)..] {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for JsCluster {
    fn drop(&mut self) {
        let procs = std::mem::take(&mut *self.procs.lock().unwrap_or_else(|e| e.into_inner()));
        for p in procs.into_iter().flatten() {
            p.stop(false);
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Sends a request to the JetStream API (`$JS.API.<what>`) and returns the JSON answer, or
/// the error it reports (or the failed request) as text.
pub(crate) async fn js_request(
    client: &async_nats::Client,
    what: &str,
    body: Option<&serde_json::Value>,
) -> Result<serde_json::Value, String> {
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let reply = tokio::time::timeout(
        Duration::from_secs(5),
        client.request(format!("$JS.API.{what}"), payload.into()),
    )
    .await
    .map_err(|_| format!("no answer to $JS.API.{what}"))?
    .map_err(|e| format!("$JS.API.{what}: {e}"))?;
    let v: serde_json::Value = serde_json::from_slice(&reply.payload)
        .map_err(|e| format!("$JS.API.{what}: bad answer: {e}"))?;
    match v.get("error") {
        Some(err) => Err(format!("$JS.API.{what}: {err}")),
        None => Ok(v),
    }
}

/// Where clusters keep their directories; those of earlier runs (more than an hour old, left
/// only if a node was killed and never restarted) are removed once per process.
fn cluster_root() -> PathBuf {
    let root = std::env::temp_dir().join("stan-js-clusters");
    static CLEAN: std::sync::Once = std::sync::Once::new();
    CLEAN.call_once(|| crate::remove_dirs_older_than(&root, Duration::from_secs(3600)));
    root
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn accepts(url: &str) -> bool {
        let port = crate::port_of(url).unwrap();
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    }

    /// Publishes to `subject` through `client` and returns the stream sequence JetStream
    /// acknowledged.
    async fn js_publish(client: &async_nats::Client, subject: &str) -> u64 {
        let ack = crate::within(
            "JetStream ack",
            client.request(subject.to_string(), "x".into()),
        )
        .await
        .expect("JetStream ack");
        let v: serde_json::Value = serde_json::from_slice(&ack.payload).unwrap();
        assert!(v.get("error").is_none(), "{v}");
        v["seq"].as_u64().expect("sequence in the ack")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cluster_replicates_survives_a_killed_node_and_cleans_up() {
        let t0 = Instant::now();
        let Some(cluster) = JsCluster::start(3).await else {
            return;
        };
        eprintln!("3-node cluster ready in {:?}", t0.elapsed());
        assert_eq!(cluster.len(), 3);
        assert_eq!(cluster.url(), cluster.urls().join(","));
        assert_eq!(cluster.url().split(',').count(), 3);
        for i in 0..3 {
            assert!(cluster.is_running(i));
            assert!(cluster.store_dir(i).is_dir());
        }

        // An R3 file stream, written through node 0.
        let c0 = async_nats::connect(cluster.node_url(0)).await.unwrap();
        let config = serde_json::json!({
            "name": "T", "subjects": ["t.>"], "num_replicas": 3, "storage": "file",
        });
        let info = js_request(&c0, "STREAM.CREATE.T", Some(&config))
            .await
            .unwrap();
        assert_eq!(info["config"]["num_replicas"], 3);
        assert_eq!(js_publish(&c0, "t.a").await, 1);
        drop(c0);

        // With node 0 killed the other two keep a quorum: the stream takes more writes.
        cluster.kill(0);
        assert!(!cluster.is_running(0));
        assert!(!accepts(&cluster.node_url(0)).await);
        assert!(
            cluster.store_dir(0).is_dir(),
            "a killed node keeps its store"
        );
        let c1 = async_nats::connect(cluster.node_url(1)).await.unwrap();
        let seq = crate::within("a write without node 0", async {
            loop {
                // Until the stream has a leader among the survivors.
                if let Ok(Ok(ack)) = tokio::time::timeout(
                    Duration::from_secs(2),
                    c1.request("t.b".to_string(), "x".into()),
                )
                .await
                {
                    let v: serde_json::Value = serde_json::from_slice(&ack.payload).unwrap();
                    if let Some(seq) = v["seq"].as_u64() {
                        return seq;
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        assert_eq!(seq, 2);

        // Back on the same port with the same store: it has both messages.
        cluster.restart(0).await;
        assert!(cluster.is_running(0));
        let c0 = async_nats::connect(cluster.node_url(0)).await.unwrap();
        let info = js_request(&c0, "STREAM.INFO.T", None).await.unwrap();
        assert_eq!(info["state"]["messages"], 2, "{info}");
        assert_eq!(js_publish(&c0, "t.c").await, 3);

        let urls = cluster.urls();
        let dirs: Vec<PathBuf> = (0..3).map(|i| cluster.store_dir(i)).collect();
        drop(cluster);
        for (url, dir) in urls.iter().zip(&dirs) {
            assert!(!accepts(url).await, "{url} still accepts after drop");
            assert!(!dir.exists(), "{dir:?} still exists after drop");
        }
    }

    #[tokio::test]
    async fn a_single_node_cluster_has_jetstream() {
        let Some(cluster) = JsCluster::start(1).await else {
            return;
        };
        assert_eq!(cluster.url(), cluster.node_url(0));
        let c = async_nats::connect(cluster.url()).await.unwrap();
        let info = js_request(&c, "INFO", None).await.unwrap();
        assert!(info.get("memory").is_some(), "{info}");
    }

    #[test]
    fn the_supervisor_kills_its_server_when_the_pipe_closes() {
        // What happens when the test process dies: the kernel closes the pipe.
        let Some(_) = nats_server_binary() else {
            return;
        };
        let dir = cluster_root().join(format!("sup-{}", nuid::next()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut sup = Command::new("sh")
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("stan-js-node")
            .arg(&dir)
            .args(["sleep", "600"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(sup.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let p = NodeProcess {
            stdin: sup.stdin.take().unwrap(),
            supervisor: sup,
            pid: line.trim().parse().unwrap(),
        };
        assert!(p.alive());
        let pid = p.pid;
        drop(p.stdin);
        let mut sup = p.supervisor;
        assert!(sup.wait().unwrap().success());
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "reaped"
        );
        assert!(!dir.exists(), "directory removed");
    }
}
