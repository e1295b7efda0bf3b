//! What the CLI's integration tests share: running `ascribe` in a home directory, and an
//! `ascribe serve` process that is stopped with SIGTERM, or killed if a test fails first.

#![allow(dead_code)] // Each test file uses a different part of these helpers.

pub mod ledger;
pub mod load;
pub mod process;

use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ascribe_gateway::testing::StandInUpstream;
use serde_json::Value;

/// Whether the long versions run: `ASCRIBE_LONG_TESTS=1`.
pub fn long() -> bool {
    std::env::var("ASCRIBE_LONG_TESTS").is_ok_and(|value| value == "1")
}

/// How long `ascribe serve` may take to print its address, and to exit after SIGTERM.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// `ascribe` with `ASCRIBE_HOME` and `ASCRIBE_DB` set, run in the home directory.
pub struct Ascribe<'a> {
    pub home: &'a Path,
    pub db: String,
}

impl Ascribe<'_> {
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ascribe"));
        command
            .args(args)
            .env("ASCRIBE_HOME", self.home)
            .env("ASCRIBE_DB", &self.db)
            .env_remove("ASCRIBE_LISTEN")
            .current_dir(self.home);
        command
    }

    /// Initialises the ledger and creates a caller key named `name`; returns its token.
    pub fn init_with_caller_key(&self, name: &str) -> String {
        self.ok(&["init", "--json"]);
        let key = self.ok(&["key", "create", name, "--role", "caller", "--json"]);
        key["token"].as_str().expect("a token").to_owned()
    }

    /// Initialises the ledger with a caller key `risk-service` and registers `scenarios` on
    /// the stand-in at `base_url` (see [`register_scenarios`]); returns the key's token.
    pub fn init_with_scenarios(
        &self,
        base_url: &str,
        scenarios: &[Scenario],
        anthropic_key_variable: &str,
    ) -> String {
        let token = self.init_with_caller_key("risk-service");
        register_scenarios(self, base_url, scenarios, anthropic_key_variable);
        token
    }

    /// Runs a command that must succeed; returns its JSON output, or `null` for text.
    pub fn ok(&self, args: &[&str]) -> Value {
        let output = self.command(args).output().expect("ascribe runs");
        assert!(
            output.status.success(),
            "ascribe {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap_or(Value::Null)
    }
}

/// A running `ascribe serve`, killed if the test ends before it stopped.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`, as the server printed it.
    pub base: String,
    log: PathBuf,
}

impl Server {
    /// Starts on a port the kernel picks, with `env` added to its environment, and waits for
    /// the address it prints.
    pub fn start(ascribe: &Ascribe<'_>, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        Server::spawn(ascribe, &args, env)
    }

    /// Runs `ascribe ARGS` (a command line that serves, flags as given) with `env` added to
    /// its environment, and waits for the address it prints.
    pub fn spawn(ascribe: &Ascribe<'_>, args: &[&str], env: &[(&str, &str)]) -> Server {
        let log = ascribe.home.join("serve.log");
        let mut command = ascribe.command(args);
        command
            .env("ASCRIBE_LOG_LEVEL", "info")
            .envs(env.iter().copied());
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(File::create(&log).expect("log file"))
            .spawn()
            .expect("ascribe serve starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            // Keep reading to the end, so the server never writes to a closed pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        let mut server = Server {
            child: Some(child),
            base: String::new(),
            log,
        };
        match lines.recv_timeout(START_TIMEOUT) {
            Ok(line) => match line.strip_prefix("listening on ") {
                Some(base) => server.base = base.to_owned(),
                None => panic!("unexpected first line `{line}`: {}", server.log()),
            },
            Err(_) => panic!("ascribe serve printed no address: {}", server.log()),
        }
        server
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits, within a bounded time, for the process to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let pid = child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(
            sent.is_ok_and(|status| status.success()),
            "kill -TERM {pid}"
        );
        let (exited, exit) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let _ = exited.send(child.wait());
        });
        let Ok(status) = exit.recv_timeout(STOP_TIMEOUT) else {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            panic!("ascribe serve ignored SIGTERM: {}", self.log());
        };
        waiter.join().expect("waiter");
        status.expect("wait")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One alias of a test registry: the name callers send, the stand-in scenario behind it
/// (its upstream model), the deployment's dialect and the served model it expects.
pub struct Scenario {
    pub alias: &'static str,
    pub upstream_model: &'static str,
    pub dialect: &'static str,
    pub expect_served: &'static str,
}

/// `chat-v1`: OpenAI's chat completions on the stand-in's `openai-chat`, serving `gpt-4o*`.
pub const CHAT: Scenario = Scenario {
    alias: "chat-v1",
    upstream_model: "openai-chat",
    dialect: "openai-compatible",
    expect_served: "gpt-4o*",
};

/// `claude-v1`: Anthropic's messages on the stand-in's `anthropic-messages`.
pub const CLAUDE: Scenario = Scenario {
    alias: "claude-v1",
    upstream_model: "anthropic-messages",
    dialect: "anthropic",
    expect_served: "claude-sonnet-4-5-20250929",
};

/// `paced-v1`: chat completions that keep calls in flight (200 ms whole answers, streams with
/// 50 ms between events).
pub const PACED: Scenario = Scenario {
    alias: "paced-v1",
    upstream_model: "paced",
    dialect: "openai-compatible",
    expect_served: "gpt-4o*",
};

/// A stand-in on `address`, once the one told to stop there has let the port go.
pub fn successor(address: SocketAddr) -> StandInUpstream {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match StandInUpstream::start_at(address) {
            Ok(upstream) => return upstream,
            Err(error) if Instant::now() < deadline => {
                let _ = error;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(error) => panic!("no stand-in on {address}: {error}"),
        }
    }
}

/// Registers every scenario with the CLI, as an administrator would: a checkpoint
/// `standin:{upstream_model}`, a deployment of that name at `base_url` (anthropic ones
/// reading their provider key from `anthropic_key_variable`), and the alias.
pub fn register_scenarios(
    ascribe: &Ascribe<'_>,
    base_url: &str,
    scenarios: &[Scenario],
    anthropic_key_variable: &str,
) {
    for scenario in scenarios {
        let name = scenario.upstream_model;
        let checkpoint = format!("standin:{name}");
        ascribe.ok(&[
            "checkpoint",
            "register",
            "--provider",
            "standin",
            "--snapshot",
            name,
            "--json",
        ]);
        let mut deployment = vec![
            "deployment",
            "register",
            name,
            "--checkpoint",
            &checkpoint,
            "--dialect",
            scenario.dialect,
            "--base-url",
            base_url,
            "--upstream-model",
            name,
            "--expect-served",
            scenario.expect_served,
            "--json",
        ];
        if scenario.dialect == "anthropic" {
            deployment.extend(["--api-key-env", anthropic_key_variable]);
        }
        ascribe.ok(&deployment);
        ascribe.ok(&["alias", "create", scenario.alias, "--to", name, "--json"]);
    }
}
