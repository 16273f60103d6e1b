//! The command line of `egressctl` and of the kubectl plugin `kubectl-egress` (the same
//! commands under another name). Exit codes, for every command: **0** nothing wrong found,
//! **1** a problem was found (an invalid manifest, a warning with `--strict`, a gateway or hop
//! that is not in place, or the cluster could not be read), **2** usage error (clap's).

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use k8s_openapi::jiff::Timestamp;

use crate::cluster::{self, Connection};
use crate::output::{self, Format};
use crate::{explain, input, status, validate};

/// Nothing wrong found.
pub const EXIT_OK: u8 = 0;
/// A problem was found.
pub const EXIT_PROBLEM: u8 = 1;
/// Usage error.
pub const EXIT_USAGE: u8 = 2;

#[derive(Parser)]
#[command(
    version,
    about = "User CLI of kube-egress-gateway: which gateway and egress IP each pod uses, and offline manifest validation",
    after_help = "Exit status: 0 nothing wrong found, 1 a problem was found (or the cluster could not be read), 2 usage error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where to read the cluster.
#[derive(clap::Args, Clone)]
struct ClusterArgs {
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster).
    #[arg(long, global = true)]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context.
    #[arg(long, global = true)]
    context: Option<String>,
    /// Namespace of the GatewayStatuses (the chart's release namespace); default: all namespaces.
    #[arg(long, env = "EGRESS_SYSTEM_NAMESPACE", global = true)]
    system_namespace: Option<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table", global = true)]
    output: Format,
}

#[derive(Subcommand)]
enum Command {
    /// Check manifests offline with the same rules as admission, plus semantic checks.
    ///
    /// Prints every problem as FILE:DOC: Kind/name: field.path: message. Errors are what the
    /// cluster refuses (exit 1); warnings what it accepts with a warning (exit 0 unless
    /// --strict). Kinds other than ours are ignored, except that pod templates are checked
    /// for the egress annotation.
    Validate {
        /// File, directory (searched recursively for *.yaml, *.yml, *.json) or - for stdin.
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<String>,
        /// Print only errors and the summary.
        #[arg(short, long)]
        quiet: bool,
        /// Treat warnings as problems (exit 1).
        #[arg(long)]
        strict: bool,
    },
    /// Gateways: readiness, gateway nodes (IPs, daemon, peers, handshakes), pods using them.
    Status {
        /// One StaticGatewayConfiguration (in -n NAMESPACE); default: all in scope.
        name: Option<String>,
        /// Namespace; default: all namespaces (or the kubeconfig's namespace with NAME).
        #[arg(short, long)]
        namespace: Option<String>,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Explain how a pod egresses: gateway, gateway node, egress IP, and every hop.
    Explain {
        #[command(subcommand)]
        what: ExplainWhat,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand)]
enum ExplainWhat {
    /// A pod: which gateway and why, the gateway nodes, its egress IP, and whether each hop is
    /// in place (exit 1 when one is not).
    Pod {
        /// Pod name.
        name: String,
        /// Namespace (default: the kubeconfig's).
        #[arg(short, long)]
        namespace: Option<String>,
        /// A destination: is it tunnelled or excluded?
        #[arg(long)]
        to: Option<IpAddr>,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
}

/// Runs the CLI as `name` (`egressctl` or `kubectl egress`).
pub fn main_as(name: &'static str) -> ExitCode {
    let bin = if name == "kubectl egress" {
        "kubectl-egress"
    } else {
        name
    };
    let matches = match Cli::command().name(bin).bin_name(name).try_get_matches() {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(EXIT_USAGE);
        }
    };
    ExitCode::from(match cli.command {
        Command::Validate {
            files,
            quiet,
            strict,
        } => run_validate(&files, quiet, strict),
        Command::Status {
            name,
            namespace,
            cluster,
        } => block_on(run_status(name, namespace, cluster)),
        Command::Explain {
            what:
                ExplainWhat::Pod {
                    name,
                    namespace,
                    to,
                    cluster,
                },
        } => block_on(run_explain(name, namespace, to, cluster)),
        Command::Completion { shell } => {
            let mut cmd = Cli::command().name(bin).bin_name(name);
            clap_complete::generate(shell, &mut cmd, bin, &mut std::io::stdout());
            EXIT_OK
        }
    })
}

fn block_on(f: impl std::future::Future<Output = u8>) -> u8 {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(f),
        Err(e) => {
            eprintln!("egressctl: failed to start the runtime: {e}");
            EXIT_PROBLEM
        }
    }
}

fn connection(c: &ClusterArgs) -> Connection {
    Connection {
        kubeconfig: c.kubeconfig.clone(),
        context: c.context.clone(),
        system_namespace: c.system_namespace.clone(),
    }
}

async fn run_status(name: Option<String>, namespace: Option<String>, c: ClusterArgs) -> u8 {
    let conn = connection(&c);
    let (client, default_ns) = match cluster::connect(&conn).await {
        Ok(x) => x,
        Err(e) => return fail(&e),
    };
    // One gateway is looked for in the kubeconfig's namespace unless -n says otherwise.
    let ns = namespace.or_else(|| name.as_ref().map(|_| default_ns));
    let snap = match cluster::for_status(&client, &conn, ns.as_deref(), name.as_deref()).await {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    if let Some(n) = &name
        && snap.sgcs.is_empty()
    {
        eprintln!(
            "egressctl: StaticGatewayConfiguration {}/{n} not found",
            ns.unwrap_or_default()
        );
        return EXIT_PROBLEM;
    }
    let report = status::status(&snap, Timestamp::now());
    print!(
        "{}",
        match c.output {
            Format::Table => output::status_table(&report),
            f => output::structured(&report, f),
        }
    );
    if report.problems() > 0 {
        EXIT_PROBLEM
    } else {
        EXIT_OK
    }
}

async fn run_explain(
    name: String,
    namespace: Option<String>,
    to: Option<IpAddr>,
    c: ClusterArgs,
) -> u8 {
    let conn = connection(&c);
    let (client, default_ns) = match cluster::connect(&conn).await {
        Ok(x) => x,
        Err(e) => return fail(&e),
    };
    let ns = namespace.unwrap_or(default_ns);
    let snap = match cluster::for_explain(&client, &conn, &ns, &name).await {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let e = explain::explain(&snap, &ns, &name, to, Timestamp::now());
    print!(
        "{}",
        match c.output {
            Format::Table => output::explain_table(&e),
            f => output::structured(&e, f),
        }
    );
    if e.problems() > 0 {
        EXIT_PROBLEM
    } else {
        EXIT_OK
    }
}

fn fail(e: &dyn std::error::Error) -> u8 {
    let mut msg = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        cur = s.source();
    }
    eprintln!("egressctl: {msg}");
    EXIT_PROBLEM
}

fn run_validate(files: &[String], quiet: bool, strict: bool) -> u8 {
    let mut docs = Vec::new();
    for f in files {
        match input::read(f) {
            Ok(d) => docs.extend(d),
            Err(e) => {
                eprintln!("egressctl: {e}");
                return EXIT_PROBLEM;
            }
        }
    }
    let validator = match validate::Validator::new() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("egressctl: {e}");
            return EXIT_PROBLEM;
        }
    };
    let report = validator.validate(&docs);
    for f in &report.findings {
        if !quiet || f.severity == egress_api::semantics::Severity::Error {
            println!("{f}");
        }
    }
    eprintln!(
        "{} document(s): {} of ours checked, {} other kind(s) ignored; {} error(s), {} warning(s)",
        report.documents,
        report.owned,
        report.ignored,
        report.errors(),
        report.warnings()
    );
    if report.errors() > 0 || (strict && report.warnings() > 0) {
        EXIT_PROBLEM
    } else {
        EXIT_OK
    }
}
