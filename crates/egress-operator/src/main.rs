//! `egress-operator` binary: flags (with environment fallbacks, see `cli`), logging, then
//! [`egress_operator::run`] until SIGTERM / Ctrl-C.

use clap::Parser;
use egress_operator::cli::{Args, prepare};
use egress_runtime::{LogFormat, LogWriter, init_tracing, shutdown_signal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_tracing(LogFormat::json_if(args.log_json), LogWriter::Stderr);
    let (ctx, opts) = prepare(args).await?;
    egress_operator::run(ctx, opts, shutdown_signal()).await?;
    Ok(())
}
