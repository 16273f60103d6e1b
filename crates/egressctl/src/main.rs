//! `egressctl`: the user CLI of kube-egress-gateway.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use egressctl::{input, validate};

#[derive(Parser)]
#[command(name = "egressctl", version, about = "User CLI of kube-egress-gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check manifests offline with the same rules as admission, plus semantic checks.
    ///
    /// Prints every problem as FILE:DOC: Kind/name: field.path: message and exits 1 if any
    /// error was found. Kinds other than ours are ignored, except that pod templates are
    /// checked for the egress annotation.
    Validate {
        /// File, directory (searched recursively for *.yaml, *.yml, *.json) or - for stdin.
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<String>,
        /// Print only errors and the summary.
        #[arg(short, long)]
        quiet: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { files, quiet } => run_validate(&files, quiet),
    }
}

fn run_validate(files: &[String], quiet: bool) -> ExitCode {
    let mut docs = Vec::new();
    for f in files {
        match input::read(f) {
            Ok(d) => docs.extend(d),
            Err(e) => {
                eprintln!("egressctl: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let validator = match validate::Validator::new() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("egressctl: {e}");
            return ExitCode::FAILURE;
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
    if report.errors() > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
