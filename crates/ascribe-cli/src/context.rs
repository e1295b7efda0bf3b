//! Resolves where the ledger is and opens it, the same way for every command.

use std::path::PathBuf;

use anyhow::Context as _;
use ascribe_ledger::NoteVerifier;
use ascribe_store::{
    open_backend, Backend, DatabaseLocation, Ledger, SigningKeyFiles, StoreError, SystemClock,
    TreeHeadPolicy,
};

use crate::cli::LocationArgs;
use crate::config::Config;

/// The home directory used when neither --home nor ASCRIBE_HOME is given.
const DEFAULT_HOME: &str = "ascribe-data";

/// Where one invocation's ledger lives.
pub struct Context {
    /// The home directory: the signing key files, the default database and configuration.
    pub home: PathBuf,
    /// The database.
    pub location: DatabaseLocation,
    /// The signing key files.
    pub keys: SigningKeyFiles,
}

impl Context {
    /// Resolves --home and --db: the flag (or its `ASCRIBE_*` variable), else the
    /// configuration file's `home` and `db`, else the defaults.
    pub fn resolve(args: &LocationArgs, config: &Config) -> anyhow::Result<Context> {
        let home = home_directory(args, config);
        let url = args.db.as_ref().or(config.db.as_ref());
        let location = match url {
            Some(url) => url.parse()?,
            None => DatabaseLocation::Sqlite(home.join("ledger.db")),
        };
        let keys = SigningKeyFiles::in_directory(&home);
        Ok(Context {
            home,
            location,
            keys,
        })
    }

    /// Opens the database of an initialised ledger.
    pub fn backend(&self) -> anyhow::Result<Box<dyn Backend>> {
        Ok(open_backend(&self.location, false)?)
    }

    /// The public key to trust: the file given, else `<home>/ledger.pub`; never the key the
    /// database names, which an attacker could have replaced.
    pub fn trusted_key(&self, file: Option<&std::path::Path>) -> anyhow::Result<NoteVerifier> {
        match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
                Ok(NoteVerifier::from_public_key(&text)?)
            }
            None => Ok(self.keys.load_verifier()?),
        }
    }

    /// Opens the ledger for writing, with every projection registered, signing a tree head
    /// after each batch so that what a command wrote is covered when it exits.
    pub fn ledger(&self) -> anyhow::Result<Ledger> {
        let signer = self
            .keys
            .load_signer()
            .context("cannot load the ledger's signing key")?;
        let backend = self.backend()?;
        let mut ledger = Ledger::open(
            backend,
            signer,
            Box::new(SystemClock),
            TreeHeadPolicy::EveryBatch,
        )?;
        ledger.add_projection(Box::new(ascribe_access::AccessKeysProjection));
        ledger.add_projection(Box::new(ascribe_registry::RegistryProjection));
        ledger.add_projection(Box::new(ascribe_inference::InferenceProjection));
        Ok(ledger)
    }
}

/// The home directory: --home (or `ASCRIBE_HOME`), else the configuration's `home`, else
/// `ascribe-data` in the current directory.
pub fn home_directory(args: &LocationArgs, config: &Config) -> PathBuf {
    args.home
        .clone()
        .or_else(|| config.home.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_HOME))
}

/// The actor named by --actor, or `cli:<login name>`.
pub fn actor(args: &crate::cli::ActorArgs) -> String {
    args.actor.clone().unwrap_or_else(default_actor)
}

/// The actor recorded for CLI changes when --actor is not given: `cli:<login name>`.
pub fn default_actor() -> String {
    let user = ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|name| std::env::var(name).ok());
    let user = user.or_else(login_name_of_this_process);
    format!("cli:{}", user.unwrap_or_else(|| "unknown".to_owned()))
}

/// The login name of this process's user, from its uid and `/etc/passwd`, for when the
/// environment names no user (containers, CI).
fn login_name_of_this_process() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?;
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        (fields.nth(1)? == uid).then(|| name.to_owned())
    })
}

/// A sentence telling the user what to do about an error, where one is known.
pub fn hint_for(error: &anyhow::Error) -> Option<String> {
    let store_error = error
        .chain()
        .find_map(|cause| cause.downcast_ref::<StoreError>());
    match store_error? {
        StoreError::NotInitialised(_) => {
            Some("Or point --home/--db (ASCRIBE_HOME/ASCRIBE_DB) at an existing ledger.".to_owned())
        }
        StoreError::Postgres(_) => Some(
            "Check that PostgreSQL is reachable and that --db or ASCRIBE_DB names the right \
             database."
                .to_owned(),
        ),
        StoreError::File { cause, .. } if cause.kind() == std::io::ErrorKind::NotFound => Some(
            "Run `ascribe init` first, or point --home (ASCRIBE_HOME) at the directory holding \
             the ledger.key and ledger.pub that `ascribe init` wrote."
                .to_owned(),
        ),
        StoreError::File { .. } => Some(
            "Check --home (ASCRIBE_HOME): it must hold the ledger.key and ledger.pub that \
             `ascribe init` wrote."
                .to_owned(),
        ),
        _ => None,
    }
}
