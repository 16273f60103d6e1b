//! The network configuration on stdin must be UTF-8 JSON. rscni reads stdin with
//! `read_to_string`, so bytes that are not UTF-8 surface as an I/O failure (CNI code 5),
//! although the input was read fine and only cannot be decoded (code 6). For the commands that
//! read a configuration, the plugin therefore reads stdin first: invalid UTF-8 becomes error 6
//! naming the offset; valid input is handed on to rscni unchanged through a fresh pipe on
//! file descriptor 0.

use std::io::{Read, Write};

use rscni_plugin::error::Error as CniError;

/// Commands whose stdin rscni reads (VERSION and a bare invocation never read it).
const READS_CONFIG: &[&str] = &["ADD", "DEL", "CHECK", "STATUS", "GC"];

/// Checks that `input` is UTF-8, naming the first bad byte otherwise.
pub fn check_utf8(input: &[u8]) -> Result<(), CniError> {
    std::str::from_utf8(input).map(drop).map_err(|e| {
        CniError::FailedToDecode(format!(
            "network configuration on stdin is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })
}

/// For a command that reads its configuration (`CNI_COMMAND`), reads stdin, checks it and puts
/// the same bytes back on stdin for rscni. Errors are CNI errors for the error result.
pub fn check_and_hand_over(command: Option<&str>) -> Result<(), CniError> {
    if !command.is_some_and(|c| READS_CONFIG.contains(&c)) {
        return Ok(());
    }
    let mut input = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut input)
        .map_err(|e| CniError::IOFailure(format!("failed to read stdin: {e}")))?;
    check_utf8(&input)?;
    let io = |e: std::io::Error| CniError::IOFailure(format!("failed to re-queue stdin: {e}"));
    let (reader, mut writer) = std::io::pipe().map_err(io)?;
    nix::unistd::dup2_stdin(&reader).map_err(|e| io(e.into()))?;
    drop(reader);
    // A thread, so input larger than the pipe buffer cannot block us before rscni reads it.
    std::thread::spawn(move || {
        let _ = writer.write_all(&input);
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn invalid_utf8_is_a_decoding_error_naming_the_offset() {
        check_utf8(br#"{"name":"n\u00e9"}"#).unwrap();
        check_utf8("{\"name\":\"né\"}".as_bytes()).unwrap();
        let err = check_utf8(b"{\"name\":\"n\xff\"}").unwrap_err();
        assert_eq!(u32::from(&err), 6);
        assert!(err.to_string().contains("offset 10"), "{err}");
    }
}
