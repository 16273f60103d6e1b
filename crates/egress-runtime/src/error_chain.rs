//! One line for an error and everything that caused it, for logs, Events, condition messages
//! and replies. `std::error::Error::source` chains are how every workspace error wraps what
//! went wrong below it; `Display` shows only the outermost link.

/// `outer: inner: innermost`. A source whose text the line already contains is skipped, so
/// errors that repeat their source in their own message (`#[error("... {0}")]`) are not
/// printed twice.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Link(&'static str, Option<Box<Link>>);

    impl std::fmt::Display for Link {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Link {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    fn link(text: &'static str, source: Option<Link>) -> Link {
        Link(text, source.map(Box::new))
    }

    #[test]
    fn every_source_is_on_the_line_in_order() {
        let e = link(
            "failed to update load balancer",
            Some(link("HTTP 412", Some(link("etag mismatch", None)))),
        );
        assert_eq!(
            error_chain(&e),
            "failed to update load balancer: HTTP 412: etag mismatch"
        );
        assert_eq!(error_chain(&link("alone", None)), "alone");
    }

    #[test]
    fn a_source_the_message_already_shows_is_not_repeated() {
        let e = link(
            "failed to read config: file missing",
            Some(link("file missing", Some(link("ENOENT", None)))),
        );
        assert_eq!(
            error_chain(&e),
            "failed to read config: file missing: ENOENT"
        );
    }
}
