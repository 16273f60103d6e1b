//! Logging set-up of every binary: `RUST_LOG` (default `info`), text or JSON lines.

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

/// Installs the global tracing subscriber; call once, at start-up.
pub fn init_tracing(format: LogFormat, writer: LogWriter) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt().with_env_filter(filter);
    match (format, writer) {
        (LogFormat::Text, LogWriter::Stdout) => fmt.init(),
        (LogFormat::Json, LogWriter::Stdout) => fmt.json().init(),
        (LogFormat::Text, LogWriter::Stderr) => fmt.with_writer(std::io::stderr).init(),
        (LogFormat::Json, LogWriter::Stderr) => fmt.with_writer(std::io::stderr).json().init(),
    }
}
