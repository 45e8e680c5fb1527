//! The label list of a model: one name per output, from the zip that TFLite's metadata tools
//! append to a model file, or from a text file beside it.

use std::io::{Cursor, Read};

/// Largest label list accepted from the appended zip (the ImageNet one is 21 kB).
const MAX_LABELS_BYTES: u64 = 1 << 20;

/// One label per line; a trailing empty line is not a label.
pub fn parse_labels(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.trim_end_matches('\r').to_string())
        .collect()
}

/// The label list from the zip that TFLite's metadata tools append to a model file.
pub fn labels_from_appended_zip(bytes: &[u8]) -> Option<Vec<String>> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).ok()?;
    let names: Vec<String> = archive
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .collect();
    let name = names
        .iter()
        .find(|n| n.ends_with(".txt") && n.contains("label"))
        .or_else(|| names.iter().find(|n| n.ends_with(".txt")))?;
    let file = archive.by_name(name).ok()?;
    let mut text = String::new();
    // Bounded read: a crafted zip cannot make us inflate gigabytes.
    file.take(MAX_LABELS_BYTES).read_to_string(&mut text).ok()?;
    Some(parse_labels(&text))
}

#[cfg(test)]
mod tests {
    use super::parse_labels;

    #[test]
    fn labels_drop_carriage_returns() {
        assert_eq!(
            parse_labels("background\r\ntench\r\n"),
            ["background", "tench"]
        );
    }
}
