//! Logging set-up of every binary: `RUST_LOG` (default `info`), text or JSON lines. Text is
//! coloured only when it goes to a terminal (and `NO_COLOR` is unset): in a container or a file
//! the escape codes would end up in every log line.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable text.
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// `Json` when `json` is set, else `Text` (for a `--log-json` flag).
    pub fn json_if(json: bool) -> Self {
        if json { Self::Json } else { Self::Text }
    }
}

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogWriter {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Whether text written to a stream that `is_terminal` may carry colour: only on a terminal,
/// and never with `NO_COLOR` set to a non-empty value (<https://no-color.org>).
pub fn colour(is_terminal: bool) -> bool {
    is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Installs the global tracing subscriber; call once, at start-up.
pub fn init_tracing(format: LogFormat, writer: LogWriter) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let on_terminal = match writer {
        LogWriter::Stdout => std::io::stdout().is_terminal(),
        LogWriter::Stderr => std::io::stderr().is_terminal(),
    };
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour(on_terminal));
    match (format, writer) {
        (LogFormat::Text, LogWriter::Stdout) => fmt.init(),
        (LogFormat::Json, LogWriter::Stdout) => fmt.json().init(),
        (LogFormat::Text, LogWriter::Stderr) => fmt.with_writer(std::io::stderr).init(),
        (LogFormat::Json, LogWriter::Stderr) => fmt.with_writer(std::io::stderr).json().init(),
    }
}
