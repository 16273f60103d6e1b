//! The string formats the API server checks in custom resources (`format:` in the schema).
//! Formats it does not check are accepted, as on the server.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::Value;

/// Returns false when `value` does not conform to `format`; unknown formats always conform.
pub(crate) fn conforms(format: &str, value: &Value) -> bool {
    match (format, value) {
        ("int32", Value::Number(n)) => n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
        (_, Value::String(s)) => string_conforms(format, s),
        _ => true,
    }
}

fn string_conforms(format: &str, s: &str) -> bool {
    match format {
        "ipv4" => s.parse::<Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<Ipv6Addr>().is_ok(),
        "cidr" => s.parse::<ipnet::IpNet>().is_ok(),
        "uuid" => is_uuid(s),
        "byte" => is_base64(s),
        "date-time" | "datetime" => is_rfc3339(s),
        "hostname" => is_hostname(s),
        "ip" => s.parse::<IpAddr>().is_ok(),
        _ => true,
    }
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

fn is_base64(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    s.len().is_multiple_of(4)
        && s.len() - body.len() <= 2
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
}

fn is_rfc3339(s: &str) -> bool {
    // YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
        || !matches!(b[10], b'T' | b't' | b' ')
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.chars().take_while(char::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    match rest {
        "Z" | "z" => true,
        tz => {
            let t = tz.as_bytes();
            t.len() == 6
                && matches!(t[0], b'+' | b'-')
                && t[1..3].iter().all(u8::is_ascii_digit)
                && t[3] == b':'
                && t[4..6].iter().all(u8::is_ascii_digit)
        }
    }
}

fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn checks_known_formats_and_accepts_unknown_ones() {
        assert!(conforms("cidr", &json!("10.0.0.0/8")));
        assert!(conforms("cidr", &json!("fd00::/64")));
        assert!(!conforms("cidr", &json!("10.0.0.0")));
        assert!(conforms("date-time", &json!("2026-11-22T10:00:00Z")));
        assert!(conforms(
            "date-time",
            &json!("2026-11-22T10:00:00.123+01:00")
        ));
        assert!(!conforms("date-time", &json!("2026-11-22")));
        assert!(conforms("int32", &json!(2_147_483_647)));
        assert!(!conforms("int32", &json!(2_147_483_648_i64)));
        assert!(conforms("byte", &json!("aGVsbG8=")));
        assert!(!conforms("byte", &json!("not base64!")));
        assert!(conforms(
            "uuid",
            &json!("123e4567-e89b-12d3-a456-426614174000")
        ));
        assert!(!conforms("uuid", &json!("123e4567")));
        assert!(conforms("made-up", &json!("anything")));
    }
}
