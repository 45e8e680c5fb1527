use std::collections::HashMap;
use std::io::Read;

use super::*;
use crate::architecture::FEATURE_DIM;

const HIDDEN: usize = 4;
const MODEL_BYTES: &[u8] = b"stands in for a model: only its sha256 is read";
const SCRIPT: &[u8] = b"let wasm_bindgen = (function () { return function () {}; })();";
const WASM: &[u8] = b"\0asm\x01\0\0\0";

/// A head file with these classes (zero weights), trained on the stand-in model.
fn head_file(classes: &[&str], trained: Option<TrainingRecord>) -> Vec<u8> {
    let metadata = serde_json::json!({
        "classes": classes,
        "base_model_sha256": sha256_hex(MODEL_BYTES),
        "preprocessing": "scale",
        "unfrozen_blocks": 0,
        "trained": trained,
    });
    let floats = |n: usize| vec![0u8; n * 4];
    let tensors = [
        (
            "hidden.weight",
            vec![FEATURE_DIM, HIDDEN],
            floats(FEATURE_DIM * HIDDEN),
        ),
        ("hidden.bias", vec![HIDDEN], floats(HIDDEN)),
        (
            "output.weight",
            vec![HIDDEN, classes.len()],
            floats(HIDDEN * classes.len()),
        ),
        ("output.bias", vec![classes.len()], floats(classes.len())),
    ];
    let views: Vec<(&str, safetensors::tensor::TensorView)> = tensors
        .iter()
        .map(|(name, shape, data)| {
            let view = safetensors::tensor::TensorView::new(
                safetensors::tensor::Dtype::F32,
                shape.clone(),
                data,
            )
            .expect("a consistent tensor");
            (*name, view)
        })
        .collect();
    let info = HashMap::from([
        ("format".to_string(), crate::head::FORMAT.to_string()),
        ("metadata".to_string(), metadata.to_string()),
    ]);
    safetensors::serialize(views, Some(info)).expect("a head file")
}

use afinar_vocabulary::TrainingRecord;

fn parts(head: &[u8]) -> AppParts<'_> {
    AppParts {
        model: MODEL_BYTES,
        head,
        worker_script: SCRIPT,
        worker_wasm: WASM,
        not_sure_below: 0.7,
    }
}

fn record() -> TrainingRecord {
    TrainingRecord {
        date: "2026-12-07".into(),
        training_photos: 2775,
        validation_photos: 695,
        validation_accuracy: Some(0.934),
    }
}

fn index(app: &PublishedApp) -> String {
    let folder = app.folder();
    let page = folder
        .iter()
        .find(|f| f.name == "index.html")
        .expect("an index.html");
    String::from_utf8(page.bytes.clone()).expect("text")
}

#[test]
fn the_page_names_the_classes_and_how_they_were_trained() {
    let head = head_file(&["daisy", "roses", "tulips"], Some(record()));
    let app = PublishedApp::new(parts(&head)).expect("publishable");
    let page = index(&app);
    assert!(
        page.contains("<title>daisy, roses or tulips: a photo classifier</title>"),
        "{page}"
    );
    assert!(page.contains("<li>roses</li>"), "{page}");
    assert!(page.contains("on 2026-12-07 from 2,775 photos"), "{page}");
    assert!(page.contains("93.4 % of 695 validation photos"), "{page}");
    assert!(page.contains(r#"data-not-sure-below="0.7""#), "{page}");
    assert!(!page.contains("{{"), "a placeholder was left: {page}");

    let older = head_file(&["a", "b"], None);
    let page = index(&PublishedApp::new(parts(&older)).expect("publishable"));
    assert!(page.contains("does not say when"), "{page}");
}

#[test]
fn class_names_cannot_inject_markup() {
    let head = head_file(
        &["<script>alert(1)</script>", "{{policy}} \"quoted\""],
        None,
    );
    let app = PublishedApp::new(parts(&head)).expect("publishable");
    for page in [
        index(&app),
        String::from_utf8(app.single_file()).expect("text"),
    ] {
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(
            page.contains("{{policy}} &quot;quoted&quot;"),
            "a class name was read as a placeholder"
        );
        assert_eq!(page.matches("Content-Security-Policy").count(), 1);
    }
}

#[test]
fn a_head_for_another_model_or_foreign_worker_files_are_refused() {
    let head = head_file(&["a", "b"], None);
    let other_model = AppParts {
        model: b"another model",
        ..parts(&head)
    };
    let error = PublishedApp::new(other_model).expect_err("another base model");
    assert!(error.to_string().contains("another base model"), "{error}");
    let not_wasm = AppParts {
        worker_wasm: b"<html>",
        ..parts(&head)
    };
    assert!(matches!(
        PublishedApp::new(not_wasm),
        Err(PublishError::Worker(_))
    ));
    let not_bindgen = AppParts {
        worker_script: b"console.log(1)",
        ..parts(&head)
    };
    assert!(matches!(
        PublishedApp::new(not_bindgen),
        Err(PublishError::Worker(_))
    ));
    for threshold in [-0.1, 1.5, f64::NAN] {
        let odd = AppParts {
            not_sure_below: threshold,
            ..parts(&head)
        };
        assert!(matches!(
            PublishedApp::new(odd),
            Err(PublishError::Threshold(_))
        ));
    }
    let error = PublishedApp::new(parts(b"not a head")).expect_err("not a head file");
    assert!(matches!(error, PublishError::Head(_)), "{error}");
}

#[test]
fn the_zip_holds_the_folder_and_is_the_same_every_time() {
    let head = head_file(&["a", "b"], Some(record()));
    let app = PublishedApp::new(parts(&head)).expect("publishable");
    let zip = app.zip().expect("a zip");
    assert_eq!(zip, app.zip().expect("a zip"), "two zips of one app differ");
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).expect("readable");
    let folder = app.folder();
    assert_eq!(archive.len(), folder.len());
    for file in &folder {
        let mut entry = archive
            .by_name(&format!("{ZIP_FOLDER}/{}", file.name))
            .expect("in the zip");
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).expect("readable");
        assert_eq!(bytes, file.bytes, "{}", file.name);
    }
    let names: Vec<&str> = folder.iter().map(|f| f.name.as_str()).collect();
    for name in [
        "index.html",
        "app.js",
        "style.css",
        "sw.js",
        WORKER_SCRIPT,
        WORKER_WASM,
        MODEL,
        HEAD,
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let sw = String::from_utf8(
        folder
            .iter()
            .find(|f| f.name == "sw.js")
            .expect("sw")
            .bytes
            .clone(),
    )
    .expect("text");
    assert!(
        sw.contains(&format!("\"{WORKER_WASM}\"")) && sw.contains("afinar-published:"),
        "{sw}"
    );
}

/// Base 85 back to bytes, as `app.js` does.
pub(super) fn text_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| text::DIGITS.bytes().position(|d| d == c).expect("a digit") as u64;
    let mut out = Vec::new();
    for group in text.as_bytes().chunks(5) {
        let v = (0..5).fold(0u64, |v, i| v * 85 + group.get(i).map_or(84, |&c| value(c)));
        out.extend_from_slice(&(v as u32).to_be_bytes()[..group.len() - 1]);
    }
    out
}

/// The inline parts of a single-file page, by id, decoded.
fn inlined(page: &str) -> HashMap<String, Vec<u8>> {
    let mut parts = HashMap::new();
    for chunk in page
        .split("<script type=\"application/octet-stream\" id=\"")
        .skip(1)
    {
        let (id, rest) = chunk.split_once('"').expect("an id");
        let start = rest.find('>').expect("a tag") + 1;
        let end = rest.find("</script>").expect("a closing tag");
        let gzipped = text_decode(&rest[start..end]);
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(gzipped.as_slice())
            .read_to_end(&mut bytes)
            .expect("gzip");
        parts.insert(id.to_string(), bytes);
    }
    parts
}

#[test]
fn the_single_file_inlines_every_part_and_allows_only_its_own_scripts() {
    let head = head_file(&["a", "b"], Some(record()));
    let app = PublishedApp::new(parts(&head)).expect("publishable");
    let page = String::from_utf8(app.single_file()).expect("text");
    assert_eq!(
        page.as_bytes(),
        app.single_file(),
        "two single files of one app differ"
    );
    let parts = inlined(&page);
    assert_eq!(parts[MODEL], MODEL_BYTES);
    assert_eq!(parts[HEAD], head);
    assert_eq!(parts[WORKER_SCRIPT], SCRIPT);
    assert_eq!(parts[WORKER_WASM], WASM);
    let script = format!("<script>{APP_SCRIPT}</script>");
    assert!(
        page.contains(&script),
        "the app's script is not inlined whole"
    );
    assert!(
        !APP_SCRIPT.contains("</script"),
        "the script would end its own element"
    );
    assert!(
        page.contains(&page::csp_hash(APP_SCRIPT)) && page.contains(&page::csp_hash(APP_STYLE))
    );
    assert!(page.contains("default-src 'none'"), "{page}");
    assert!(
        APP_SCRIPT.contains(&format!("\"{}\"", text::DIGITS)),
        "app.js decodes with other digits"
    );
}
