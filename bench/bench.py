#!/usr/bin/env python3
"""The benchmark driver behind bench/run.sh; see bench/README.md for what each figure means.

run.sh builds the binaries and installs the tools, then runs this script, which measures on
this machine and writes bench/results/latest.json (every figure with its setup) and
latest.md (the same as tables, with the goals met or missed):

1. gateway: a stand-in upstream hit directly, through `ascribe serve` (SQLite ledger, then
   PostgreSQL ledger) and through the LiteLLM proxy, with the same `oha` load at each
   concurrency; latency, throughput, CPU per request, peak memory, stream time to first
   byte, and the ledger's inference count against the requests sent.
2. ledger: the store's own benchmark (appends/s by batch size, verify/s, proofs/s) next to
   the disk's fsync latency and OpenSSL's SHA-256 speed on one core.
3. hashing: `ascribe hash` against `sha256sum` and `b3sum` on a real GGUF file and on a
   generated safetensors directory, page cache warm and cold.
4. soak: a sustained load through `ascribe serve` (SQLite), its memory over time.

It uses only the Python standard library. Every process it starts runs in a session of its
own and is listed in the pid file run.sh's trap reads, so none outlives the run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Iterator

# The served model the stand-in names and the deployments expect: a pinned snapshot, so
# Ascribe records a match and LiteLLM routes `openai/<model>`.
MODEL = "gpt-4o-2024-08-06"
# What every non-streamed request sends; only `model` differs between targets.
PROMPT = [{"role": "user", "content": "Say hello."}]
# LiteLLM refuses to start without a master key; it authenticates callers as Ascribe does.
LITELLM_KEY = "sk-bench-" + "0123456789abcdef" * 2
TARGETS = ("direct", "ascribe-sqlite", "ascribe-postgres", "litellm")
CLK_TCK = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024


class BenchError(Exception):
    """A step that cannot go on; its message says which and where its log is."""


def log(message: str) -> None:
    print(f"==> {message}", flush=True)


def now_utc() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise BenchError(f"{name}={value!r} is not a whole number") from None


@dataclass
class Settings:
    """Sizes of every measurement: --quick makes them small, BENCH_* variables override."""

    quick: bool
    levels: list[int]
    requests_c1: int
    requests: int
    warm_up: int
    streams: int
    stream_chunks: int
    ledger_entries: int
    hash_mib: int
    hash_files: int
    hash_runs: int
    soak_seconds: int
    soak_concurrency: int
    soak_rps: int
    sections: list[str]

    @staticmethod
    def load(quick: bool) -> Settings:
        levels = os.environ.get("BENCH_CONCURRENCY", "1,16,64,256")
        sections = os.environ.get("BENCH_SECTIONS", "gateway,ledger,hashing,soak")
        settings = Settings(
            quick=quick,
            levels=[int(level) for level in levels.split(",") if level.strip()],
            requests_c1=env_int("BENCH_REQUESTS_C1", 200 if quick else 2000),
            requests=env_int("BENCH_REQUESTS", 1000 if quick else 10000),
            warm_up=env_int("BENCH_WARM_UP", 50 if quick else 200),
            streams=env_int("BENCH_STREAMS", 50 if quick else 500),
            stream_chunks=env_int("BENCH_STREAM_CHUNKS", 16),
            ledger_entries=env_int("BENCH_LEDGER_ENTRIES", 20000 if quick else 1000000),
            hash_mib=env_int("BENCH_HASH_MIB", 256 if quick else 4096),
            hash_files=env_int("BENCH_HASH_FILES", 8),
            hash_runs=env_int("BENCH_HASH_RUNS", 2 if quick else 3),
            soak_seconds=env_int("BENCH_SOAK_SECONDS", 20 if quick else 600),
            soak_concurrency=env_int("BENCH_SOAK_CONCURRENCY", 16),
            soak_rps=env_int("BENCH_SOAK_RPS", 0),
            sections=[name.strip() for name in sections.split(",") if name.strip()],
        )
        unknown = set(settings.sections) - {"gateway", "ledger", "hashing", "soak"}
        if unknown:
            raise BenchError(f"BENCH_SECTIONS names unknown sections: {sorted(unknown)}")
        if not settings.levels or min(settings.levels) < 1:
            raise BenchError("BENCH_CONCURRENCY must list concurrencies of 1 or more")
        return settings

    def requests_at(self, concurrency: int) -> int:
        return self.requests_c1 if concurrency == 1 else self.requests

    def warm_up_at(self, concurrency: int) -> int:
        # Enough calls to open every connection at least twice.
        return max(self.warm_up, 2 * concurrency)


# ------------------------------------------------------------------------------ processes


class Children:
    """Every process this script starts. Each leads a session of its own, so stopping it
    stops what it spawned; its pid goes to `pidfile` for run.sh's trap."""

    def __init__(self, pidfile: Path) -> None:
        self.pidfile = pidfile
        self.running: list[subprocess.Popen] = []

    def start(self, argv: list[Any], *, stdout: Path, stderr: Path | None = None,
              env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.Popen:
        with open(stdout, "wb") as out, open(stderr or stdout, "ab") as err:
            process = subprocess.Popen(
                [str(arg) for arg in argv], stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                env=env, cwd=cwd, start_new_session=True)
        self.running.append(process)
        with open(self.pidfile, "a") as pids:
            pids.write(f"{process.pid}\n")
        return process

    def run(self, argv: list[Any], *, log_file: Path, timeout: float,
            env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
        """Runs a command to its end; returns its stdout; stderr goes to `log_file`."""
        out = log_file.with_suffix(".out")
        process = self.start(argv, stdout=out, stderr=log_file, env=env, cwd=cwd)
        # A blocking wait, so callers timing the command see its end at once (Popen.wait
        # with a timeout polls, with sleeps of up to 50 ms); a timer enforces the timeout.
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            self.stop(process, grace=5)

        timer = threading.Timer(timeout, expire)
        timer.start()
        try:
            status = process.wait()
        finally:
            timer.cancel()
        if expired.is_set():
            raise BenchError(f"{argv[0]} ran longer than {timeout:.0f} s; see {log_file}")
        self.running.remove(process)
        if status != 0:
            tail = log_file.read_text(errors="replace")[-2000:]
            raise BenchError(f"{Path(argv[0]).name} exited with {status}: {tail}")
        return out.read_text(errors="replace")

    def stop(self, process: subprocess.Popen, grace: float = 30.0) -> int:
        """SIGTERM to the process's session, a bounded wait, then SIGKILL."""
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(grace)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if process in self.running:
            self.running.remove(process)
        return process.returncode

    def stop_all(self) -> None:
        for process in reversed(list(self.running)):
            self.stop(process, grace=5)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_line(path: Path, prefix: str, process: subprocess.Popen, what: str,
                  timeout: float = 60.0) -> str:
    """The rest of the first line of `path` that starts with `prefix`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith(prefix):
                return line[len(prefix):].strip()
        if process.poll() is not None:
            raise BenchError(f"{what} exited with {process.returncode} at start; see {path}")
        time.sleep(0.05)
    raise BenchError(f"{what} printed no `{prefix}` within {timeout:.0f} s; see {path}")


# Loopback only: never through a proxy the environment may name.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def wait_http(url: str, process: subprocess.Popen, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{what} exited with {process.returncode} before it was ready")
        try:
            with HTTP.open(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise BenchError(f"{what} did not answer {url} within {timeout:.0f} s")


# ---------------------------------------------------------------------------- /proc figures


def _stat_fields(pid: int) -> list[str]:
    # The command name may hold spaces and parentheses: the fields start after the last ')'.
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2:].split()


def process_tree(root: int) -> list[int]:
    """`root` and every process descending from it."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int(_stat_fields(int(entry.name))[1])
            except (OSError, ValueError, IndexError):
                continue
            parents.setdefault(parent, []).append(int(entry.name))
    tree, queue = [], [root]
    while queue:
        pid = queue.pop()
        tree.append(pid)
        queue.extend(parents.get(pid, []))
    return tree


def cpu_seconds(root: int) -> float:
    """utime + stime of `root` and its descendants (fields 14 and 15 of /proc/PID/stat)."""
    total = 0
    for pid in process_tree(root):
        try:
            fields = _stat_fields(pid)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def memory_mib(root: int, field: str) -> float:
    """A /proc/PID/status memory field (VmRSS, VmHWM) summed over `root`'s tree, in MiB."""
    total_kib = 0
    for pid in process_tree(root):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    total_kib += int(line.split()[1])
        except OSError:
            continue
    return total_kib / 1024


def listen_overflows() -> int | None:
    """The kernel's count of connections dropped by a full listen backlog (machine-wide);
    each one costs its client a 1 s SYN retry, which shows as a 1 s latency outlier."""
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            return int(table["ListenOverflows"]) if "ListenOverflows" in table else None
    return None


# ------------------------------------------------------------------------------ the bench


@dataclass
class Target:
    """Where one run's requests go."""

    name: str
    url: str
    model: str
    token: str | None
    pid: int | None
    ledger: Ledger | None = None


class Ledger:
    """Reads a gateway's ledger on a connection of its own: entry counts by kind."""

    def __init__(self, sqlite_path: Path | None = None, psql_url: str | None = None,
                 schema: str | None = None) -> None:
        self.sqlite_path, self.psql_url, self.schema = sqlite_path, psql_url, schema

    def counts(self) -> dict[str, int]:
        if self.sqlite_path is not None:
            connection = sqlite3.connect(self.sqlite_path, timeout=60)
            try:
                rows = connection.execute(
                    "SELECT kind, COUNT(*) FROM ledger_entries GROUP BY kind").fetchall()
            finally:
                connection.close()
            return {kind: count for kind, count in rows}
        query = f"SELECT kind, COUNT(*) FROM {self.schema}.ledger_entries GROUP BY kind"
        output = subprocess.run(
            ["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", str(self.psql_url),
             "-c", query], capture_output=True, text=True, timeout=120)
        if output.returncode != 0:
            raise BenchError(f"psql cannot count entries: {output.stderr.strip()}")
        counts = {}
        for line in output.stdout.splitlines():
            if "|" in line:
                kind, count = line.rsplit("|", 1)
                counts[kind] = int(count)
        return counts

    def count(self, kind: str) -> int:
        return self.counts().get(kind, 0)


class Bench:
    """Paths, tools and the children of one run."""

    def __init__(self, args: argparse.Namespace, settings: Settings) -> None:
        self.root: Path = args.root
        self.target: Path = args.target
        self.work: Path = args.work
        self.results: Path = args.results
        self.settings = settings
        self.ascribe: Path = args.ascribe
        self.standin: Path = args.standin
        self.tool: Path = args.tool
        self.oha_bin: Path = args.oha
        self.b3sum: Path | None = args.b3sum
        self.litellm: Path = args.litellm
        self.postgres_server: str = args.postgres.rstrip("/")
        self.postgres_db = "ascribe_bench"
        self.children = Children(self.work / "pids")
        self.logs = self.work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.notes: list[str] = []
        self.upstream: str | None = None
        self.upstream_pid: int | None = None
        self._schemas = 0

    # ---------------------------------------------------------------- shared pieces

    def start_upstream(self) -> None:
        """The stand-in upstream every gateway run and the soak use."""
        out = self.logs / "standin.out"
        process = self.children.start(
            [self.standin, "--listen", "127.0.0.1:0", "--model", MODEL,
             "--chunks", str(self.settings.stream_chunks)],
            stdout=out, stderr=self.logs / "standin.log")
        self.upstream = wait_for_line(out, "listening on ", process, "the stand-in upstream")
        self.upstream_pid = process.pid
        wait_http(f"{self.upstream}/healthz", process, "the stand-in upstream")
        log(f"stand-in upstream on {self.upstream} (pid {process.pid})")

    def oha(self, target: Target, concurrency: int, *, requests: int | None = None,
            seconds: int | None = None, rps: int = 0, label: str) -> dict[str, Any]:
        """One `oha` run against `target`: a fixed number of requests, or a duration."""
        body = json.dumps({"model": target.model, "messages": PROMPT})
        argv: list[Any] = [self.oha_bin, "--no-tui", "--output-format", "json", "-m", "POST",
                           "-T", "application/json", "-d", body, "-c", concurrency,
                           "-t", "120s"]
        if target.token:
            argv += ["-H", f"Authorization: Bearer {target.token}"]
        if requests is not None:
            argv += ["-n", requests]
            timeout = 900 + requests / 5
        else:
            # -w: requests in flight at the deadline are waited for, not dropped, so every
            # answered request is counted.
            argv += ["-z", f"{seconds}s", "-w"]
            timeout = (seconds or 0) + 900
        if rps:
            argv += ["-q", rps]
        argv.append(target.url)
        output = self.children.run(argv, log_file=self.logs / f"oha-{label}.log",
                                   timeout=timeout)
        return parse_oha(json.loads(output))

    def fresh_schema(self, label: str) -> tuple[str, str]:
        """A new schema in the bench database; the URL `ascribe` uses for it."""
        self._schemas += 1
        schema = f"{label.replace('-', '_')}_{self._schemas}"
        self.psql(self.postgres_db, f"CREATE SCHEMA {schema}")
        url = (f"{self.postgres_server}/{self.postgres_db}"
               f"?options=-c%20search_path%3D{schema}")
        return schema, url

    def psql(self, database: str, *commands: str) -> str:
        argv = ["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d",
                f"{self.postgres_server}/{database}"]
        for command in commands:
            argv += ["-c", command]
        output = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if output.returncode != 0:
            raise BenchError(f"psql failed on {commands}: {output.stderr.strip()}")
        return output.stdout.strip()

    def reset_postgres(self) -> None:
        """Drops what an earlier run left and creates an empty database for this run."""
        self.psql("test", f"DROP DATABASE IF EXISTS {self.postgres_db} WITH (FORCE)",
                  f"CREATE DATABASE {self.postgres_db}")

    def drop_postgres(self) -> None:
        try:
            self.psql("test", f"DROP DATABASE IF EXISTS {self.postgres_db} WITH (FORCE)")
        except (BenchError, OSError, subprocess.SubprocessError) as error:
            print(f"bench: could not drop database {self.postgres_db}: {error}",
                  file=sys.stderr)

    def fsync_ms(self) -> float:
        output = self.children.run([self.tool, "fsync", "--dir", self.work],
                                   log_file=self.logs / "fsync.log", timeout=300)
        return float(json.loads(output)["fsync_median_ms"])


def parse_oha(data: dict[str, Any]) -> dict[str, Any]:
    """The figures of one `oha --output-format json` run, latencies in ms."""
    statuses = {str(code): count for code, count in
                (data.get("statusCodeDistribution") or {}).items()}
    errors = data.get("errorDistribution") or {}
    percentiles = data.get("latencyPercentiles") or {}
    summary = data.get("summary") or {}

    def ms(value: float | None) -> float | None:
        return None if value is None else value * 1e3

    return {
        "sent": sum(statuses.values()) + sum(errors.values()),
        "ok": statuses.get("200", 0),
        "statuses": statuses,
        "errors": errors,
        "p50_ms": ms(percentiles.get("p50")),
        "p90_ms": ms(percentiles.get("p90")),
        "p99_ms": ms(percentiles.get("p99")),
        "mean_ms": ms(summary.get("average")),
        "rps": summary.get("requestsPerSec"),
        "seconds": summary.get("total"),
    }


# --------------------------------------------------------------------------- the gateways


class AscribeGateway:
    """`ascribe serve` on a fresh ledger, with a caller key and alias `v1` on the stand-in."""

    def __init__(self, bench: Bench, store: str, label: str) -> None:
        self.bench, self.store, self.label = bench, store, label
        self.home = bench.work / label
        shutil.rmtree(self.home, ignore_errors=True)
        self.home.mkdir(parents=True)
        if store == "sqlite":
            self.db = f"sqlite://{self.home / 'ledger.db'}"
            self.ledger = Ledger(sqlite_path=self.home / "ledger.db")
        else:
            schema, self.db = bench.fresh_schema(label)
            self.ledger = Ledger(
                psql_url=f"{bench.postgres_server}/{bench.postgres_db}", schema=schema)
        # Only the variables set here reach `ascribe`: no ASCRIBE_* of the caller's shell.
        self.env = {key: value for key, value in os.environ.items()
                    if not key.startswith("ASCRIBE_")}
        self.env.update(ASCRIBE_HOME=str(self.home), ASCRIBE_DB=self.db)
        self.process: subprocess.Popen | None = None

    def cli(self, *args: str) -> Any:
        """Runs `ascribe ARGS --json`; its JSON output."""
        output = self.bench.children.run(
            [self.bench.ascribe, *args, "--json"], env=self.env, cwd=self.home,
            log_file=self.bench.logs / f"{self.label}-cli.log", timeout=300)
        return json.loads(output)

    def start(self) -> Target:
        self.cli("init")
        token = self.cli("key", "create", "bench", "--role", "caller")["token"]
        self.cli("checkpoint", "register", "--provider", "standin", "--snapshot", MODEL)
        self.cli("deployment", "register", "standin", "--checkpoint", f"standin:{MODEL}",
                 "--dialect", "openai-compatible", "--base-url", f"{self.bench.upstream}/v1",
                 "--upstream-model", MODEL)
        self.cli("alias", "create", "v1", "--to", "standin")
        out = self.bench.logs / f"{self.label}-serve.out"
        # The shipped defaults: log level info (one line per inference, to a file here).
        self.process = self.bench.children.start(
            [self.bench.ascribe, "serve", "--listen", "127.0.0.1:0"], stdout=out,
            stderr=self.bench.logs / f"{self.label}-serve.log", env=self.env, cwd=self.home)
        base = wait_for_line(out, "listening on ", self.process, f"ascribe serve ({self.label})")
        wait_http(f"{base}/readyz", self.process, f"ascribe serve ({self.label})")
        return Target(f"ascribe-{self.store}", f"{base}/v1/chat/completions", "v1", token,
                      self.process.pid, self.ledger)

    def stop(self) -> dict[str, Any]:
        """Stops serving (SIGTERM: in-flight answers finish) and verifies the whole ledger."""
        assert self.process is not None
        status = self.bench.children.stop(self.process)
        if status != 0:
            raise BenchError(f"ascribe serve ({self.label}) exited with {status} after "
                             f"SIGTERM; see {self.bench.logs / (self.label + '-serve.log')}")
        verify = self.cli("verify")
        return {"ok": verify.get("ok"), "entries": verify.get("entries")}


class LiteLLMProxy:
    """The LiteLLM proxy with one model, `bench`, routed to the stand-in; otherwise the
    configuration and logging it ships with."""

    def __init__(self, bench: Bench, label: str) -> None:
        self.bench, self.label = bench, label
        self.dir = bench.work / label
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.port = free_port()
        (self.dir / "config.yaml").write_text(
            "model_list:\n"
            "  - model_name: bench\n"
            "    litellm_params:\n"
            f"      model: openai/{MODEL}\n"
            f"      api_base: {bench.upstream}/v1\n"
            "      api_key: standin\n"
            "general_settings:\n"
            f"  master_key: {LITELLM_KEY}\n")
        self.process: subprocess.Popen | None = None

    def start(self) -> Target:
        env = dict(os.environ)
        # The bundled model price list, not a download: this machine reaches no site, and
        # LiteLLM falls back to the same list after three failed attempts (10 s of retries).
        env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
        self.process = self.bench.children.start(
            [self.bench.litellm, "--config", "config.yaml", "--port", str(self.port)],
            stdout=self.bench.logs / f"{self.label}.log", env=env, cwd=self.dir)
        base = f"http://127.0.0.1:{self.port}"
        wait_http(f"{base}/health/liveliness", self.process, f"litellm ({self.label})",
                  timeout=180)
        return Target("litellm", f"{base}/v1/chat/completions", "bench", LITELLM_KEY,
                      self.process.pid)

    def stop(self) -> None:
        assert self.process is not None
        self.bench.children.stop(self.process)


def gateway_section(bench: Bench) -> dict[str, Any]:
    """Each concurrency level in turn; within it each target, on a fresh process and ledger,
    so its CPU, peak memory and entry count belong to that run alone."""
    settings = bench.settings
    fsync = bench.fsync_ms()
    log(f"fsync (4 KiB write + fdatasync) in {bench.work}: median {fsync:.3f} ms")
    direct = Target("direct", f"{bench.upstream}/v1/chat/completions", MODEL, None, None)
    rows: list[dict[str, Any]] = []
    streams: list[dict[str, Any]] = []
    for concurrency in settings.levels:
        for name in TARGETS:
            label = f"{name}-c{concurrency}"
            with_streams = concurrency == settings.levels[0]
            row, stream = run_target(bench, name, label, concurrency, direct, with_streams)
            rows.append(row)
            if stream is not None:
                streams.append(stream)
    for row in rows:
        base = next(other for other in rows
                    if other["target"] == "direct" and other["concurrency"] == row["concurrency"])
        for key in ("p50", "p99"):
            mine, theirs = row[f"{key}_ms"], base[f"{key}_ms"]
            row[f"added_{key}_ms"] = (None if row["target"] == "direct" or mine is None
                                      or theirs is None else mine - theirs)
    return {"fsync_ms": fsync, "gateway": rows, "streams": streams,
            "ratios": ratios(rows)}


def run_target(bench: Bench, name: str, label: str, concurrency: int, direct: Target,
               with_streams: bool) -> tuple[dict[str, Any], dict[str, Any] | None]:
    settings = bench.settings
    requests = settings.requests_at(concurrency)
    server: AscribeGateway | LiteLLMProxy | None = None
    if name.startswith("ascribe-"):
        server = AscribeGateway(bench, name.removeprefix("ascribe-"), label)
    elif name == "litellm":
        server = LiteLLMProxy(bench, label)
    target = server.start() if server is not None else direct
    try:
        rss_start = memory_mib(target.pid, "VmRSS") if target.pid else None
        bench.oha(target, concurrency, requests=settings.warm_up_at(concurrency),
                  label=f"{label}-warm-up")
        # The disk's fsync latency right before the run the added-latency goal is read on.
        fsync = bench.fsync_ms() if target.ledger and concurrency == 1 else None
        before = target.ledger.count("inference.recorded") if target.ledger else None
        cpu = cpu_seconds(target.pid) if target.pid else None
        assert bench.upstream_pid is not None
        upstream_cpu = cpu_seconds(bench.upstream_pid)
        overflows = listen_overflows()
        run = bench.oha(target, concurrency, requests=requests, label=label)
        upstream_cpu = cpu_seconds(bench.upstream_pid) - upstream_cpu
        overflows_after = listen_overflows()
        if overflows is not None and overflows_after is not None:
            overflows = overflows_after - overflows
        if target.pid and cpu is not None:
            cpu = cpu_seconds(target.pid) - cpu
        peak = memory_mib(target.pid, "VmHWM") if target.pid else None
        recorded = None
        if target.ledger is not None and before is not None:
            recorded = target.ledger.count("inference.recorded") - before
        row = {
            "target": name, "concurrency": concurrency, "requests": requests,
            "recorded": recorded, "p50_ms": run["p50_ms"], "p99_ms": run["p99_ms"],
            "rps": run["rps"], "ok": run["ok"], "sent": run["sent"],
            "statuses": run["statuses"], "errors": run["errors"], "p90_ms": run["p90_ms"],
            "mean_ms": run["mean_ms"], "seconds": run["seconds"],
            "warm_up": settings.warm_up_at(concurrency),
            "cpu_ms_per_request": None if cpu is None else cpu * 1e3 / requests,
            "upstream_cpu_ms_per_request": upstream_cpu * 1e3 / requests,
            "rss_start_mb": rss_start, "peak_rss_mb": peak, "fsync_ms": fsync,
            "listen_overflows": overflows,
        }
        log(f"{name:<16} c={concurrency:<4} {requests} requests: "
            f"p50 {fmt(run['p50_ms'], 3)} ms, p99 {fmt(run['p99_ms'], 3)} ms, "
            f"{fmt(run['rps'], 0)} req/s, ok {run['ok']}, recorded {fmt(recorded)}")
        stream = measure_streams(bench, target, label) if with_streams else None
    finally:
        verify: dict[str, Any] | None = None
        if isinstance(server, AscribeGateway) and server.process is not None:
            verify = server.stop()
        elif server is not None:
            server.stop()
    row["verify"] = verify
    if verify is not None and not verify["ok"]:
        raise BenchError(f"ascribe verify failed on the ledger of {label}")
    return row, stream


def measure_streams(bench: Bench, target: Target, label: str) -> dict[str, Any]:
    """Streamed calls one at a time, timed to their first body byte; for Ascribe, the
    `inference.recorded` and `inference.completed` entries they added."""
    settings = bench.settings
    warm_up = 10 if settings.quick else 20
    before = target.ledger.counts() if target.ledger else None
    argv: list[Any] = [bench.tool, "ttfb", "--url", target.url, "--model", target.model,
                       "--requests", settings.streams, "--warm-up", warm_up]
    if target.token:
        argv += ["--token", target.token]
    output = bench.children.run(argv, log_file=bench.logs / f"ttfb-{label}.log",
                                timeout=900 + settings.streams)
    result = json.loads(output)
    row: dict[str, Any] = {
        "target": target.name, "concurrency": 1, "requests": settings.streams,
        "warm_up": warm_up, "chunks": settings.stream_chunks, "ok": result["ok"],
        "failed": result["failed"], "first_error": result["first_error"],
        "ttfb_p50_ms": result["ttfb_ms"]["p50"], "ttfb_p99_ms": result["ttfb_ms"]["p99"],
        "ttfb_mean_ms": result["ttfb_ms"]["mean"],
        "headers_p50_ms": result["headers_ms"]["p50"],
        "total_p50_ms": result["total_ms"]["p50"],
        "recorded": None, "completed": None,
    }
    if target.ledger is not None and before is not None:
        expected = warm_up + settings.streams
        # A completion entry is written when its stream's relay ends: wait for the last.
        deadline = time.monotonic() + 10
        while True:
            after = target.ledger.counts()
            done = after.get("inference.completed", 0) - before.get("inference.completed", 0)
            if done >= expected or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        row["recorded"] = (after.get("inference.recorded", 0)
                           - before.get("inference.recorded", 0))
        row["completed"] = done
        row["expected_entries"] = expected
    log(f"{target.name:<16} streams: TTFB p50 {fmt(row['ttfb_p50_ms'], 3)} ms, "
        f"p99 {fmt(row['ttfb_p99_ms'], 3)} ms; recorded {fmt(row['recorded'])}, "
        f"completed {fmt(row['completed'])}")
    return row


def ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ascribe against LiteLLM at each concurrency, from the same run: latency ratios below
    1 and throughput ratios above 1 favour Ascribe."""
    found = []
    for row in rows:
        if not row["target"].startswith("ascribe-"):
            continue
        other = next((candidate for candidate in rows if candidate["target"] == "litellm"
                      and candidate["concurrency"] == row["concurrency"]), None)
        if other is None:
            continue
        found.append({
            "target": row["target"], "concurrency": row["concurrency"],
            "p50_ratio": divide(row["p50_ms"], other["p50_ms"]),
            "p99_ratio": divide(row["p99_ms"], other["p99_ms"]),
            "rps_ratio": divide(row["rps"], other["rps"]),
        })
    return found


def divide(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


# ------------------------------------------------------------------------------- ledger


LEDGER_LINES = [
    ("fsync_ms", re.compile(r"fsync \(4 KiB write \+ fdatasync\), median: ([\d.]+) ms")),
    ("sha256_sha2_gb_s", re.compile(r"SHA-256, one core, 1 MiB blocks: ([\d.]+) GB/s")),
]
APPEND = re.compile(
    r"append, batches of\s+(\d+):\s+([\d.]+) entries/s \(([\d.]+) ms per commit\)")
GROUP = re.compile(r"append, group commit from (\d+) threads: ([\d.]+) entries/s")
VERIFY = re.compile(r"verify (\d+) entries: ([\d.]+) entries/s")
PROOFS = re.compile(r"inclusion proofs at size (\d+): ([\d.]+) proofs/s \(([\d.]+) ms each\)")


def ledger_section(bench: Bench) -> dict[str, Any]:
    """The store's benchmark, parsed, next to OpenSSL's SHA-256 speed on one core."""
    entries = bench.settings.ledger_entries
    env = dict(os.environ)
    env["ASCRIBE_BENCH_ENTRIES"] = str(entries)
    # Its fresh schemas go in this run's database, dropped at the end.
    env["ASCRIBE_TEST_POSTGRES"] = f"{bench.postgres_server}/{bench.postgres_db}"
    log(f"cargo bench -p ascribe-store --features testing --bench ledger ({entries} entries)")
    output = bench.children.run(
        ["cargo", "bench", "--locked", "-p", "ascribe-store", "--features", "testing",
         "--bench", "ledger"], log_file=bench.logs / "ledger-bench.log", env=env,
        cwd=bench.root, timeout=7200)
    result: dict[str, Any] = {"entries_setting": entries, "stores": {}, "raw": output}
    store: dict[str, Any] | None = None
    for line in output.splitlines():
        text = line.strip()
        for key, pattern in LEDGER_LINES:
            if match := pattern.search(text):
                result[key] = float(match.group(1))
        if text in ("sqlite", "postgres"):
            store = result["stores"].setdefault(text, {"append": []})
        elif store is None:
            continue
        elif match := APPEND.search(text):
            store["append"].append({
                "batch": int(match.group(1)), "entries_per_s": float(match.group(2)),
                "ms_per_commit": float(match.group(3))})
        elif match := GROUP.search(text):
            store["group_commit"] = {"threads": int(match.group(1)),
                                     "entries_per_s": float(match.group(2))}
        elif match := VERIFY.search(text):
            store["verify"] = {"entries": int(match.group(1)),
                               "entries_per_s": float(match.group(2))}
        elif match := PROOFS.search(text):
            store["proofs"] = {"tree_size": int(match.group(1)),
                               "proofs_per_s": float(match.group(2)),
                               "ms_each": float(match.group(3))}
    for name in ("sqlite", "postgres"):
        if name not in result["stores"] or "verify" not in result["stores"][name]:
            raise BenchError(f"the ledger benchmark printed no {name} figures; see "
                             f"{bench.logs / 'ledger-bench.log'}")
    result["openssl_sha256_gb_s"] = openssl_sha256_gb_s(bench)
    for name, store in result["stores"].items():
        for append in store["append"]:
            log(f"{name:<8} append batch {append['batch']:>4}: "
                f"{append['entries_per_s']:.0f} entries/s")
        log(f"{name:<8} verify {store['verify']['entries_per_s']:.0f} entries/s, proofs "
            f"{store['proofs']['proofs_per_s']:.1f}/s")
    return result


def openssl_sha256_gb_s(bench: Bench) -> float:
    """`openssl speed -evp sha256 -bytes 16384` on one core, in GB/s (10^9 bytes)."""
    seconds = "1" if bench.settings.quick else "3"
    output = bench.children.run(
        ["openssl", "speed", "-seconds", seconds, "-evp", "sha256", "-bytes", "16384"],
        log_file=bench.logs / "openssl-speed.log", timeout=120)
    # The last line reads `sha256   1413856.45k`: thousands of bytes per second.
    for line in reversed(output.splitlines()):
        if line.strip().lower().startswith("sha256"):
            return float(line.split()[-1].rstrip("k")) * 1000 / 1e9
    raise BenchError(f"cannot read openssl speed's output: {output[-500:]}")


# ------------------------------------------------------------------------------ hashing


def hashing_section(bench: Bench, openssl_gb_s: float | None) -> dict[str, Any]:
    """`ascribe hash` against `sha256sum` (one file after another) and `b3sum`, on the real
    model's GGUF file and on a generated safetensors directory; warm then cold."""
    settings = bench.settings
    inputs: list[tuple[str, Path, list[Path]]] = []
    notes: list[str] = []
    # Where examples/real-model/run.sh keeps its download, with the same variables.
    work = Path(os.environ.get("REAL_MODEL_WORK", bench.target / "real-model"))
    cache = Path(os.environ.get("REAL_MODEL_CACHE", work / "cache"))
    gguf = cache / "weights" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if gguf.is_file():
        inputs.append(("gguf", gguf, [gguf]))
    else:
        notes.append(f"real GGUF not found at {gguf}: run examples/real-model/run.sh once "
                     "to download it; its row is skipped")
    directory = bench.target / "bench-data" / f"safetensors-{settings.hash_mib}mib"
    log(f"safetensors directory: {settings.hash_mib} MiB in {settings.hash_files} files")
    made = json.loads(bench.children.run(
        [bench.tool, "safetensors", "--dir", directory, "--total-mib", settings.hash_mib,
         "--files", settings.hash_files], log_file=bench.logs / "safetensors.log",
        timeout=3600))
    files = [Path(path) for path in made["files"]]
    inputs.append(("safetensors-dir", directory, files))
    largest = max(files, key=lambda path: path.stat().st_size)
    inputs.append(("safetensors-1-file", largest, [largest]))

    cold_method = drop_caches_method(notes)
    runs: list[dict[str, Any]] = []
    checkpoints: dict[str, str] = {}
    for name, path, members in inputs:
        size = sum(member.stat().st_size for member in members)
        tools: list[tuple[str, list[Any]]] = [
            ("ascribe hash", [bench.ascribe, "hash", path, "--json"])]
        if name != "safetensors-1-file":
            tools.append(("sha256sum", ["sha256sum", *members]))
            if bench.b3sum is not None:
                tools.append(("b3sum", [bench.b3sum, *members]))
        for cache_state in ("warm", "cold"):
            if cache_state == "cold" and cold_method is None:
                continue
            for tool, argv in tools:
                repeat = settings.hash_runs if cache_state == "warm" else 1
                best, output = None, ""
                if cache_state == "warm":
                    # The program's own pages too: a cold run before may have evicted them.
                    subprocess.run([str(argv[0]), "--version"], capture_output=True,
                                   check=False)
                for _ in range(repeat):
                    if cache_state == "warm":
                        read_through(members)
                    else:
                        drop_caches(members, cold_method)
                    begun = time.perf_counter()
                    output = bench.children.run(argv, log_file=bench.logs / "hash.log",
                                                timeout=3600)
                    elapsed = time.perf_counter() - begun
                    best = elapsed if best is None else min(best, elapsed)
                if tool == "ascribe hash" and name not in checkpoints:
                    checkpoints[name] = json.loads(output)["checkpoint"]
                    check_digests(json.loads(output), members)
                assert best is not None
                runs.append({"input": name, "tool": tool, "cache": cache_state,
                             "files": len(members), "bytes": size, "seconds": best,
                             "gb_s": size / best / 1e9, "runs": repeat})
                log(f"hash {name:<18} {tool:<13} {cache_state}: {size / best / 1e9:.3f} GB/s")
    cores = os.cpu_count() or 1
    return {
        "inputs": [{"input": name, "path": str(path), "files": len(members),
                    "bytes": sum(member.stat().st_size for member in members),
                    "checkpoint": checkpoints.get(name)}
                   for name, path, members in inputs],
        "runs": runs, "cold_method": cold_method, "notes": notes,
        "openssl_sha256_gb_s_1core": openssl_gb_s, "cores": cores,
        "directory_cores_used": min(cores, len(files)),
    }


def read_through(files: list[Path]) -> None:
    """Reads every byte once, so the page cache holds the files (when memory allows)."""
    for path in files:
        with open(path, "rb", buffering=0) as handle:
            while handle.read(8 * MIB):
                pass


def drop_caches_method(notes: list[str]) -> str | None:
    """How cold runs empty the page cache: drop_caches, else per-file fadvise."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return "echo 3 > /proc/sys/vm/drop_caches"
    except OSError as error:
        if hasattr(os, "posix_fadvise"):
            notes.append(f"drop_caches not permitted ({error}); cold runs evict the files "
                         "with posix_fadvise(DONTNEED) instead")
            return "posix_fadvise(POSIX_FADV_DONTNEED) per file"
        notes.append(f"drop_caches not permitted ({error}) and no fadvise: no cold runs")
        return None


def drop_caches(files: list[Path], method: str | None) -> None:
    os.sync()
    if method and method.startswith("echo"):
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return
    for path in files:
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(descriptor)


def check_digests(manifest: dict[str, Any], members: list[Path]) -> None:
    """`ascribe hash` must name the digests `sha256sum` computes, or its speed means nothing.
    Checked on the first file only, to keep the check cheap."""
    first = members[0]
    output = subprocess.run(["sha256sum", str(first)], capture_output=True, text=True,
                            check=True).stdout.split()[0]
    if not any(file["sha256"] == output for file in manifest["files"]):
        raise BenchError(f"ascribe hash disagrees with sha256sum on {first}")


# --------------------------------------------------------------------------------- soak


def soak_section(bench: Bench) -> dict[str, Any]:
    """A sustained load through `ascribe serve` (SQLite): its resident memory sampled from
    start to end, and its ledger's inference count against the answers given."""
    settings = bench.settings
    seconds, concurrency = settings.soak_seconds, settings.soak_concurrency
    server = AscribeGateway(bench, "sqlite", "soak")
    target = server.start()
    assert target.pid is not None and target.ledger is not None
    try:
        bench.oha(target, concurrency, requests=settings.warm_up_at(concurrency),
                  label="soak-warm-up")
        before = target.ledger.count("inference.recorded")
        cpu = cpu_seconds(target.pid)
        rss_start = memory_mib(target.pid, "VmRSS")
        log(f"soak: {seconds} s at concurrency {concurrency}"
            + (f", {settings.soak_rps} req/s" if settings.soak_rps else ", unthrottled")
            + f"; RSS at start {rss_start:.1f} MiB")
        samples = [(0.0, rss_start)]
        interval = max(0.5, seconds / 120)
        begun = time.monotonic()
        # The load runs in a thread of its own so that memory is sampled while it runs.
        result: dict[str, Any] = {}

        def load() -> None:
            try:
                result["run"] = bench.oha(target, concurrency, seconds=seconds,
                                          rps=settings.soak_rps, label="soak")
            except BaseException as error:  # re-raised below, in the main thread
                result["error"] = error

        worker = threading.Thread(target=load, daemon=True)
        worker.start()
        while worker.is_alive():
            worker.join(interval)
            samples.append((time.monotonic() - begun, memory_mib(target.pid, "VmRSS")))
        if "error" in result:
            raise result["error"]
        run = result["run"]
        rss_end = memory_mib(target.pid, "VmRSS")
        peak = memory_mib(target.pid, "VmHWM")
        cpu = cpu_seconds(target.pid) - cpu
        recorded = target.ledger.count("inference.recorded") - before
    finally:
        verify = server.stop()
    # A full soak's ledger is gigabytes: it has been counted and verified, it goes.
    shutil.rmtree(server.home, ignore_errors=True)
    flat = memory_flatness(samples, seconds)
    # Every response, whatever its status, is an answer the ledger must hold.
    answered = sum(run["statuses"].values())
    log(f"soak: {run['sent']} requests, {answered} answered, {recorded} recorded; RSS "
        f"{rss_start:.1f} -> {rss_end:.1f} MiB (peak {peak:.1f}); slope "
        f"{fmt(flat['slope_mib_per_min'], 3)} MiB/min")
    return {
        "seconds": seconds, "concurrency": concurrency, "rps_limit": settings.soak_rps or None,
        "requests": run["sent"], "answered": answered, "recorded": recorded,
        "errors": run["errors"], "statuses": run["statuses"], "rps": run["rps"],
        "verify": verify,
        "p50_ms": run["p50_ms"], "p99_ms": run["p99_ms"],
        "cpu_ms_per_request": cpu * 1e3 / max(run["sent"], 1),
        "rss_start_mb": rss_start, "rss_end_mb": rss_end, "peak_rss_mb": peak,
        "samples": [{"t_s": round(t, 2), "rss_mb": round(rss, 2)} for t, rss in samples],
        **flat,
    }


def memory_flatness(samples: list[tuple[float, float]], seconds: float) -> dict[str, Any]:
    """Growth after the first tenth of the soak (caches fill, connections open) to its end,
    and the least-squares slope over the same samples."""
    settled = [(t, rss) for t, rss in samples if t >= seconds / 10] or samples
    reference, end = settled[0][1], samples[-1][1]
    slope = None
    if len(settled) >= 3:
        times = [t for t, _ in settled]
        sizes = [rss for _, rss in settled]
        slope = statistics.linear_regression(times, sizes).slope * 60
    allowed = max(5.0, 0.10 * reference)
    return {"rss_settled_mb": reference, "growth_mb": end - reference,
            "growth_allowed_mb": allowed, "slope_mib_per_min": slope}


# ------------------------------------------------------------------------------- goals


def evaluate_goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each goal of bench/README.md: met, missed (with the gap), or not measured."""
    goals: list[dict[str, Any]] = []

    def goal(name: str, subject: str, value: float | None, target: float | None, unit: str,
             higher_is_better: bool, text: str) -> None:
        if value is None or target is None:
            goals.append({"goal": name, "subject": subject, "value": value, "target": target,
                          "unit": unit, "met": None, "gap": None, "text": text})
            return
        met = value >= target if higher_is_better else value <= target
        gap = (target - value) if higher_is_better else (value - target)
        goals.append({"goal": name, "subject": subject, "value": value, "target": target,
                      "unit": unit, "met": met, "gap": None if met else gap, "text": text})

    gateway = results.get("gateway")
    if gateway:
        rows, fsync = gateway["gateway"], gateway["fsync_ms"]
        for row in rows:
            if row["recorded"] is not None:
                goal("recorded-equals-requests", f"{row['target']} c={row['concurrency']}",
                     abs(row["recorded"] - row["requests"]), 0, "entries missing or extra", False,
                     "every request sent is an inference entry in the ledger")
        for row in gateway["streams"]:
            if row["recorded"] is not None:
                goal("recorded-equals-requests", f"{row['target']} streams",
                     abs(row["recorded"] - row["expected_entries"])
                     + abs(row["completed"] - row["expected_entries"]), 0, "entries missing or extra",
                     False,
                     "every stream is an inference entry and a completion entry")
        for store in ("ascribe-sqlite", "ascribe-postgres"):
            first = next((row for row in rows if row["target"] == store
                          and row["concurrency"] == 1), None)
            if first is None:
                continue
            # The fsync latency measured right before that run, else the section's.
            disk = first.get("fsync_ms") or fsync
            goal("added-latency-c1", store, first["added_p50_ms"], 2 * disk + 0.2, "ms",
                 False, f"added p50 at concurrency 1 <= 2 x fsync ({disk:.3f} ms) + 0.2 ms")
        for ratio in gateway["ratios"]:
            store, level = ratio["target"], ratio["concurrency"]
            goal("below-litellm-p50", f"{store} c={level}", ratio["p50_ratio"], 1.0, "x",
                 False, "p50 lower than LiteLLM's (ratio < 1)")
            goal("below-litellm-p99", f"{store} c={level}", ratio["p99_ratio"], 1.0, "x",
                 False, "p99 lower than LiteLLM's (ratio < 1)")
        litellm_peak = max((row["rps"] or 0 for row in rows if row["target"] == "litellm"),
                           default=0)
        for store in ("ascribe-sqlite", "ascribe-postgres"):
            peak = max((row["rps"] or 0 for row in rows if row["target"] == store), default=0)
            goal("throughput-5x-litellm", store, divide(peak, litellm_peak), 5.0, "x", True,
                 "peak requests/s with durable recording >= 5 x LiteLLM's peak")
        direct = next((row for row in gateway["streams"] if row["target"] == "direct"), None)
        for row in gateway["streams"]:
            if row["target"].startswith("ascribe-") and direct is not None:
                added = (None if row["ttfb_p50_ms"] is None or direct["ttfb_p50_ms"] is None
                         else row["ttfb_p50_ms"] - direct["ttfb_p50_ms"])
                goal("stream-ttfb", row["target"], added, 1.0, "ms", False,
                     "stream time to first byte, p50, within 1 ms of direct")
    hashing = results.get("hashing")
    if hashing:
        def rate(name: str, tool: str) -> float | None:
            """GB/s of `tool` on input `name`, warm cache."""
            return next((run["gb_s"] for run in hashing["runs"] if run["input"] == name
                         and run["tool"] == tool and run["cache"] == "warm"), None)

        limit = hashing["openssl_sha256_gb_s_1core"]
        ours = rate("safetensors-dir", "ascribe hash")
        cores = hashing["directory_cores_used"]
        goal("hash-vs-sha256-limit", f"directory, {cores} cores",
             ours, limit and 0.9 * limit * cores, "GB/s", True,
             f"ascribe hash >= 0.9 x OpenSSL SHA-256 on {cores} core(s), warm cache")
        one = rate("safetensors-1-file", "ascribe hash")
        goal("hash-vs-sha256-limit", "one file, 1 core", one,
             limit and 0.9 * limit, "GB/s", True,
             "ascribe hash of one file >= 0.9 x OpenSSL SHA-256 on one core, warm cache")
        theirs = rate("safetensors-dir", "sha256sum")
        goal("hash-faster-than-sha256sum", "directory", ours, theirs, "GB/s", True,
             "ascribe hash faster than sha256sum on the directory, warm cache")
    soak = results.get("soak")
    if soak:
        goal("memory-flat", f"{soak['seconds']} s soak", soak["growth_mb"],
             soak["growth_allowed_mb"], "MiB", False,
             "RSS growth after the first tenth of the soak <= max(5 MiB, 10%)")
        goal("soak-recorded", "ledger vs answered", abs(soak["recorded"] - soak["answered"]),
             0, "entries missing or extra", False,
             "ledger inference count equals requests answered")
    return goals


# ------------------------------------------------------------------------------ reports


def fmt(value: Any, decimals: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{decimals}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def table(header: list[str], rows: Iterator[list[str]] | list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


def render_markdown(results: dict[str, Any]) -> str:
    setup, settings = results["setup"], results["settings"]
    machine, versions = setup["machine"], setup["versions"]
    out = [
        "# Ascribe benchmarks", "",
        f"Mode **{results['mode']}**, run {results['started_at']} to "
        f"{results['finished_at']} ({results['duration_s']:.0f} s) by `bench/run.sh`. "
        "Every figure was measured on the machine below in this one run; "
        "latest.json beside this file holds them all with their setup.", "",
        f"Machine: {machine['cores']} cores ({machine['cpu_model']}), "
        f"{machine['memory_gib']:.0f} GiB, {machine['kernel']}; load average at start "
        f"{machine['load_average_at_start']}.", "",
        "Versions:", "",
        *[f"- {name}: {value or 'not available'}" for name, value in versions.items()],
        "",
    ]
    if results["mode"] == "quick":
        out += ["> Quick mode: small request counts and a short soak, for a smoke test. "
                "Run `bench/run.sh` without `--quick` for figures to quote.", ""]
    out += ["## Goals", ""]
    out += table(["goal", "subject", "measured", "target", "result"], [
        [g["text"], g["subject"], fmt(g["value"], 3) + f" {g['unit']}",
         fmt(g["target"], 3) + f" {g['unit']}",
         "not measured" if g["met"] is None else "met" if g["met"]
         else f"**missed** by {g['gap']:,.3f} {g['unit']}"]
        for g in results["goals"]])

    gateway = results.get("gateway")
    if gateway:
        out += ["## Gateway overhead", "",
                f"Stand-in upstream on loopback; load from `oha` ({versions.get('oha')}) "
                f"with keep-alive; concurrency {settings['levels']}; "
                f"{settings['requests_c1']} requests at concurrency 1, "
                f"{settings['requests']} at the others, after a warm-up of "
                f"max({settings['warm_up']}, 2 x concurrency). Each Ascribe and LiteLLM row "
                "is a fresh process (and ledger). Added latency is against the direct row of "
                "the same concurrency. CPU is the gateway process's utime + stime over the "
                "measured requests; peak RSS its VmHWM. `recorded` is the ledger's "
                "`inference.recorded` entries added during the measured requests. "
                f"fsync (4 KiB + fdatasync) median: {gateway['fsync_ms']:.3f} ms.", ""]
        out += table(
            ["target", "conc.", "requests", "ok", "recorded", "p50 ms", "p99 ms",
             "added p50 ms", "added p99 ms", "req/s", "CPU ms/req", "peak RSS MiB"],
            [[row["target"], str(row["concurrency"]), fmt(row["requests"]), fmt(row["ok"]),
              fmt(row["recorded"]) + ("" if row["recorded"] in (None, row["requests"])
                                      else " MISMATCH"),
              fmt(row["p50_ms"], 3), fmt(row["p99_ms"], 3), fmt(row["added_p50_ms"], 3),
              fmt(row["added_p99_ms"], 3), fmt(row["rps"], 0),
              fmt(row["cpu_ms_per_request"], 3), fmt(row["peak_rss_mb"], 1)]
             for row in gateway["gateway"]])
        overflowed = [f"{row['target']} at concurrency {row['concurrency']} "
                      f"({row['listen_overflows']})" for row in gateway["gateway"]
                      if row.get("listen_overflows")]
        if overflowed:
            out += ["Connections dropped by a full listen backlog during: "
                    + ", ".join(overflowed) + ". Each costs its client a 1 s SYN retry, "
                    "which lands in p99.", ""]
        out += ["Ascribe against LiteLLM, same run (latency ratio < 1 and throughput ratio "
                "> 1 favour Ascribe):", ""]
        out += table(["target", "conc.", "p50 ratio", "p99 ratio", "req/s ratio"], [
            [r["target"], str(r["concurrency"]), fmt(r["p50_ratio"], 3),
             fmt(r["p99_ratio"], 3), fmt(r["rps_ratio"], 2)] for r in gateway["ratios"]])
        out += [f"Streams: {settings['streams']} streamed calls one at a time, "
                f"{settings['stream_chunks']} content chunks each, timed to the first body "
                "byte (TTFB), the response headers and the last byte. For Ascribe, "
                "`recorded` and `completed` count the entries of warm-up and measured "
                "streams together.", ""]
        out += table(["target", "streams", "ok", "TTFB p50 ms", "TTFB p99 ms",
                      "headers p50 ms", "last byte p50 ms", "recorded", "completed"], [
            [s["target"], fmt(s["requests"]), fmt(s["ok"]), fmt(s["ttfb_p50_ms"], 3),
             fmt(s["ttfb_p99_ms"], 3), fmt(s["headers_p50_ms"], 3),
             fmt(s["total_p50_ms"], 3),
             fmt(s["recorded"]) + (f" of {s['expected_entries']}"
                                   if s.get("expected_entries") else ""),
             fmt(s["completed"])] for s in gateway["streams"]])

    ledger = results.get("ledger")
    if ledger:
        out += ["## Ledger", "",
                "`cargo bench -p ascribe-store --features testing --bench ledger`, with "
                f"`ASCRIBE_BENCH_ENTRIES={ledger['entries_setting']}`. Physical limits on the "
                f"same machine: fsync (4 KiB + fdatasync) median "
                f"{fmt(ledger.get('fsync_ms'), 3)} ms, so at most "
                f"{fmt(1000 / ledger['fsync_ms'] if ledger.get('fsync_ms') else None, 0)} "
                "commits/s from one writer; SHA-256 on one core "
                f"{fmt(ledger['openssl_sha256_gb_s'], 2)} GB/s (`openssl speed -evp sha256 "
                f"-bytes 16384`), {fmt(ledger.get('sha256_sha2_gb_s'), 2)} GB/s (Rust sha2, "
                "1 MiB blocks).", ""]
        rows = []
        for name, store in ledger["stores"].items():
            for append in store["append"]:
                rows.append([name, f"append, batches of {append['batch']}",
                             fmt(append["entries_per_s"], 0) + " entries/s",
                             fmt(append["ms_per_commit"], 3) + " ms per commit"])
            group = store.get("group_commit")
            if group:
                rows.append([name, f"append, group commit from {group['threads']} threads",
                             fmt(group["entries_per_s"], 0) + " entries/s", ""])
            rows.append([name, f"verify {fmt(store['verify']['entries'])} entries",
                         fmt(store["verify"]["entries_per_s"], 0) + " entries/s", ""])
            proofs = store.get("proofs")
            if proofs:
                rows.append([name, f"inclusion proofs at size {fmt(proofs['tree_size'])}",
                             fmt(proofs["proofs_per_s"], 1) + " proofs/s",
                             fmt(proofs["ms_each"], 2) + " ms each"])
        out += table(["store", "what", "rate", "detail"], rows)

    hashing = results.get("hashing")
    if hashing:
        out += ["## Hashing", "",
                f"Warm: files read once before each run, best of {settings['hash_runs']}. "
                f"Cold: page cache emptied before the run ({hashing['cold_method']}; on a "
                "virtual machine the host may still cache the disk). `sha256sum` hashes the "
                "files one after another; `b3sum` (BLAKE3, a different digest) is shown for "
                "scale. OpenSSL SHA-256 on one core: "
                f"{fmt(hashing['openssl_sha256_gb_s_1core'], 3)} GB/s.", ""]
        out += table(["input", "files", "size MiB", "tool", "cache", "seconds", "GB/s"], [
            [run["input"], str(run["files"]), fmt(run["bytes"] / MIB, 0), run["tool"],
             run["cache"], fmt(run["seconds"], 3), fmt(run["gb_s"], 3)]
            for run in hashing["runs"]])
        out += [f"- {note}" for note in hashing["notes"]] + ([""] if hashing["notes"] else [])

    soak = results.get("soak")
    if soak:
        out += ["## Memory under sustained load", "",
                f"`ascribe serve` (SQLite) for {soak['seconds']} s at concurrency "
                f"{soak['concurrency']}"
                + (f", limited to {soak['rps_limit']} req/s" if soak["rps_limit"] else "")
                + f": {fmt(soak['requests'])} requests, {fmt(soak['answered'])} answered, "
                f"{fmt(soak['recorded'])} recorded in the ledger, {fmt(soak['rps'], 0)} req/s, "
                f"p50 {fmt(soak['p50_ms'], 3)} ms, p99 {fmt(soak['p99_ms'], 3)} ms, "
                f"{fmt(soak['cpu_ms_per_request'], 3)} ms CPU per request.", ""]
        out += table(["RSS at start", "after the first tenth", "at end", "peak (VmHWM)",
                      "growth after the first tenth", "slope"], [[
            f"{soak['rss_start_mb']:.1f} MiB", f"{soak['rss_settled_mb']:.1f} MiB",
            f"{soak['rss_end_mb']:.1f} MiB", f"{soak['peak_rss_mb']:.1f} MiB",
            f"{soak['growth_mb']:+.1f} MiB",
            f"{fmt(soak['slope_mib_per_min'], 3)} MiB/min"]])

    if results["notes"]:
        out += ["## Notes", ""] + [f"- {note}" for note in results["notes"]] + [""]
    return "\n".join(out)


# --------------------------------------------------------------------------------- setup


def command_version(argv: list[Any]) -> str | None:
    """The first line a command prints, without a leading repeat of its own name."""
    try:
        output = subprocess.run([str(arg) for arg in argv], capture_output=True, text=True,
                                timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    text = (output.stdout or output.stderr).strip()
    if not text:
        return None
    line = text.splitlines()[0]
    name = Path(str(argv[0])).name
    return line.removeprefix(name + " ") if line.startswith(name + " ") else line


def describe_setup(bench: Bench) -> dict[str, Any]:
    cpu_model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    memory_kib = next(int(line.split()[1]) for line in
                      Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal:"))
    git = command_version(["git", "-C", bench.root, "rev-parse", "--short", "HEAD"])
    dirty = command_version(["git", "-C", bench.root, "status", "--porcelain"])
    litellm = command_version([bench.litellm.parent / "python", "-c",
                               "import importlib.metadata as m; print(m.version('litellm'))"])
    versions = {
        "ascribe": f"{command_version([bench.ascribe, '--version'])} "
                   f"(git {git}{', uncommitted changes' if dirty else ''})",
        "rustc": command_version(["rustc", "--version"]),
        "oha": command_version([bench.oha_bin, "--version"]),
        "litellm": litellm,
        "python": platform.python_version(),
        "openssl": command_version(["openssl", "version"]),
        "postgresql": bench.psql("test", "SHOW server_version"),
        "sqlite (bundled)": sqlite_version(bench.root),
        "sha256sum": command_version(["sha256sum", "--version"]),
        "b3sum": command_version([bench.b3sum, "--version"]) if bench.b3sum else None,
    }
    return {
        "machine": {
            "cores": os.cpu_count(), "cpu_model": cpu_model,
            "memory_gib": memory_kib / 1024 / 1024, "kernel": platform.release(),
            "load_average_at_start": " ".join(f"{load:.2f}" for load in os.getloadavg()),
        },
        "versions": versions,
    }


def rounded(value: Any) -> Any:
    """`value` with every float to 4 decimals: 0.1 µs in ms, more than any figure here."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [rounded(item) for item in value]
    return value


def sqlite_version(root: Path) -> str | None:
    """The libsqlite3-sys crate Ascribe bundles SQLite through, from Cargo.lock."""
    lock = (root / "Cargo.lock").read_text()
    match = re.search(r'name = "libsqlite3-sys"\nversion = "([^"]+)"', lock)
    return f"libsqlite3-sys {match.group(1)}" if match else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    for name in ("root", "target", "work", "results", "ascribe", "standin", "tool", "oha",
                 "litellm"):
        parser.add_argument(f"--{name}", type=Path, required=True)
    parser.add_argument("--b3sum", type=Path)
    parser.add_argument("--postgres", required=True, help="postgres://USER@HOST:PORT")
    args = parser.parse_args()

    def terminate(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    settings = Settings.load(args.quick)
    bench = Bench(args, settings)
    started, begun = now_utc(), time.monotonic()
    results: dict[str, Any] = {
        "schema": 1, "mode": "quick" if args.quick else "full", "started_at": started,
        "settings": {key: value for key, value in vars(settings).items()},
        "setup": describe_setup(bench), "notes": [],
    }
    results["notes"].append(
        "Load generator, gateways and stand-in upstream share this machine's "
        f"{os.cpu_count()} cores: the figures include that contention, the same for "
        "every target.")
    results["notes"].append(
        "LiteLLM runs with its shipped settings plus a master key (it refuses to start "
        "without one) and LITELLM_LOCAL_MODEL_COST_MAP=True (this machine cannot download "
        "the price list; LiteLLM falls back to the same bundled list anyway).")
    try:
        bench.reset_postgres()
        if "gateway" in settings.sections or "soak" in settings.sections:
            bench.start_upstream()
        if "gateway" in settings.sections:
            log("gateway overhead")
            results["gateway"] = gateway_section(bench)
        openssl = None
        if "ledger" in settings.sections:
            log("ledger")
            results["ledger"] = ledger_section(bench)
            openssl = results["ledger"]["openssl_sha256_gb_s"]
        if "hashing" in settings.sections:
            log("hashing")
            openssl = openssl or openssl_sha256_gb_s(bench)
            results["hashing"] = hashing_section(bench, openssl)
        if "soak" in settings.sections:
            log("memory under sustained load")
            results["soak"] = soak_section(bench)
    finally:
        bench.children.stop_all()
        bench.drop_postgres()
    results["finished_at"] = now_utc()
    results["duration_s"] = time.monotonic() - begun
    results["goals"] = evaluate_goals(results)
    results["notes"] += bench.notes
    bench.results.mkdir(parents=True, exist_ok=True)
    (bench.results / "latest.json").write_text(json.dumps(rounded(results), indent=1) + "\n")
    (bench.results / "latest.md").write_text(render_markdown(results))
    log(f"wrote {bench.results / 'latest.md'} and latest.json")
    for item in results["goals"]:
        state = ("not measured" if item["met"] is None else "met" if item["met"]
                 else f"MISSED by {item['gap']:,.3f} {item['unit']}")
        print(f"    {item['goal']:<28} {item['subject']:<26} {state}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        sys.exit(1)
