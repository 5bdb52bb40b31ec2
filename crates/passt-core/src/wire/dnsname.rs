//! Domain names in DNS wire form (RFC 1035 §3.1: length-prefixed labels,
//! a zero byte at the end), as DHCP option 119, DHCPv6 option 24 and the
//! NDP DNSSL option carry search lists. No compression: the lists we send
//! are short, and every consumer accepts uncompressed names.

/// Appends `name` in wire form. Empty labels (`a..b`, a leading dot) and
/// labels over 63 bytes are not valid names: returns `false`, appends
/// nothing. A trailing dot is allowed (it is the root).
pub fn encode(name: &str, out: &mut Vec<u8>) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    let start = out.len();
    if !name.is_empty() {
        for label in name.split('.') {
            if label.is_empty() || label.len() > 63 {
                out.truncate(start);
                return false;
            }
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
    }
    out.push(0);
    if out.len() - start > 255 {
        out.truncate(start);
        return false;
    }
    true
}

/// Wire form of a search list: every valid name, in order.
pub fn encode_list<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    let mut out = Vec::new();
    for n in names.into_iter().filter(|n| !n.is_empty()) {
        encode(n, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_labels() {
        let mut out = Vec::new();
        assert!(encode("example.org", &mut out));
        assert_eq!(out, b"\x07example\x03org\x00");
        out.clear();
        assert!(encode("lan.", &mut out));
        assert_eq!(out, b"\x03lan\x00");
    }

    #[test]
    fn rejects_bad_names_without_leaving_bytes() {
        let mut out = vec![9];
        assert!(!encode("a..b", &mut out));
        assert!(!encode(&"x".repeat(64), &mut out));
        assert!(!encode(&["abc"; 70].join("."), &mut out));
        assert_eq!(out, vec![9]);
    }

    #[test]
    fn lists_skip_bad_names() {
        assert_eq!(
            encode_list(["a.b", "", "c..d", "e"]),
            b"\x01a\x01b\x00\x01e\x00"
        );
    }
}
