//! File names are data. A branch share can hand over any name: longer than
//! the folders we copy into accept once a prefix is added, or holding
//! characters an output encoding cannot. Neither may stop a batch: names are
//! stored shortened where needed (a hash keeps them apart) and written into
//! each output in a form its encoding holds, the exact name staying in
//! `records.jsonl` and the ledger.

use sha2::{Digest, Sha256};
use std::borrow::Cow;

/// Longest name, in bytes, that Linux file systems accept for one path
/// component.
pub const NAME_MAX: usize = 255;

/// What stands in a CP932 output for a character it cannot hold: 〓 (geta),
/// the mark Japanese systems have long used for it.
pub const CP932_STAND_IN: char = '〓';

/// `name` when it has at most `max` bytes; otherwise its start, `~`, the
/// first 12 hex digits of the whole name's sha256, and its extension, in at
/// most `max` bytes. Different long names stay different; the same name
/// always gives the same result.
pub fn fit(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    let hash = hex::encode(Sha256::digest(name.as_bytes()));
    let ext = name
        .rfind('.')
        .map(|i| &name[i..])
        .filter(|e| e.len() <= 10 && !e.contains('/'))
        .unwrap_or("");
    let tail = format!("~{}{ext}", &hash[..12]);
    let mut keep = max.saturating_sub(tail.len());
    while !name.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{}{tail}", &name[..keep])
}

/// `s` with every character CP932 cannot encode replaced by
/// [`CP932_STAND_IN`].
pub fn cp932_safe(s: &str) -> Cow<'_, str> {
    if crate::emit::check_cp932(s).is_ok() {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| {
                if crate::emit::check_cp932(c.encode_utf8(&mut [0; 4])).is_ok() {
                    c
                } else {
                    CP932_STAND_IN
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_name_is_shortened_apart_from_others_and_keeps_its_extension() {
        let a = format!("{}a.pdf", "妊".repeat(90));
        let b = format!("{}b.pdf", "妊".repeat(90));
        assert!(a.len() > NAME_MAX);
        let (fa, fb) = (fit(&a, 200), fit(&b, 200));
        assert!(fa.len() <= 200 && fb.len() <= 200, "{fa}");
        assert_ne!(fa, fb);
        assert!(fa.ends_with(".pdf") && fa.starts_with("妊妊"), "{fa}");
        assert_eq!(fit(&a, 200), fa);
        assert_eq!(fit("short.png", 200), "short.png");
    }

    #[test]
    fn characters_cp932_lacks_get_a_stand_in() {
        assert_eq!(cp932_safe("本町/scan.png"), "本町/scan.png");
        assert_eq!(cp932_safe("scan😀\u{FFFD}.png"), "scan〓〓.png");
        assert!(crate::emit::check_cp932(&cp932_safe("a😀b")).is_ok());
    }
}
