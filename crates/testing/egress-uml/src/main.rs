//! `egress-uml`: as PID 1 inside the guest it is init (see `egress_uml::guest`); on the host
//! it prints the kernel path (`kernel`, building it once per machine) or runs one command in a
//! fresh guest (`run`) and exits with the command's exit code.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use egress_uml::{GuestCommand, Machine, kernel};

#[derive(Debug, Parser)]
#[command(
    name = "egress-uml",
    about = "Run one command inside a User-Mode Linux guest with kernel WireGuard"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Print the UML kernel's path, building it first if this machine has none cached.
    Kernel,
    /// Boot a guest, run CMD inside, print its output, exit with its exit code.
    Run(RunArgs),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Kernel binary (default: EGRESS_UML_KERNEL, else the cached build of hack/uml).
    #[arg(long)]
    kernel: Option<PathBuf>,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 2048)]
    mem: u32,
    /// Seconds from boot to forced power-off (the UML process tree is killed after it).
    #[arg(long, default_value_t = 900)]
    timeout: u64,
    /// KEY=VALUE added to the command's environment (which starts with PATH, HOME, TERM).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Pass this variable of the runner's environment through, if set (repeatable).
    #[arg(long = "pass-env", value_name = "KEY")]
    pass_env: Vec<String>,
    /// Extra directory to hide under an empty tmpfs in the guest (repeatable).
    #[arg(long = "tmpfs", value_name = "DIR")]
    tmpfs: Vec<PathBuf>,
    /// Working directory of the command (default: the runner's).
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// The command and its arguments.
    #[arg(last = true, required = true)]
    argv: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    if std::process::id() == 1 {
        egress_uml::guest::init();
    }
    match Cli::parse().command {
        Cmd::Kernel => {
            println!("{}", kernel::locate()?.display());
            Ok(())
        }
        Cmd::Run(args) => {
            let code = run(args)?;
            std::process::exit(code);
        }
    }
}

fn run(args: RunArgs) -> anyhow::Result<i32> {
    let kernel = match args.kernel {
        Some(k) => k,
        None => kernel::locate()?,
    };
    let init = std::env::current_exe().context("find this binary (the guest's init)")?;
    let mut env: Vec<(String, String)> = vec![
        (
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ),
        ("HOME".into(), "/root".into()),
        ("TERM".into(), "dumb".into()),
    ];
    for key in &args.pass_env {
        if let Ok(value) = std::env::var(key) {
            env.retain(|(k, _)| k != key);
            env.push((key.clone(), value));
        }
    }
    for pair in &args.env {
        let Some((k, v)) = pair.split_once('=') else {
            bail!("--env {pair:?} is not KEY=VALUE");
        };
        env.retain(|(key, _)| key != k);
        env.push((k.into(), v.into()));
    }
    // Init starts in `/`: a relative directory means the runner's.
    let cwd = match args.cwd {
        Some(c) => std::fs::canonicalize(&c)
            .with_context(|| format!("find the working directory {}", c.display()))?,
        None => std::env::current_dir().context("read the working directory")?,
    };
    let machine = Machine {
        kernel,
        init,
        mem_mib: args.mem,
        timeout: Duration::from_secs(args.timeout),
    };
    let outcome = egress_uml::run(
        &machine,
        &GuestCommand {
            argv: args.argv,
            env,
            cwd: Some(cwd),
            tmpfs: args.tmpfs,
        },
    )?;
    eprintln!(
        "egress-uml: exit code {} after {:.1} s",
        outcome.exit_code,
        outcome.elapsed.as_secs_f64()
    );
    Ok(outcome.exit_code)
}
