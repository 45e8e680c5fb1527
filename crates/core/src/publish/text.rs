//! The single file's text form of binary parts: base 85 in digits that HTML's raw text and
//! JavaScript's strings take as they are (no `<`, `>`, `&`, quotes, backslash or backtick), so a
//! part can never end its element. A quarter larger than the bytes, where base64 is a third larger.

/// The digits, lowest first; `app.js` decodes with the same string.
pub const DIGITS: &str =
    "!#$%()*+,-./0123456789:;=?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_abcdefghijklmnopqrstuvwxyz{|";

/// Each 4 bytes, big-endian, as 5 digits; a last group of n < 4 bytes as its first n + 1
/// digits (padded with zero bytes, as Ascii85 does).
pub fn encode(bytes: &[u8]) -> String {
    let digits = DIGITS.as_bytes();
    let mut out = String::with_capacity(bytes.len().div_ceil(4) * 5);
    for group in bytes.chunks(4) {
        let mut word = [0u8; 4];
        word[..group.len()].copy_from_slice(group);
        let mut value = u32::from_be_bytes(word);
        let mut five = [0u8; 5];
        for digit in five.iter_mut().rev() {
            *digit = digits[(value % 85) as usize];
            value /= 85;
        }
        for &d in &five[..group.len() + 1] {
            out.push(char::from(d));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::tests::text_decode;

    #[test]
    fn every_length_and_byte_round_trips() {
        assert_eq!(DIGITS.len(), 85);
        let all: Vec<u8> = (0..=255u8)
            .chain((0..=255u8).rev())
            .chain([255; 9])
            .collect();
        for len in 0..all.len() {
            let text = encode(&all[..len]);
            let tail = if len % 4 > 0 { len % 4 + 1 } else { 0 };
            assert_eq!(text.len(), len / 4 * 5 + tail);
            assert!(
                !text.contains(['<', '>', '&', '"', '\'', '\\', '`']),
                "{text}"
            );
            assert_eq!(text_decode(&text), &all[..len], "length {len}");
        }
    }
}
