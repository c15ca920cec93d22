//! `repere-server`: runs the sync hub (`serve`, the default) or administers its data
//! directory (`admin …`). Logs go to stderr (RUST_LOG, default `info`; the server's as
//! JSON lines with `--log-format json`); commands print what scripts need (ids, codes)
//! alone on stdout.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use repere_server::coord::Workspace;
use repere_server::http::{self, HttpConfig, MetricsConfig};
use repere_server::hub::ErasureReason;
use repere_server::keys::ServerKey;
use repere_server::serve::{self, ServeLimits};
use repere_server::storage::register::ErasureRegister;
use repere_server::storage::{Role, WipeOrder};
use repere_server::storage::Storage;
use repere_server::storage::postgres::PostgresStorage;
use repere_server::{Hub, SqliteStorage, demo};
use tracing_subscriber::EnvFilter;
use uuid::Uuid;

#[derive(Parser)]
#[command(
    name = "repere-server",
    version,
    about = "Repère sync server: the hub the field tablets sync their records with",
    long_about = "Repère sync server: the hub the field tablets sync their records with.\n\n\
        Without a command it runs the server (`serve`). `admin` commands work on the same \
        data directory, also while the server runs.\n\n\
        Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=debug) to change their level.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the sync server (the default when no command is given)
    Serve(ServeArgs),
    /// Manage organisations, teams, users, enrolment codes, devices and erasures
    Admin(AdminArgs),
}

#[derive(Args, Clone)]
struct DataDirArg {
    /// Directory of the server's database (repere.db); created if missing
    #[arg(long, env = "REPERE_DATA_DIR", default_value = "./repere-data")]
    data_dir: PathBuf,
    /// The server key's file (64 hex characters, outside the data directory; make one with
    /// `admin new-key`): the database is encrypted with it. Or REPERE_KEY (the hex key)
    #[arg(long, env = "REPERE_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// A PostgreSQL database (`postgres://user@host:5432/name`) instead of the embedded
    /// SQLite file: several instances can then serve it. Without it, repere.db in the data
    /// directory
    #[arg(long, env = "REPERE_DATABASE_URL", hide_env_values = true)]
    database: Option<String>,
}

#[derive(Args, Clone)]
struct AdminDataDirArg {
    /// Directory of the server's database (repere.db); created if missing
    #[arg(
        long,
        env = "REPERE_DATA_DIR",
        default_value = "./repere-data",
        global = true
    )]
    data_dir: PathBuf,
    /// The server key's file (see `serve --help`); or REPERE_KEY (the hex key)
    #[arg(long, env = "REPERE_KEY_FILE", global = true)]
    key_file: Option<PathBuf>,
    /// The PostgreSQL database the server runs on (see `serve --help`)
    #[arg(long, env = "REPERE_DATABASE_URL", hide_env_values = true, global = true)]
    database: Option<String>,
}

#[derive(Args, Clone)]
struct ServeArgs {
    /// Address and port to listen on
    #[arg(long, env = "REPERE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[command(flatten)]
    data: DataDirArg,
    /// On an empty database, create a demo organisation with two teams, fictional records
    /// and enrolment codes (printed on stdout). Never seeds a database that has data.
    #[arg(long, env = "REPERE_DEMO")]
    demo: bool,
    /// Largest request body accepted, in bytes (larger ones get 413 too_large)
    #[arg(long, env = "REPERE_MAX_BODY_BYTES", default_value_t = 8 * 1024 * 1024)]
    max_body_bytes: usize,
    /// Enrolment attempts allowed per client address and minute (more get 429)
    #[arg(long, env = "REPERE_ENROL_PER_MINUTE", default_value_t = 10)]
    enrol_per_minute: u32,
    /// Seconds a client has to send a request's head (request line and headers) from its
    /// first byte, or from connecting; slower connections are closed
    #[arg(long, env = "REPERE_HEADER_READ_TIMEOUT_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    header_read_timeout_secs: u64,
    /// Seconds a client has to send a request's body once its head has arrived (slower
    /// ones get 408 and the connection is closed)
    #[arg(long, env = "REPERE_BODY_READ_TIMEOUT_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    body_read_timeout_secs: u64,
    /// Seconds a kept-alive connection may wait for its next request, or a client may
    /// stop taking an answer, before the connection is closed
    #[arg(long, env = "REPERE_IDLE_TIMEOUT_SECS", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    idle_timeout_secs: u64,
    /// Connections open at once; past it, a new connection gets 503 and is closed
    #[arg(long, env = "REPERE_MAX_CONNECTIONS", default_value_t = 512,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    max_connections: u32,
    /// Connections open at once from one client address (the --trusted-proxy aside);
    /// past it, a new connection from that address gets 503 and is closed
    #[arg(long, env = "REPERE_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    max_connections_per_address: u32,
    /// Requests handled at once (/healthz aside); more wait for a turn
    #[arg(long, env = "REPERE_MAX_REQUESTS", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    max_requests: u32,
    /// Seconds a request waits for a turn before it gets 503
    #[arg(long, env = "REPERE_QUEUE_TIMEOUT_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    queue_timeout_secs: u64,
    /// Serve the coordinators' pages over plain HTTP (local trials only): cookies lose
    /// `Secure` and their `__Host-` prefix, and no HSTS is sent. Without it the pages
    /// expect to be reached over HTTPS (behind a TLS reverse proxy) and browsers refuse to
    /// keep a session over plain HTTP. Warned about at every start
    #[arg(long, env = "REPERE_INSECURE_HTTP")]
    insecure_http: bool,
    /// With --demo: the demo coordinators' password (default: a random one, printed)
    #[arg(long, env = "REPERE_DEMO_PASSWORD", hide_env_values = true)]
    demo_password: Option<String>,
    /// The server's address as tablets reach it (`https://repere.example.org`), put into
    /// the enrolment QR codes and links. Without it, the address the administrator's
    /// browser used (its Host header) goes into them
    #[arg(long, env = "REPERE_PUBLIC_URL")]
    public_url: Option<repere_server::web::admin::PublicUrl>,
    /// The address of the reverse proxy in front of the server: from it (and only from it)
    /// the coordinators' sign-in throttle takes the client address from X-Forwarded-For
    #[arg(long, env = "REPERE_TRUSTED_PROXY")]
    trusted_proxy: Option<std::net::IpAddr>,
    /// A coordinators' session unused for this many minutes is over
    #[arg(long, env = "REPERE_SESSION_IDLE_MINUTES", default_value_t = 120,
          value_parser = clap::value_parser!(u32).range(5..=1440))]
    session_idle_minutes: u32,
    /// A coordinators' session is over this many hours after sign-in, used or not
    #[arg(long, env = "REPERE_SESSION_MAX_HOURS", default_value_t = 12,
          value_parser = clap::value_parser!(u32).range(1..=168))]
    session_max_hours: u32,
    /// The bearer token that /metrics asks for (give it in REPERE_METRICS_TOKEN rather than
    /// on the command line). Without one, /metrics answers only clients on loopback
    #[arg(long, env = "REPERE_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// A tablet that has not synced for more than this many days counts as silent in
    /// /metrics (repere_tablets_silent)
    #[arg(long, env = "REPERE_SILENT_TABLET_DAYS", default_value_t = 7,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    silent_tablet_days: u32,
    /// How the server's log lines are written on stderr: `text` for people, `json` (one
    /// JSON object per line) for a log collector
    #[arg(long, env = "REPERE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Seconds /healthz waits for the database's write lock before it answers 503 (a
    /// request may hold it that long without the server being stuck)
    #[arg(long, env = "REPERE_HEALTH_LOCK_TIMEOUT_SECS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=60))]
    health_lock_timeout_secs: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Args)]
struct AdminArgs {
    #[command(flatten)]
    data: AdminDataDirArg,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an organisation; prints its id
    CreateOrg {
        /// e.g. "Mission Locale du Nord Meusien"
        #[arg(long)]
        name: String,
    },
    /// Create a team (binôme) in an organisation; prints its id
    CreateTeam {
        /// Organisation id
        #[arg(long)]
        org: Uuid,
        /// e.g. "Binôme Stenay"
        #[arg(long)]
        name: String,
    },
    /// Add a member to a team's roster (sent to its tablets); prints the member's id
    AddMember {
        /// Team id
        #[arg(long)]
        team: Uuid,
        /// The display name the tablets show (e.g. "Amina B."): personal data
        #[arg(long)]
        name: String,
    },
    /// Change a team member's display name
    RenameMember {
        /// Member id
        #[arg(long)]
        member: Uuid,
        #[arg(long)]
        name: String,
    },
    /// Mark a team member inactive (left the team): past records keep their name, the
    /// tablets no longer offer them for new ones
    DeactivateMember {
        /// Member id
        #[arg(long)]
        member: Uuid,
    },
    /// Mark a team member active again
    ReactivateMember {
        /// Member id
        #[arg(long)]
        member: Uuid,
    },
    /// List a team's members: id, active or not, display name
    ListMembers {
        /// Team id
        #[arg(long)]
        team: Uuid,
    },
    /// Create a user of an organisation; prints its id (then: set-password)
    CreateUser {
        /// Organisation id
        #[arg(long)]
        org: Uuid,
        #[arg(long)]
        name: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        /// What the user types to sign in to the coordinators' pages (e.g. an email address)
        #[arg(long)]
        login: Option<String>,
    },
    /// Set a user's password for the coordinators' pages (coordinator and admin roles only
    /// can sign in). The password is read from REPERE_PASSWORD if set, else from the first
    /// line of standard input. Ends the user's open sessions.
    SetPassword {
        /// User id (or current login)
        #[arg(long)]
        user: String,
        /// Set (or change) the user's login at the same time
        #[arg(long)]
        login: Option<String>,
    },
    /// Set an organisation's convention targets, shown on the dashboard with the progress
    SetTargets {
        /// Organisation id
        #[arg(long)]
        org: Uuid,
        /// Young people identified (invisibles) over the window
        #[arg(long)]
        identified: Option<u32>,
        /// Young people mobilised over the window
        #[arg(long)]
        mobilised: Option<u32>,
        /// First day of the window (YYYY-MM-DD)
        #[arg(long)]
        from: chrono::NaiveDate,
        /// Last day of the window, included (YYYY-MM-DD)
        #[arg(long)]
        to: chrono::NaiveDate,
    },
    /// Issue a one-time enrolment code for a team's tablet; prints the code
    IssueCode {
        /// Team id
        #[arg(long)]
        team: Uuid,
        /// Hours before the code expires
        #[arg(long, default_value_t = 168, value_parser = clap::value_parser!(u32).range(1..=2160))]
        ttl_hours: u32,
    },
    /// Disable a user of the coordinators' pages: sign-in is refused and their sessions end
    /// (undo with enable-user)
    DisableUser {
        /// User id (or login)
        #[arg(long)]
        user: String,
    },
    /// Let a disabled user sign in again
    EnableUser {
        /// User id (or login)
        #[arg(long)]
        user: String,
    },
    /// End every open session of a user (they sign in again)
    RevokeSessions {
        /// User id (or login)
        #[arg(long)]
        user: String,
    },
    /// Remove a user's second factor and recovery codes (lost phone) and end their
    /// sessions; they sign in with the password and set it up again from "Mon compte"
    ResetSecondFactor {
        /// User id (or login)
        #[arg(long)]
        user: String,
    },
    /// List enrolled devices (tab-separated: id, team, state, enrolled, last sync, label)
    ListDevices {
        /// Only this team's devices
        #[arg(long)]
        team: Option<Uuid>,
    },
    /// Revoke a device: its token is refused from now on
    RevokeDevice {
        /// Device id (see list-devices)
        device_id: Uuid,
        /// Also order the tablet to delete its store at its next contact, after sending
        /// its unsent changes (a lost tablet)
        #[arg(long)]
        wipe: bool,
        /// With --wipe: take nothing more from it, delete at once (a stolen tablet)
        #[arg(long, requires = "wipe")]
        urgent: bool,
    },
    /// Erase a record everywhere (data-protection request): its document is deleted, a
    /// content-free tombstone stays, and tablets delete their copy at their next sync
    Erase {
        /// Record id
        record_id: Uuid,
        /// Why, for the journal: request (of the person), retention, error
        #[arg(long, default_value = "request", value_parser = parse_reason)]
        reason: ErasureReason,
    },
    /// Apply the retention rules now (the server also does it every day): erase every file
    /// whose retention period has ended. With --dry-run, only list what is due
    Purge {
        /// List, erase nothing
        #[arg(long)]
        dry_run: bool,
        /// With --dry-run: as of this day (YYYY-MM-DD) instead of today
        #[arg(long, requires = "dry_run")]
        as_of: Option<chrono::NaiveDate>,
        /// With --dry-run: also what falls due within this many days
        #[arg(long, default_value_t = repere_server::retention::NOTICE_DAYS, requires = "dry_run")]
        within_days: i64,
    },
    /// Show the retention rules, or set an organisation's (months after the last contact;
    /// the CNIL default is 24)
    Retention {
        /// The organisation whose rule to set
        #[arg(long, requires = "months")]
        organisation: Option<Uuid>,
        /// Months after the last contact
        #[arg(long, requires = "organisation")]
        months: Option<u32>,
    },
    /// Rectify a record without keeping its history (data-protection request): it is
    /// rewritten as a new generation holding only its current values with these changes;
    /// tablets replace their copy at their next sync. With no change, only the history goes.
    Rectify {
        /// Record id
        record_id: Uuid,
        /// FIELD=VALUE: the new value (JSON if it reads as JSON, else text)
        #[arg(long = "set", value_name = "FIELD=VALUE")]
        set: Vec<String>,
        /// FIELD: empty the field
        #[arg(long = "clear", value_name = "FIELD")]
        clear: Vec<String>,
        /// FIELD=ITEM: take one item out of a set field (a profile flag, say)
        #[arg(long = "remove", value_name = "FIELD=ITEM")]
        remove: Vec<String>,
    },
    /// Overview of organisations, teams, users and record counts
    List,
    /// Print the DPIA data map (Markdown, in French): every stored field with its category,
    /// purpose, who sees it, where it is kept and for how long (docs/DATA-MAP.md)
    DataMap,
    /// Write a consistent copy of the database to a new file (the server may be running)
    Backup {
        /// The file to create
        #[arg(long)]
        to: PathBuf,
    },
    /// Write a new random server key to a file readable by its owner only (keep it outside
    /// the data directory, and a copy of it apart from the backups)
    NewKey {
        /// The file to create
        #[arg(long)]
        to: PathBuf,
    },
    /// Put a backup in place of the database (stop the server first). The log gets a new
    /// epoch: at their next sync, tablets offer the server everything it lacks and pull
    /// again from the start, so nothing acknowledged since the backup is lost
    Restore {
        /// A file written by `admin backup`
        #[arg(long)]
        from: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Coordinator,
    Admin,
    Field,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Coordinator => Role::Coordinator,
            RoleArg::Admin => Role::Admin,
            RoleArg::Field => Role::Field,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The server logs its activity; admin commands only their problems (their output is
    // the answer). RUST_LOG overrides both.
    let default_level = if matches!(cli.command, Some(Command::Admin(_))) {
        "warn"
    } else {
        "info"
    };
    let format = match &cli.command {
        None => cli.serve.log_format,
        Some(Command::Serve(args)) => args.log_format,
        Some(Command::Admin(_)) => LogFormat::Text,
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    match format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .init(),
        // One object per line: time, level, target, and the event's fields (`message`
        // and the ids and counts) at the top level.
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init(),
    }
    let result = match cli.command {
        None => serve(cli.serve),
        Some(Command::Serve(args)) => serve(args),
        Some(Command::Admin(args)) => admin(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            if format == LogFormat::Json {
                // Stderr stays JSON lines for the collector.
                tracing::error!(error = %message, "repere-server stopped on an error");
            } else {
                eprintln!("error: {message}");
            }
            ExitCode::FAILURE
        }
    }
}

/// A warning nobody should miss: on stderr as is, and in the log (only there in JSON, so
/// that stderr stays JSON lines).
fn warn_operator(format: LogFormat, text: &str) {
    if format == LogFormat::Text {
        eprintln!("{text}");
    }
    tracing::warn!("{text}");
}

/// Takes the data directory's lock file (`server.lock`), held while the returned file is
/// open; `busy` says why it cannot be taken.
fn claim_data_dir(data_dir: &Path, busy: impl Fn() -> String) -> Result<std::fs::File, String> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| format!("cannot create the data directory: {e}"))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(data_dir.join("server.lock"))
        .map_err(|e| format!("cannot open the data directory's lock file: {e}"))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(busy()),
        Err(std::fs::TryLockError::Error(e)) => Err(format!("cannot lock the data directory: {e}")),
    }
}

/// The server key from `--key-file` / `REPERE_KEY_FILE`, or `REPERE_KEY`; `None` if neither.
fn server_key(key_file: Option<&Path>, data_dir: &Path) -> Result<Option<ServerKey>, String> {
    if let Some(file) = key_file {
        return ServerKey::from_file(file, data_dir)
            .map(Some)
            .map_err(|e| e.to_string());
    }
    match std::env::var("REPERE_KEY") {
        Ok(hex) => ServerKey::from_hex(&hex)
            .map(Some)
            .map_err(|e| format!("REPERE_KEY: {e}")),
        Err(_) => Ok(None),
    }
}

fn restore(
    data_dir: &Path,
    database: Option<&str>,
    backup: &Path,
    key: Option<&ServerKey>,
) -> Result<(), String> {
    // On PostgreSQL the instances cannot be seen from here: the operator stops them all.
    let _stopped = match database {
        Some(url) => {
            PostgresStorage::restore_into(url, backup)
                .map_err(|e| format!("restore failed: {e}"))?;
            None
        }
        None => {
            let stopped = claim_data_dir(data_dir, || {
                "the server is running on this data directory: stop it before restoring"
                    .to_string()
            })?;
            SqliteStorage::restore_into(data_dir, backup, key)
                .map_err(|e| format!("restore failed: {e}"))?;
            Some(stopped)
        }
    };
    let hub = open_hub(data_dir, database, key)?;
    // Erasures and rectifications made after the backup are made again before any tablet
    // can pull.
    let again = hub.reapply_register().map_err(|e| e.to_string())?;
    let epoch = hub.new_log_epoch().map_err(|e| e.to_string())?;
    eprintln!(
        "{} record(s) erased after the backup were erased again; {} record(s) rectified after \
         the backup were rewritten again, the fields rectified emptied",
        again.erased, again.rewritten
    );
    eprintln!(
        "backup restored, log epoch {epoch:016x}: at their next sync, tablets send what the \
         server lacks and pull again from the start"
    );
    Ok(())
}

fn parse_reason(s: &str) -> Result<ErasureReason, String> {
    ErasureReason::parse(s).ok_or_else(|| {
        let words: Vec<&str> = ErasureReason::ALL.iter().map(|r| r.as_str()).collect();
        format!("one of: {}", words.join(", "))
    })
}

/// The changes `admin rectify` asks for, as the record's fields to write.
fn rectify_changes(
    hub: &Hub,
    id: Uuid,
    set: &[String],
    clear: &[String],
    remove: &[String],
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let split = |arg: &str| -> Result<(String, String), String> {
        arg.split_once('=')
            .map(|(f, v)| (f.trim().to_string(), v.to_string()))
            .ok_or_else(|| {
                format!(
                    "expected FIELD=VALUE, got {:?}",
                    arg.chars().take(40).collect::<String>()
                )
            })
    };
    let mut changes = serde_json::Map::new();
    for arg in set {
        let (field, value) = split(arg)?;
        let value = serde_json::from_str(&value).unwrap_or(serde_json::Value::String(value));
        changes.insert(field, value);
    }
    for field in clear {
        changes.insert(field.trim().to_string(), serde_json::Value::Null);
    }
    if !remove.is_empty() {
        let stored = hub
            .storage()
            .read_with(|tx| tx.document(id))
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("record {id} does not exist"))?;
        let current: serde_json::Map<String, serde_json::Value> = stored
            .fields
            .as_deref()
            .and_then(|f| serde_json::from_str(f).ok())
            .ok_or_else(|| format!("record {id}: its fields cannot be read"))?;
        for arg in remove {
            let (field, item) = split(arg)?;
            let items = changes
                .get(&field)
                .or_else(|| current.get(&field))
                .and_then(|v| v.as_array())
                .cloned()
                .ok_or_else(|| format!("{field} is not a set field of this record"))?;
            let before = items.len();
            let kept: Vec<_> = items
                .into_iter()
                .filter(|v| v.as_str() != Some(item.as_str()))
                .collect();
            if kept.len() == before {
                return Err(format!("{field} does not hold {item}"));
            }
            changes.insert(field, serde_json::Value::Array(kept));
        }
    }
    Ok(changes)
}

/// The hub on its database: PostgreSQL when `database` names one (its register is a table
/// of it), else the SQLite file of `data_dir` (with the register file beside it).
fn open_hub(data_dir: &Path, database: Option<&str>, key: Option<&ServerKey>) -> Result<Hub, String> {
    let (storage, register): (Arc<dyn Storage>, ErasureRegister) = match database {
        Some(url) => {
            let storage = PostgresStorage::connect(url).map_err(|e| e.to_string())?;
            let register = storage.erasure_register().map_err(|e| e.to_string())?;
            (Arc::new(storage), ErasureRegister::in_table(register))
        }
        None => {
            let storage = SqliteStorage::open_dir(data_dir, key).map_err(|e| e.to_string())?;
            (Arc::new(storage), ErasureRegister::in_dir(data_dir))
        }
    };
    let hub = Hub::new(storage).with_register(register);
    Ok(match key {
        Some(key) => hub.with_server_key(key),
        None => hub,
    })
}

fn serve(args: ServeArgs) -> Result<(), String> {
    // Held until the process ends: one server per data directory, and no restore under it.
    // On PostgreSQL, instances share the database and hold no state of their own.
    let database = args.data.database.as_deref();
    let _running = match database {
        Some(_) => None,
        None => Some(claim_data_dir(&args.data.data_dir, || {
            "another repere-server already serves this data directory".to_string()
        })?),
    };
    let key = server_key(args.data.key_file.as_deref(), &args.data.data_dir)?;
    if key.is_none() && database.is_some() {
        // Not for the database's encryption (PostgreSQL's disk is the operator's), but
        // every instance must derive the same export pseudonyms.
        return Err("no server key: on PostgreSQL every instance needs the same server key \
             (the exports' pseudonyms derive from it). Make one with `repere-server admin \
             new-key --to /etc/repere/server.key` and give it to each with `--key-file` (or \
             REPERE_KEY_FILE)."
            .to_string());
    }
    if key.is_none() && !args.demo {
        return Err("no server key: the database is encrypted with a key kept outside the \
             data directory. Make one with `repere-server admin new-key --to /etc/repere/server.key` \
             and start with `--key-file /etc/repere/server.key` (or REPERE_KEY_FILE). Only \
             `--demo` runs without a key, on a plaintext database."
            .to_string());
    }
    if key.is_none() {
        warn_operator(
            args.log_format,
            "ATTENTION : démo sans clé : la base n'est pas chiffrée. / WARNING: demo without a \
             server key: the database is not encrypted.",
        );
    }
    let hub = Arc::new(open_hub(&args.data.data_dir, database, key.as_ref())?);
    if args.demo {
        match demo::seed_with_password(&hub, args.demo_password.as_deref())
            .map_err(|e| e.to_string())?
        {
            Some(summary) => {
                let url = args
                    .public_url
                    .as_ref()
                    .map_or_else(|| format!("http://{}", args.listen), ToString::to_string);
                print!(
                    "{}",
                    demo::instructions(&summary, &url, &args.data.data_dir.display().to_string())
                );
            }
            None => println!(
                "Démo : la base contient déjà des données, rien n'a été ajouté. \
                 / Demo: the database already has data; nothing was added.\n\
                 Nouveaux codes / new codes: repere-server admin --data-dir {} issue-code --team <team id> \
                 (ids: repere-server admin --data-dir {} list)",
                args.data.data_dir.display(),
                args.data.data_dir.display()
            ),
        }
    }
    let config = HttpConfig {
        max_body_bytes: args.max_body_bytes,
        enrol_per_minute: args.enrol_per_minute,
        insecure_http: args.insecure_http,
        pages: repere_server::web::PagesConfig {
            trusted_proxy: args.trusted_proxy,
            sessions: repere_server::coord::SessionPolicy {
                idle: chrono::Duration::minutes(i64::from(args.session_idle_minutes)),
                lifetime: chrono::Duration::hours(i64::from(args.session_max_hours)),
            },
            public_url: args.public_url.clone(),
        },
        metrics: MetricsConfig {
            token: args.metrics_token.clone().filter(|t| !t.is_empty()),
            silent_days: args.silent_tablet_days,
        },
        health_lock_timeout: Duration::from_secs(args.health_lock_timeout_secs),
    };
    // The coordinators' view of the records follows the log; catching up now spares the
    // first page view after a restart.
    let catch_up = Workspace::new(hub.clone());
    std::thread::spawn(move || {
        if let Err(e) = catch_up.refresh_view() {
            tracing::warn!(error = %e, "coordinators' view not refreshed at start-up");
        }
    });
    // The retention rules, at start and then every day.
    let retention = hub.clone();
    std::thread::spawn(move || {
        loop {
            if let Err(e) = retention.apply_retention() {
                tracing::error!(error = %e, "retention rules not applied; trying again in an hour");
                std::thread::sleep(Duration::from_secs(3600));
                continue;
            }
            std::thread::sleep(Duration::from_secs(24 * 3600));
        }
    });
    let limits = ServeLimits {
        header_read_timeout: Duration::from_secs(args.header_read_timeout_secs),
        body_read_timeout: Duration::from_secs(args.body_read_timeout_secs),
        idle_timeout: Duration::from_secs(args.idle_timeout_secs),
        max_connections: args.max_connections as usize,
        max_connections_per_address: args.max_connections_per_address as usize,
        shared_address: args.trusted_proxy,
        max_requests: args.max_requests as usize,
        queue_timeout: Duration::from_secs(args.queue_timeout_secs),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        tracing::info!(
            address = %local,
            database = if database.is_some() { "postgres" } else { "sqlite" },
            data_dir = %args.data.data_dir.display(),
            "repere-server listening"
        );
        if args.insecure_http {
            // Nobody should run this way by accident.
            warn_operator(
                args.log_format,
                "ATTENTION : --insecure-http : pages servies en HTTP simple, cookies sans Secure, \
                 sans HSTS. Pour un essai local seulement ; en service, placez le serveur derrière \
                 TLS (README). / WARNING: plain HTTP for the coordinators' pages: local trials only.",
            );
        } else if args.demo {
            println!(
                "Les pages attendent HTTPS (cookies Secure) : derrière un proxy TLS, ouvrez son adresse https ; \
                 pour un essai local en http://, relancez avec --insecure-http. \
                 / The pages expect HTTPS; for a local http:// trial add --insecure-http."
            );
        }
        let metrics = Arc::new(repere_server::metrics::Metrics::default());
        let app = http::router(hub, &config, metrics.clone());
        serve::serve(listener, app, limits, metrics, shutdown_signal()).await
    })?;
    tracing::info!("repere-server stopped");
    Ok(())
}

/// SIGINT (Ctrl-C) or SIGTERM: stop accepting, let requests in flight finish (each commits
/// or rolls back as a whole), then exit.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// The new password: REPERE_PASSWORD if set, else the first line of standard input (not
/// echoed when it is a terminal, where `stty` exists).
fn read_password() -> Result<String, String> {
    if let Ok(p) = std::env::var("REPERE_PASSWORD")
        && !p.is_empty()
    {
        return Ok(p);
    }
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    let stty = |arg: &str| {
        std::process::Command::new("stty")
            .arg(arg)
            .stdin(std::process::Stdio::inherit())
            .status()
            .is_ok_and(|s| s.success())
    };
    let hidden = interactive && stty("-echo");
    if interactive {
        eprint!("Mot de passe / password (12 caractères au moins / at least 12 characters): ");
    }
    let mut line = String::new();
    let read = stdin.read_line(&mut line);
    if hidden {
        stty("echo");
        eprintln!();
    }
    read.map_err(|e| format!("cannot read the password: {e}"))?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        return Err("no password given (REPERE_PASSWORD or standard input)".into());
    }
    Ok(password)
}

fn fmt_time(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map_or_else(
        || "-".to_string(),
        |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}

fn admin(args: AdminArgs) -> Result<(), String> {
    // Generated from the records' schema: no key, no database.
    if let AdminCommand::DataMap = args.command {
        print!("{}", repere_core::records::data_map::markdown());
        return Ok(());
    }
    // A restore replaces the database file: it runs before anything opens it.
    if let AdminCommand::NewKey { to } = &args.command {
        let folder = match to.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let inside = folder
            .canonicalize()
            .ok()
            .zip(args.data.data_dir.canonicalize().ok())
            .is_some_and(|(folder, data)| folder.starts_with(data));
        if inside {
            return Err(repere_server::keys::KeyError::InsideDataDir.to_string());
        }
        let key = ServerKey::generate().map_err(|e| e.to_string())?;
        key.write_new_file(to).map_err(|e| e.to_string())?;
        eprintln!("server key written; keep a copy apart from the data and its backups");
        println!("{}", to.display());
        return Ok(());
    }
    let key = server_key(args.data.key_file.as_deref(), &args.data.data_dir)?;
    if let AdminCommand::Restore { from } = &args.command {
        return restore(
            &args.data.data_dir,
            args.data.database.as_deref(),
            from,
            key.as_ref(),
        );
    }
    let hub = open_hub(&args.data.data_dir, args.data.database.as_deref(), key.as_ref())?;
    let err = |e: repere_server::HubError| e.to_string();
    match args.command {
        AdminCommand::CreateOrg { name } => {
            let org = hub.create_organisation(&name).map_err(err)?;
            eprintln!("organisation created: {}", org.name);
            println!("{}", org.id);
        }
        AdminCommand::CreateTeam { org, name } => {
            let team = hub.create_team(org, &name).map_err(err)?;
            eprintln!("team created: {}", team.name);
            println!("{}", team.id);
        }
        AdminCommand::AddMember { team, name } => {
            let member = hub.add_member(team, &name).map_err(err)?;
            eprintln!("member added to team {team}");
            println!("{}", member.id);
        }
        AdminCommand::RenameMember { member, name } => {
            hub.rename_member(member, &name).map_err(err)?;
            eprintln!("member {member} renamed");
        }
        AdminCommand::DeactivateMember { member } => {
            hub.set_member_active(member, false).map_err(err)?;
            eprintln!("member {member} deactivated");
        }
        AdminCommand::ReactivateMember { member } => {
            hub.set_member_active(member, true).map_err(err)?;
            eprintln!("member {member} reactivated");
        }
        AdminCommand::ListMembers { team } => {
            let members = hub.members(team).map_err(err)?;
            eprintln!("id	state	name");
            for m in &members {
                let state = if m.active { "active" } else { "inactive" };
                println!("{}	{state}	{}", m.id, m.display_name);
            }
            eprintln!("{} member(s)", members.len());
        }
        AdminCommand::CreateUser {
            org,
            name,
            role,
            login,
        } => {
            let user = hub
                .create_user_with_login(org, &name, role.into(), login.as_deref())
                .map_err(err)?;
            eprintln!("user created with role {}", user.role.as_str());
            println!("{}", user.id);
        }
        AdminCommand::SetPassword { user, login } => {
            let found = hub.find_user(&user).map_err(err)?;
            let password = read_password()?;
            let credentials = hub
                .set_password(found.user.id, &password, login.as_deref())
                .map_err(err)?;
            eprintln!(
                "password set; sign in at /connexion with the login {}{}",
                credentials.login.as_deref().unwrap_or("-"),
                if matches!(credentials.user.role, Role::Field) {
                    " (note: field users cannot sign in to the coordinators' pages)"
                } else {
                    ""
                }
            );
            println!("{}", credentials.user.id);
        }
        AdminCommand::DisableUser { user } => {
            let found = hub.find_user(&user).map_err(err)?;
            let ended = hub.disable_user(found.user.id).map_err(err)?;
            eprintln!("user disabled: sign-in refused, {ended} session(s) ended");
            println!("{}", found.user.id);
        }
        AdminCommand::EnableUser { user } => {
            let found = hub.find_user(&user).map_err(err)?;
            hub.enable_user(found.user.id).map_err(err)?;
            eprintln!("user enabled: they can sign in again");
            println!("{}", found.user.id);
        }
        AdminCommand::RevokeSessions { user } => {
            let found = hub.find_user(&user).map_err(err)?;
            let ended = hub.revoke_sessions(found.user.id).map_err(err)?;
            eprintln!("{ended} session(s) ended");
            println!("{}", found.user.id);
        }
        AdminCommand::ResetSecondFactor { user } => {
            let found = hub.find_user(&user).map_err(err)?;
            let ended = hub.reset_second_factor(found.user.id).map_err(err)?;
            eprintln!(
                "second factor and recovery codes removed, {ended} session(s) ended; \
                 the user sets it up again from \"Mon compte\""
            );
            println!("{}", found.user.id);
        }
        AdminCommand::SetTargets {
            org,
            identified,
            mobilised,
            from,
            to,
        } => {
            hub.set_targets(
                org,
                &repere_core::indicators::Targets {
                    identified,
                    mobilised,
                    from,
                    to,
                },
            )
            .map_err(err)?;
            eprintln!("targets set for {from}..{to}");
            println!("{org}");
        }
        AdminCommand::IssueCode { team, ttl_hours } => {
            let issued = hub
                .issue_code(team, chrono::Duration::hours(i64::from(ttl_hours)))
                .map_err(err)?;
            eprintln!(
                "one-time enrolment code for team {team}, valid until {} (shown only now)",
                fmt_time(Some(issued.stored.expires_at))
            );
            println!("{}", issued.code);
        }
        AdminCommand::ListDevices { team } => {
            let devices = hub.devices(team).map_err(err)?;
            eprintln!("id\tteam\tstate\tenrolled\tlast_sync\tapp_version\tunsent\tlabel");
            for d in &devices {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    d.id,
                    d.team_id,
                    match (d.revoked_at, d.wipe, d.wipe_sent_at) {
                        (None, _, _) => "active",
                        (Some(_), None, _) => "revoked",
                        (Some(_), Some(_), Some(_)) => "revoked, wiped",
                        (Some(_), Some(_), None) => "revoked, wipe ordered",
                    },
                    fmt_time(Some(d.enrolled_at)),
                    fmt_time(d.last_sync_at),
                    d.app_version.as_deref().unwrap_or("-"),
                    d.unsent.map_or("-".to_string(), |n| n.to_string()),
                    d.label
                );
            }
            eprintln!("{} device(s)", devices.len());
        }
        AdminCommand::RevokeDevice {
            device_id,
            wipe,
            urgent,
        } => {
            let order = match (wipe, urgent) {
                (false, _) => None,
                (true, false) => Some(WipeOrder::AfterPush),
                (true, true) => Some(WipeOrder::Urgent),
            };
            let device = hub.revoke_device_with(device_id, order).map_err(err)?;
            eprintln!(
                "device revoked at {}; {}",
                fmt_time(device.revoked_at),
                match order {
                    None => "its unsent changes stay on the tablet",
                    Some(WipeOrder::AfterPush) => {
                        "at its next contact it sends its unsent changes, then deletes its store"
                    }
                    Some(WipeOrder::Urgent) => {
                        "at its next contact it deletes its store, sending nothing more"
                    }
                }
            );
            println!("{}", device.id);
        }
        AdminCommand::Erase { record_id, reason } => {
            let erasure = hub.erase_because(record_id, reason).map_err(err)?;
            let tombstone = &erasure.tombstone;
            eprintln!(
                "record erased (log position {}, {}), with {} linked record(s), and removed from \
                 {} group visit(s); tablets delete their copies at their next sync",
                tombstone.seq,
                fmt_time(Some(tombstone.erased_at)),
                erasure.also_erased.len(),
                erasure.removed_from.len()
            );
            println!("{}", tombstone.id);
        }
        AdminCommand::Purge {
            dry_run,
            as_of,
            within_days,
        } => {
            let today = repere_server::coord::paris(hub.now()).date_naive();
            if dry_run {
                let as_of = as_of.unwrap_or(today);
                let due = hub.retention_plan(as_of, within_days).map_err(err)?;
                eprintln!(
                    "{} record(s) due by {} (retention rules as of {as_of}; ids only):",
                    due.len(),
                    as_of + chrono::Duration::days(within_days.max(0))
                );
                for d in &due {
                    println!(
                        "{}\t{}\tteam={}\tlast_contact={}\tpurge_on={}{}",
                        d.kind,
                        d.id,
                        d.team_id,
                        d.last_contact,
                        d.purge_on,
                        if d.purge_on <= as_of { "\tdue" } else { "" }
                    );
                }
            } else {
                let done = hub.apply_retention().map_err(err)?;
                eprintln!(
                    "{} record(s) erased at the end of their retention period (with what goes \
                     with them); tablets delete their copies at their next sync",
                    done.len()
                );
                for d in &done {
                    println!("{}\t{}", d.kind, d.id);
                }
            }
        }
        AdminCommand::Retention {
            organisation,
            months,
        } => {
            if let (Some(organisation), Some(months)) = (organisation, months) {
                hub.set_retention_months(organisation, months)
                    .map_err(err)?;
            }
            let organisations = hub
                .storage()
                .read_with(|tx| tx.organisations())
                .map_err(|e| e.to_string())?;
            for o in organisations {
                println!(
                    "{}\t{}\t{} months after the last contact",
                    o.id,
                    o.name,
                    hub.retention_months(o.id).map_err(err)?
                );
            }
        }
        AdminCommand::Rectify {
            record_id,
            set,
            clear,
            remove,
        } => {
            let changes = rectify_changes(&hub, record_id, &set, &clear, &remove)?;
            let rectified = hub.rectify(record_id, &changes, None).map_err(err)?;
            eprintln!(
                "{} rewritten as generation {} (fields changed: {}); its earlier history is gone \
                 from the server, tablets replace their copy at their next sync",
                rectified.kind,
                rectified.generation,
                if rectified.changed.is_empty() {
                    "none".to_string()
                } else {
                    rectified.changed.join(", ")
                }
            );
            println!("{}", rectified.id);
        }
        AdminCommand::Backup { to } => {
            hub.storage()
                .backup(&to)
                .map_err(|e| format!("backup failed: {e}"))?;
            eprintln!("backup written; keep it apart from the data directory");
            println!("{}", to.display());
        }
        // Done above, before the database was opened.
        AdminCommand::Restore { .. } | AdminCommand::NewKey { .. } | AdminCommand::DataMap => {}
        AdminCommand::List => {
            let overview = hub.overview().map_err(err)?;
            let logins = hub.logins().map_err(err)?;
            if overview.is_empty() {
                eprintln!("no organisation yet: repere-server admin create-org --name <name>");
            }
            for o in &overview {
                println!(
                    "organisation\t{}\t{}\tusers={}",
                    o.organisation.id, o.organisation.name, o.users
                );
                for (user, login, has_password) in logins
                    .iter()
                    .filter(|(u, _, _)| u.organisation_id == o.organisation.id)
                {
                    println!(
                        "  user\t{}\t{}\tlogin={}\tpassword={}\t{}",
                        user.id,
                        user.role.as_str(),
                        login.as_deref().unwrap_or("-"),
                        if *has_password { "set" } else { "none" },
                        user.name
                    );
                }
                for (team, counts) in &o.teams {
                    println!(
                        "  team\t{}\t{}\trecords={}\terased={}\tactive_devices={}",
                        team.id,
                        team.name,
                        counts.documents,
                        counts.tombstones,
                        counts.active_devices
                    );
                }
            }
        }
    }
    Ok(())
}
