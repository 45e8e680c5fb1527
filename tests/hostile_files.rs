//! Replays the hostile files: the project files in `tests/hostile/project/` (hand-made by
//! `make.py`), the head files built below, and every input a fuzz run found (kept by
//! `scripts/fuzz` in `tests/hostile/<kind>/`): each is refused with a message (or, for model
//! files and photos a fuzzer made, read), never a panic, in the CLI's and the page's readers
//! alike (both go through these functions).

mod common;

use std::path::Path;

use common::crafted_head;

/// The files kept in `tests/hostile/<kind>/`, by name.
fn kept(kind: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/hostile")
        .join(kind);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<(String, Vec<u8>)> = entries
        .map(|e| {
            let path = e.expect("entry").path();
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into();
            (name, std::fs::read(&path).expect("read"))
        })
        .collect();
    files.sort();
    files
}

/// Every file is refused by `open`, with a message that names what is wrong.
fn all_refused(files: Vec<(String, Vec<u8>)>, open: impl Fn(&[u8]) -> Result<(), String>) {
    assert!(!files.is_empty(), "no hostile files");
    for (name, bytes) in files {
        let start = std::time::Instant::now();
        match open(&bytes) {
            Ok(()) => panic!("{name} was accepted"),
            Err(message) => {
                let why = expected(&name).unwrap_or("");
                assert!(message.contains(why), "{name}: {message}");
                println!("{name}: refused in {:?}: {message}", start.elapsed());
            }
        }
    }
}

/// What the refusal of each hand-made file must say (`None`: a fuzz find, refused for
/// whatever reason).
fn expected(file: &str) -> Option<&'static str> {
    Some(match file {
        "zip-slip-parent.afinar" | "zip-slip-absolute.afinar" | "zip-slip-backslash.afinar" => {
            "not a name Afinar writes"
        }
        "another-class-folder.afinar" => "not a name Afinar writes",
        "bomb-named-2000-times.afinar" => "named more than once",
        "upper-case-extension.afinar" => "not a name Afinar writes",
        "head-elsewhere.afinar" => "its head is",
        "too-many-classes.afinar" => "201 classes",
        "too-many-classes.safetensors" => "1000 classes",
        "hidden-without-units.safetensors" => "0 units",
        "shapes-disagree.safetensors" => "output.weight",
        "unfreezes-40-blocks.safetensors" => "unfreezes 40 blocks",
        _ => return None,
    })
}

#[test]
fn hostile_project_files_are_refused() {
    all_refused(kept("project"), |bytes| {
        afinar::project::Project::open(std::io::Cursor::new(bytes))
            .map(drop)
            .map_err(|e| e.to_string())
    });
}

/// The hand-made hostile heads (built here: a `.safetensors` kept in the repository would look
/// like model weights), then any fuzz finds.
fn hostile_heads() -> Vec<(String, Vec<u8>)> {
    let many: Vec<String> = (0..1000).map(|i| format!("class {i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let made = [
        (
            "too-many-classes.safetensors",
            crafted_head(&many, &[("hidden.bias", vec![128])], 0),
        ),
        (
            "hidden-without-units.safetensors",
            crafted_head(&["a", "b"], &[("hidden.bias", vec![0])], 0),
        ),
        (
            "shapes-disagree.safetensors",
            crafted_head(
                &["a", "b", "c"],
                &[
                    ("hidden.weight", vec![1280, 8]),
                    ("hidden.bias", vec![8]),
                    ("output.weight", vec![8, 2]),
                    ("output.bias", vec![3]),
                ],
                0,
            ),
        ),
        (
            "unfreezes-40-blocks.safetensors",
            crafted_head(&["a", "b"], &[("hidden.bias", vec![8])], 40),
        ),
    ];
    made.into_iter()
        .map(|(name, bytes)| (name.to_string(), bytes))
        .chain(kept("head"))
        .collect()
}

#[test]
fn hostile_head_files_are_refused() {
    let device = afinar::device::cpu();
    all_refused(hostile_heads(), |bytes| {
        afinar::head::load(bytes, None, &device)
            .map(drop)
            .map_err(|e| e.to_string())
    });
}

/// What the model-file and photo fuzz targets found, replayed through the readers they fuzz:
/// the structure-aware target's plans (`tests/hostile/tflite-graph/`, its raw inputs, kept to
/// cover its paths), `.tflite` files (`tests/hostile/tflite/`) and photos
/// (`tests/hostile/image/`). Each is refused or read, never a panic; fuzz finds have no one
/// reason to be refused.
#[test]
fn fuzz_finds_in_model_files_and_photos_are_read_without_a_panic() {
    use arbitrary::Arbitrary;
    use common::tflite_graph::{GraphPlan, read_with_every_reader};
    let plans = kept("tflite-graph");
    assert!(!plans.is_empty(), "no kept plans");
    for (name, bytes) in plans {
        let plan = GraphPlan::arbitrary_take_rest(arbitrary::Unstructured::new(&bytes))
            .unwrap_or_else(|e| panic!("{name} is not a plan: {e}"));
        read_with_every_reader(&plan.to_tflite());
    }
    for (_, bytes) in kept("tflite") {
        read_with_every_reader(&bytes);
        let _ = afinar::labels::labels_from_appended_zip(&bytes);
    }
    for (_, bytes) in kept("image") {
        let _ = afinar::ModelInput::from_image_bytes(&bytes);
    }
}
