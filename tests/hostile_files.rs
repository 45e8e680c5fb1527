//! Replays the corpus of hostile files in `tests/hostile/` (hand-made by `make.py`, plus every
//! input a fuzz run found): each is refused with a message, never a panic, in the CLI's and
//! the page's readers alike (both go through these functions).

use std::path::{Path, PathBuf};

fn corpus(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/hostile")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no hostile files in {}", dir.display());
    files
}

/// Every file of `kind` is refused by `open`, with a message that names what is wrong.
fn all_refused(kind: &str, open: impl Fn(&[u8]) -> Result<(), String>) {
    for path in corpus(kind) {
        let bytes = std::fs::read(&path).expect("read");
        let name = path.file_name().unwrap_or_default().to_string_lossy();
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
        "too-many-classes.afinar" => "21 classes",
        "too-many-classes.safetensors" => "1000 classes",
        "hidden-without-units.safetensors" => "0 units",
        "shapes-disagree.safetensors" => "output.weight",
        "unfreezes-40-blocks.safetensors" => "unfreezes 40 blocks",
        _ => return None,
    })
}

#[test]
fn hostile_project_files_are_refused() {
    all_refused("project", |bytes| {
        afinar::project::Project::open(std::io::Cursor::new(bytes))
            .map(drop)
            .map_err(|e| e.to_string())
    });
}

#[test]
fn hostile_head_files_are_refused() {
    let device = afinar::device::cpu();
    all_refused("head", |bytes| {
        afinar::head::load(bytes, None, &device)
            .map(drop)
            .map_err(|e| e.to_string())
    });
}
