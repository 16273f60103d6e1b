//! Framing: one JSON document terminated by `\n`, at most [`MAX_MESSAGE_BYTES`]. Pure
//! functions over byte buffers plus a bounded blocking line reader, shared by the blocking
//! client and the async server (which does its own bounded read and calls [`decode`]).

use std::io::{BufRead, Read};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Upper bound of one message, so a confused peer cannot make either side buffer without end.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Framing and (de)serialisation failures.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The value could not be serialised.
    #[error("failed to encode message")]
    Encode(#[source] serde_json::Error),
    /// The bytes are not a valid message.
    #[error("failed to decode message: {0}")]
    Decode(#[source] serde_json::Error),
    /// The message exceeded [`MAX_MESSAGE_BYTES`].
    #[error("failed to read message: longer than {MAX_MESSAGE_BYTES} bytes")]
    TooLong,
    /// The peer closed the connection before a complete line.
    #[error("failed to read message: connection closed before a complete message")]
    Truncated,
    /// Reading failed.
    #[error("failed to read message")]
    Io(#[source] std::io::Error),
}

/// Serialises `value` as one line (JSON + `\n`).
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = serde_json::to_vec(value).map_err(CodecError::Encode)?;
    if out.len() >= MAX_MESSAGE_BYTES {
        return Err(CodecError::TooLong);
    }
    out.push(b'\n');
    Ok(out)
}

/// Parses one line (with or without its trailing `\n`).
pub fn decode<T: DeserializeOwned>(line: &[u8]) -> Result<T, CodecError> {
    if line.len() > MAX_MESSAGE_BYTES {
        return Err(CodecError::TooLong);
    }
    serde_json::from_slice(line).map_err(CodecError::Decode)
}

/// Reads one line of at most [`MAX_MESSAGE_BYTES`] from a blocking reader.
pub fn read_line<R: Read>(reader: R) -> Result<Vec<u8>, CodecError> {
    let mut limited = std::io::BufReader::new(reader.take(MAX_MESSAGE_BYTES as u64 + 1));
    let mut buf = Vec::new();
    limited
        .read_until(b'\n', &mut buf)
        .map_err(CodecError::Io)?;
    if buf.last() != Some(&b'\n') {
        return Err(if buf.len() > MAX_MESSAGE_BYTES {
            CodecError::TooLong
        } else {
            CodecError::Truncated
        });
    }
    buf.pop();
    Ok(buf)
}
