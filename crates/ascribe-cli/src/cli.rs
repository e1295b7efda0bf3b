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
