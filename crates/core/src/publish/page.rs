//! The published app's page: what it says of the classifier (from the head file alone), and
//! its HTML in either form, with a Content-Security-Policy that lets it reach nothing beyond
//! its own files.

use afinar_vocabulary::TrainingRecord;
use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::head::HeadWeights;

const TEMPLATE: &str = include_str!("app/index.html");
/// Classes named in the title; the others are counted.
const TITLE_CLASSES: usize = 6;

/// The policy of the folder form: its own files, compiling wasm, its worker from a `blob:`
/// URL, photos and camera frames as `blob:` images.
const FOLDER_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
    style-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; \
    connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; \
    form-action 'none'";

/// What the page says, escaped for HTML.
#[derive(Debug)]
pub(super) struct Page {
    pub classes: Vec<String>,
    title: String,
    summary: String,
    about: String,
    not_sure_below: f64,
}

/// What the page reads of the head file's metadata beyond the weights.
#[derive(Deserialize, Default)]
struct Story {
    #[serde(default)]
    trained: Option<TrainingRecord>,
}

impl Page {
    pub fn describe(head: &HeadWeights, not_sure_below: f64) -> Self {
        let classes = head.classes.clone();
        let named: Vec<&str> = classes
            .iter()
            .take(TITLE_CLASSES)
            .map(String::as_str)
            .collect();
        let more = classes.len() - named.len();
        let title = if more > 0 {
            format!("{} and {more} more: a photo classifier", named.join(", "))
        } else {
            format!("{}: a photo classifier", join_or(&named))
        };
        let story: Story = serde_json::from_str(&head.metadata).unwrap_or_default();
        let how = match head.unfrozen_blocks {
            0 => "a new head on MobileNetV2's features".to_string(),
            1 => "a new head with MobileNetV2's last block fine-tuned".to_string(),
            n => format!("a new head with MobileNetV2's last {n} blocks fine-tuned"),
        };
        let about = match story.trained {
            Some(record) => {
                let score = match record.validation_accuracy {
                    Some(accuracy) => format!(
                        " It classified {:.1} % of {} validation photos (held out from \
                         training) right.",
                        accuracy * 100.0,
                        count(record.validation_photos)
                    ),
                    None => " No photos were held out to score it.".to_string(),
                };
                format!(
                    "Trained with Afinar on {} from {} photos: {how}.{score}",
                    record.date,
                    count(record.training_photos)
                )
            }
            None => format!(
                "Trained with Afinar: {how}. Its head file does not say when, on how many \
                 photos, or how well it scored."
            ),
        };
        let summary = format!(
            "Sorts photos into {} classes, in your browser; photos never leave your device.",
            classes.len()
        );
        Self {
            classes,
            title,
            summary,
            about,
            not_sure_below,
        }
    }

    /// The folder form's page: its script and style are files beside it.
    pub fn folder_html(&self) -> String {
        self.html(
            FOLDER_POLICY,
            r#"<link rel="stylesheet" href="style.css" />"#,
            r#"<script src="app.js"></script>"#,
        )
    }

    /// The single-file form's page: the style, the script and the parts (`inlined`, by file
    /// name, gzip in base 85) in it; the script and style allowed by their hashes, and nothing
    /// to fetch.
    pub fn single_html(&self, script: &str, style: &str, inlined: &[(&str, String)]) -> String {
        let policy = format!(
            "default-src 'none'; script-src '{}' 'wasm-unsafe-eval'; style-src '{}'; \
             img-src blob: data:; media-src blob: mediastream:; worker-src blob:; \
             object-src 'none'; base-uri 'none'; form-action 'none'",
            csp_hash(script),
            csp_hash(style)
        );
        let mut scripts = String::new();
        for (name, text) in inlined {
            scripts.push_str(&format!(
                "<script type=\"application/octet-stream\" id=\"{name}\" data-encoding=\"gzip base85\">{text}</script>\n    "
            ));
        }
        scripts.push_str(&format!("<script>{script}</script>"));
        self.html(&policy, &format!("<style>{style}</style>"), &scripts)
    }

    fn html(&self, policy: &str, style: &str, scripts: &str) -> String {
        let classes: String = self
            .classes
            .iter()
            .map(|c| format!("<li>{}</li>", escape(c)))
            .collect();
        // Replaced in one pass, so text from the head file can never name a placeholder.
        let mut out = String::with_capacity(TEMPLATE.len() + scripts.len() + style.len());
        let mut rest = TEMPLATE;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let Some(end) = rest[start..].find("}}") else {
                break;
            };
            let key = &rest[start + 2..start + end];
            match key {
                "policy" => out.push_str(policy),
                "summary" => out.push_str(&escape(&self.summary)),
                "title" => out.push_str(&escape(&self.title)),
                "about" => out.push_str(&escape(&self.about)),
                "classes" => out.push_str(&classes),
                "not_sure_below" => out.push_str(&self.not_sure_below.to_string()),
                "style" => out.push_str(style),
                "scripts" => out.push_str(scripts),
                other => out.push_str(&format!("{{{{{other}}}}}")),
            }
            rest = &rest[start + end + 2..];
        }
        out.push_str(rest);
        out
    }
}

fn join_or(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// `n` with thousands separated by commas.
fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Text made safe for HTML's text and attribute values.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A CSP source allowing an inline script or style with exactly this text.
pub(super) fn csp_hash(text: &str) -> String {
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
    )
}
