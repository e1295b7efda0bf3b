//! The command-line grammar. `--json` output is a stable contract; human output is not.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Every AI decision attributable to the exact model artifact that made it.
#[derive(Debug, Parser)]
#[command(name = "ascribe", version, about, max_term_width = 100)]
pub struct Cli {
    /// Where and which ledger to use.
    #[command(flatten)]
    pub location: LocationArgs,

    /// Read settings from FILE (TOML; see docs/configuration.md).
    ///
    /// Default: `<home>/ascribe.toml` when it exists. Every field can also be set by an
    /// `ASCRIBE_*` variable, which wins over the file; a flag wins over both.
    #[arg(long, global = true, env = "ASCRIBE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Write log lines (on stderr) as `text`, for people, or `json`, one object per line.
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub log_format: Option<crate::config::LogFormat>,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags shared by every command that touches the ledger.
#[derive(Debug, Args)]
pub struct LocationArgs {
    /// Use DIR for the signing key and the default SQLite database.
    ///
    /// Holds `ledger.key` (private, mode 0600), `ledger.pub` and, unless --db says
    /// otherwise, `ledger.db`. Default: `ascribe-data` in the current directory.
    #[arg(long, global = true, env = "ASCRIBE_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// Use the ledger database at URL (sqlite://PATH or postgres://...).
    ///
    /// Default: sqlite://<home>/ledger.db.
    #[arg(long, global = true, env = "ASCRIBE_DB", value_name = "URL")]
    pub db: Option<String>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the gateway (OpenAI and Anthropic APIs, admin API) until SIGTERM or Ctrl-C.
    Serve(crate::commands::serve::ServeArgs),
    /// Create the database, the signing key pair and the ledger's first state.
    Init(InitArgs),
    /// Recompute the whole ledger and check it against its signed tree heads.
    Verify(VerifyArgs),
    /// Read signed tree heads and proofs.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Create, list and revoke caller, admin and auditor keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Print the weight manifest of a file or directory and its checkpoint id.
    Hash(crate::commands::hash::HashArgs),
    /// Register, list and show checkpoints.
    #[command(subcommand)]
    Checkpoint(CheckpointCommand),
    /// Register, list and show deployments.
    #[command(subcommand)]
    Deployment(DeploymentCommand),
    /// Create, rotate, roll back, list and show aliases.
    #[command(subcommand)]
    Alias(AliasCommand),
    /// Make the registry match a declarative TOML file.
    Apply(ApplyArgs),
    /// Answer an auditor's questions.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Send an inference's kept request to the deployment that answered it, and compare.
    Replay(ReplayArgs),
    /// Check receipts handed out with answers.
    #[command(subcommand)]
    Receipt(ReceiptCommand),
    /// Write an evidence package for a window of time: JSONL with proofs, CSV or HTML.
    Export(ExportArgs),
}

/// Flags of `ascribe export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The window's start (RFC 3339, inclusive).
    #[arg(long, value_name = "TIME")]
    pub from: String,
    /// The window's end (RFC 3339, exclusive).
    #[arg(long, value_name = "TIME")]
    pub to: String,
    /// `jsonl` (entries with proofs, verifiable offline), `csv` (one row per inference) or
    /// `html` (a report with a timeline per alias).
    #[arg(long, value_name = "FORMAT", default_value = "jsonl")]
    pub format: String,
    /// Write to PATH; `-` writes to standard output.
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    pub output: PathBuf,
    /// Print what was written as one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// Who a registry change is recorded as made by.
#[derive(Debug, Args)]
pub struct ActorArgs {
    /// Record ACTOR as who made the change. Default: `cli:<login name>`.
    #[arg(long, value_name = "ACTOR")]
    pub actor: Option<String>,
}

/// `--json` on a command that answers.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `ascribe checkpoint ...`.
#[derive(Debug, Subcommand)]
pub enum CheckpointCommand {
    /// Register a checkpoint: self-hosted weights (hashed) or a provider's hosted snapshot.
    Register(CheckpointRegisterArgs),
    /// List every checkpoint.
    List(OutputArgs),
    /// Show one checkpoint with its documents.
    Show {
        /// The checkpoint id (`sha256:...` or `<provider>:<snapshot>`).
        id: String,
        /// Output format.
        #[command(flatten)]
        output: OutputArgs,
    },
}

/// Flags of `ascribe checkpoint register`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["weights", "provider"])))]
pub struct CheckpointRegisterArgs {
    /// Hash the weights file or directory at PATH; its manifest digest is the id.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["provider", "snapshot"])]
    pub weights: Option<PathBuf>,
    /// The provider of a hosted snapshot (`openai`, `anthropic`); needs --snapshot.
    #[arg(long, requires = "snapshot")]
    pub provider: Option<String>,
    /// The provider's pinned snapshot name, such as `gpt-4o-2024-08-06`.
    #[arg(long)]
    pub snapshot: Option<String>,
    /// Store FILE as the model card.
    #[arg(long, value_name = "FILE")]
    pub card: Option<PathBuf>,
    /// Store FILE as the evaluation profile: JSON with `metrics` and `data_digest`.
    #[arg(long = "eval", value_name = "FILE")]
    pub evaluation: Option<PathBuf>,
    /// Store FILE as the training-data lineage: JSON with `sources` (`id`, `digest`).
    #[arg(long, value_name = "FILE")]
    pub lineage: Option<PathBuf>,
    /// A free-text note recorded with the checkpoint.
    #[arg(long)]
    pub note: Option<String>,
    /// Who registers it.
    #[command(flatten)]
    pub actor: ActorArgs,
    /// Output format.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `ascribe deployment ...`.
#[derive(Debug, Subcommand)]
pub enum DeploymentCommand {
    /// Register how to reach a checkpoint.
    Register(DeploymentRegisterArgs),
    /// List every deployment.
    List(OutputArgs),
    /// Show one deployment.
    Show {
        /// The deployment's name.
        name: String,
        /// Output format.
        #[command(flatten)]
        output: OutputArgs,
    },
}

/// Flags of `ascribe deployment register`.
#[derive(Debug, Args)]
pub struct DeploymentRegisterArgs {
    /// The deployment's name; never reused.
    pub name: String,
    /// The checkpoint it serves.
    #[arg(long, value_name = "ID")]
    pub checkpoint: String,
    /// How the upstream speaks: openai, azure-openai, anthropic or openai-compatible.
    #[arg(long)]
    pub dialect: String,
    /// The upstream's base URL, such as `https://api.openai.com/v1`.
    #[arg(long, value_name = "URL")]
    pub base_url: String,
    /// The model name sent upstream; a pinned snapshot, never a moving name, where one exists.
    #[arg(long, value_name = "NAME")]
    pub upstream_model: String,
    /// The served model expected back (`*` matches anything). Default: the snapshot of a
    /// hosted checkpoint, else the upstream model.
    #[arg(long, value_name = "PATTERN")]
    pub expect_served: Option<String>,
    /// Read the provider key from environment variable VAR when forwarding.
    #[arg(long, value_name = "VAR")]
    pub api_key_env: Option<String>,
    /// Accept a moving upstream name (`gpt-4o`, `*-latest`); flagged in every audit answer.
    #[arg(long)]
    pub allow_moving_name: bool,
    /// Keep only digests of bodies (`digest`, the default) or the bodies too (`full`).
    #[arg(long, default_value = "digest")]
    pub retention: String,
    /// Who registers it.
    #[command(flatten)]
    pub actor: ActorArgs,
    /// Output format.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `ascribe alias ...`.
#[derive(Debug, Subcommand)]
pub enum AliasCommand {
    /// Create an alias pointing at a deployment.
    Create {
        /// The name callers send as `model`.
        name: String,
        /// The deployment it points at.
        #[arg(long, value_name = "DEPLOYMENT")]
        to: String,
        /// Refuse every later rotation that does not carry --evidence.
        #[arg(long)]
        require_evidence: bool,
        /// On a served-model mismatch: `flag` (record, release; default) or `reject`.
        #[arg(long, default_value = "flag")]
        on_mismatch: String,
        /// The model name answers carry: `served` (what the provider said; default) or
        /// `requested` (the alias, for clients that break otherwise; the ledger keeps both).
        #[arg(long, default_value = "served")]
        answer_model: String,
        /// Who creates it.
        #[command(flatten)]
        actor: ActorArgs,
        /// Output format.
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Move an alias to another deployment.
    Rotate {
        /// The alias.
        name: String,
        /// The deployment it moves to.
        #[arg(long, value_name = "DEPLOYMENT")]
        to: String,
        /// Why: upgrade, refresh, capacity, rollback or incident.
        #[arg(long)]
        kind: String,
        /// Why, in words.
        #[arg(long)]
        reason: String,
        /// Evidence: a file (stored, digest recorded) or a URI.
        #[arg(long, value_name = "FILE|URI")]
        evidence: Option<String>,
        /// Who rotates it.
        #[command(flatten)]
        actor: ActorArgs,
        /// Output format.
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Move an alias back to the deployment it pointed at before its current one.
    Rollback {
        /// The alias.
        name: String,
        /// Why, in words.
        #[arg(long)]
        reason: String,
        /// Record the rotation as KIND: `rollback` (default) or `incident`.
        #[arg(long, default_value = "rollback")]
        kind: String,
        /// Evidence: a file (stored, digest recorded) or a URI.
        #[arg(long, value_name = "FILE|URI")]
        evidence: Option<String>,
        /// Who rolls it back.
        #[command(flatten)]
        actor: ActorArgs,
        /// Output format.
        #[command(flatten)]
        output: OutputArgs,
    },
    /// List every alias and where it points now.
    List(OutputArgs),
    /// Show one alias with its whole history.
    Show {
        /// The alias.
        name: String,
        /// Output format.
        #[command(flatten)]
        output: OutputArgs,
    },
}

/// Flags of `ascribe apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The registry file (TOML with [[checkpoint]], [[deployment]] and [[alias]] tables).
    pub file: PathBuf,
    /// Print the changes without writing them.
    #[arg(long)]
    pub dry_run: bool,
    /// The reason recorded for rotations whose table gives none.
    #[arg(long)]
    pub reason: Option<String>,
    /// Who applies it.
    #[command(flatten)]
    pub actor: ActorArgs,
    /// Output format.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `ascribe audit ...`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Which checkpoint produced an inference, why it was behind the alias, and the proof.
    Inference {
        /// The inference id (`Ascribe-Inference-Id`).
        id: String,
        /// Output format.
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Observations: served-model mismatches, new fingerprints, identity probe changes.
    Observations {
        /// Only those about deployment NAME.
        #[arg(long, value_name = "NAME")]
        deployment: Option<String>,
        /// Output format.
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Every inference sent with a decision reference, each answered as `audit inference`.
    Decision {
        /// The caller's decision reference (`Ascribe-Decision`).
        reference: String,
        /// Output format.
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Every period a checkpoint was in production, behind which aliases, and what it served.
    Checkpoint {
        /// The checkpoint id (`sha256:...` or `<provider>:<snapshot>`).
        id: String,
        /// Output format.
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Inferences in a window, optionally of one caller, alias or checkpoint, a page at a time.
    Inferences {
        /// The window's start (RFC 3339, inclusive).
        #[arg(long, value_name = "TIME")]
        from: String,
        /// The window's end (RFC 3339, exclusive).
        #[arg(long, value_name = "TIME")]
        to: String,
        /// Only inferences made with caller key NAME.
        #[arg(long, value_name = "NAME")]
        caller: Option<String>,
        /// Only inferences through alias NAME.
        #[arg(long, value_name = "NAME")]
        alias: Option<String>,
        /// Only inferences checkpoint ID served.
        #[arg(long, value_name = "ID")]
        checkpoint: Option<String>,
        /// Only inferences that carry a decision reference.
        #[arg(long)]
        with_decision: bool,
        /// Continue after SEQ: the `next` of the previous page.
        #[arg(long, value_name = "SEQ")]
        after: Option<u64>,
        /// Rows per page (1 to 1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Output format.
        #[command(flatten)]
        output: OutputArgs,
    },
    /// What an alias resolved to at an instant, or its timeline over a window.
    #[command(group(clap::ArgGroup::new("when").required(true).args(["at", "from"])))]
    Alias {
        /// The alias.
        name: String,
        /// The instant (RFC 3339), resolved with the half-open rule: a rotation at T applies at T.
        #[arg(long, value_name = "TIME", conflicts_with_all = ["from", "to"])]
        at: Option<String>,
        /// The window's start (RFC 3339, inclusive).
        #[arg(long, value_name = "TIME", requires = "to")]
        from: Option<String>,
        /// The window's end (RFC 3339, exclusive).
        #[arg(long, value_name = "TIME")]
        to: Option<String>,
        /// Output format.
        #[command(flatten)]
        output: OutputArgs,
    },
}

/// Flags of `ascribe init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Name the ledger ORIGIN: the first line of every tree head, also the key's name.
    ///
    /// Default: `ascribe/<8 random hex digits>`, unique per ledger.
    #[arg(long, value_name = "ORIGIN")]
    pub origin: Option<String>,

    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `ascribe verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Trust the public key in FILE instead of `<home>/ledger.pub`.
    ///
    /// The key the database itself names is never trusted: it could have been replaced.
    #[arg(long, value_name = "FILE")]
    pub public_key: Option<PathBuf>,

    /// Verify the JSONL evidence package at PATH instead of the database, offline.
    #[arg(long, value_name = "PATH")]
    pub export: Option<PathBuf>,

    /// Also fail when entries follow the latest signed tree head, naming the first of them.
    ///
    /// For a ledger whose writers have stopped: `ascribe serve` signs a head when it stops,
    /// so an unsigned tail is left by a crash or was added behind the writers' backs.
    #[arg(long, conflicts_with = "export")]
    pub all_signed: bool,

    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `ascribe ledger ...`.
#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Print the latest signed tree head as its note text.
    Head {
        /// Print one JSON document instead of the note text.
        #[arg(long)]
        json: bool,
    },
    /// Print an inclusion proof (--index, --size) or a consistency proof (--from, --to).
    Proof(ProofArgs),
    /// Print the ledger's public key, the one verifiers need.
    PublicKey,
}

/// Flags of `ascribe ledger proof`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("kind").required(true).args(["index", "from"])))]
pub struct ProofArgs {
    /// Prove that entry INDEX (its seq) is in the tree.
    #[arg(long, requires = "size", value_name = "INDEX")]
    pub index: Option<u64>,

    /// The tree size the inclusion proof is for. Default: none, required with --index.
    #[arg(long, value_name = "SIZE")]
    pub size: Option<u64>,

    /// Prove that the tree of size FROM is a prefix of the tree of size --to.
    #[arg(long, requires = "to", value_name = "FROM")]
    pub from: Option<u64>,

    /// The larger tree size of a consistency proof.
    #[arg(long, value_name = "TO")]
    pub to: Option<u64>,

    /// Accepted for uniformity: proofs are always printed as one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// `ascribe key ...`.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a key and print its token once.
    Create {
        /// The key's name, recorded as the actor of everything it does.
        name: String,
        /// What the key may do: caller (inference), admin (registry), auditor (read-only).
        #[arg(long)]
        role: String,
        /// Record ACTOR as who created it. Default: `cli:<login name>`.
        #[arg(long, value_name = "ACTOR")]
        actor: Option<String>,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key; it stops working at once.
    Revoke {
        /// The key's name.
        name: String,
        /// Record ACTOR as who revoked it. Default: `cli:<login name>`.
        #[arg(long, value_name = "ACTOR")]
        actor: Option<String>,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List every key, active and revoked.
    List {
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn proof_needs_a_kind_and_its_partner() {
        assert!(Cli::try_parse_from(["ascribe", "ledger", "proof"]).is_err());
        assert!(Cli::try_parse_from(["ascribe", "ledger", "proof", "--index", "1"]).is_err());
        assert!(Cli::try_parse_from(["ascribe", "ledger", "proof", "--from", "1"]).is_err());
        let cli =
            Cli::try_parse_from(["ascribe", "ledger", "proof", "--index", "1", "--size", "4"])
                .expect("valid");
        let Command::Ledger(LedgerCommand::Proof(proof)) = cli.command else {
            panic!("parsed as another command");
        };
        assert_eq!((proof.index, proof.size), (Some(1), Some(4)));
    }

    #[test]
    fn location_flags_default_to_none_and_are_global() {
        let cli = Cli::try_parse_from(["ascribe", "verify"]).expect("valid");
        assert_eq!(cli.location.db, None);
        let cli = Cli::try_parse_from(["ascribe", "verify", "--db", "sqlite://x.db", "--json"])
            .expect("valid");
        assert_eq!(cli.location.db.as_deref(), Some("sqlite://x.db"));
    }
}

/// Flags of `ascribe replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The inference id (`Ascribe-Inference-Id`).
    pub id: String,
    /// Give up on the upstream after SECONDS. Default: 120.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub timeout: u64,
    /// Record ACTOR as who asked for the replay. Default: `cli:<login name>`.
    #[command(flatten)]
    pub actor: ActorArgs,
    /// Output format.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `ascribe receipt ...`.
#[derive(Debug, Subcommand)]
pub enum ReceiptCommand {
    /// Check a receipt's signature offline and print what it states.
    Verify {
        /// The receipt token (`Ascribe-Receipt`).
        token: String,
        /// Trust the public key in FILE (default: `<home>/ledger.pub`).
        #[arg(long, value_name = "FILE")]
        public_key: Option<PathBuf>,
        /// Also check that the ledger (`--db`) still holds the entry: its `seq` and leaf hash
        /// must have an inclusion proof in the latest signed tree head, and the stored entry
        /// must hash to that leaf.
        #[arg(long)]
        against_ledger: bool,
        /// Output format.
        #[command(flatten)]
        output: OutputArgs,
    },
}
