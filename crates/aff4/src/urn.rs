//! URN <-> ZIP member name mapping (AFF4.md §3.8), and new URNs.

/// A new `aff4://<uuid v4>` URN.
pub fn new_urn() -> String {
    format!("aff4://{}", uuid::Uuid::new_v4())
}

/// Percent-decodes a member name (hex case-insensitive, UTF-8); malformed escapes stay literal,
/// `+` stays `+`, and `%00` is dropped.
pub fn percent_decode(name: &str) -> String {
    let b = name.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let h = |c: u8| (c as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (h(b[i + 1]), h(b[i + 2])) {
                let v = (hi * 16 + lo) as u8;
                if v != 0 {
                    out.push(v);
                }
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The URN a member name stands for inside the volume `volume_urn`.
pub fn member_to_urn(volume_urn: &str, member: &str) -> String {
    let decoded = percent_decode(member);
    if decoded.starts_with("aff4:") {
        decoded
    } else {
        format!("{volume_urn}/{decoded}")
    }
}

fn escape_component(s: &str, out: &mut String) {
    for ch in s.chars() {
        match ch {
            '!' | '$' | '\\' | ':' | '*' | '%' | '?' | '"' | '<' | '>' | '|' => {
                out.push_str(&format!("%{:02X}", ch as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
}

/// `s` as one member name (c-aff4 escaping, `/` escaped too): a flat file name in a directory
/// volume.
pub fn escape_name(s: &str) -> String {
    let mut out = String::new();
    for part in s.split('/').enumerate() {
        if part.0 > 0 {
            out.push_str("%2F");
        }
        escape_component(part.1, &mut out);
    }
    out
}

/// The member name to store `urn` under in volume `volume_urn` (c-aff4 escaping, upper-case hex).
pub fn urn_to_member(volume_urn: &str, urn: &str) -> String {
    let mut out = String::new();
    let rest = if let Some(r) = urn.strip_prefix(volume_urn).and_then(|r| r.strip_prefix('/')) {
        r.trim_start_matches('/')
    } else if let Some(r) = urn.strip_prefix("aff4://") {
        out.push_str("aff4%3A%2F%2F");
        r
    } else {
        urn
    };
    let parts: Vec<&str> = rest.split('/').collect();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push('/');
        }
        if p.is_empty() && i > 0 && i + 1 < parts.len() {
            out.push_str("%2F");
            continue;
        }
        escape_component(p, &mut out);
    }
    out
}

/// True for a safe path component when exporting: not empty, `.`, `..`, and no separators or NUL.
pub fn safe_component(c: &str) -> bool {
    !(c.is_empty() || c == "." || c == ".." || c.contains(['/', '\\', '\0']))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn mapping_examples() {
        assert_eq!(
            urn_to_member("aff4://v", "aff4://05e11366-036a-4997-8f10-cfbff91256f4/00000000"),
            "aff4%3A%2F%2F05e11366-036a-4997-8f10-cfbff91256f4/00000000"
        );
        assert_eq!(urn_to_member("aff4://VOL", "aff4://VOL/C:/Windows/notepad.exe"), "C%3A/Windows/notepad.exe");
        assert_eq!(
            urn_to_member("aff4://v", "aff4://123456/URN-with!special$chars/and/path"),
            "aff4%3A%2F%2F123456/URN-with%21special%24chars/and/path"
        );
        assert_eq!(member_to_urn("aff4://v", "c%3a/pagefile.sys/00000016"), "aff4://v/c:/pagefile.sys/00000016");
        assert_eq!(member_to_urn("aff4://v", "aff4%3A%2F%2Fx/00000000"), "aff4://x/00000000");
        assert_eq!(member_to_urn("aff4://v", "/test/dream.txt"), "aff4://v//test/dream.txt");
        assert_eq!(percent_decode("a+b%2"), "a+b%2");
        for urn in ["aff4://v/proc/kcore/data/00000000", "aff4://x-y/00000001.index", "aff4://v/C:/a b/c%d"] {
            assert_eq!(member_to_urn("aff4://v", &urn_to_member("aff4://v", urn)), urn);
        }
    }
}
