use std::io::{Cursor, Write};

use afinar_vocabulary::{RecipeName, TrainSettings};
use zip::write::SimpleFileOptions;

use super::*;

fn classes() -> Vec<String> {
    vec!["daisy".into(), "roses/red".into()]
}

/// A project of two classes, three small "photos" each (any bytes: a project does not decode
/// them), and a head.
fn sample_project() -> Vec<u8> {
    let mut writer = ProjectWriter::new(Cursor::new(Vec::new()), &classes());
    for i in 0..6u8 {
        let name = format!("IMG {i}.JPG");
        writer
            .add_photo(usize::from(i % 2), &name, &[i; 100])
            .unwrap();
    }
    assert_eq!(writer.photos(), 6);
    let settings = TrainSettings::named(RecipeName::Better);
    writer
        .finish(settings, Some(b"head bytes"), None)
        .unwrap()
        .into_inner()
}

fn open(bytes: &[u8]) -> Result<Project<Cursor<&[u8]>>, ProjectError> {
    Project::open(Cursor::new(bytes))
}

/// A zip holding these entries (stored).
fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes) in entries {
        zip.start_file(*name, SimpleFileOptions::default()).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

#[test]
fn round_trip_keeps_classes_photos_recipe_and_head() {
    let bytes = sample_project();
    let mut project = open(&bytes).unwrap();
    let m = project.manifest.clone();
    assert_eq!((m.format.as_str(), m.version), (FORMAT, VERSION));
    let names: Vec<&str> = m.classes.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["daisy", "roses/red"]);
    assert_eq!(m.settings, TrainSettings::named(RecipeName::Better));
    assert_eq!(m.photo_count(), 6);
    let photos: Vec<(usize, String)> = m.photos().map(|(c, p)| (c, p.name.clone())).collect();
    assert_eq!(photos[0], (0, "IMG 0.JPG".to_string()));
    assert_eq!(photos[3], (1, "IMG 1.JPG".to_string()));
    for (class, entry) in m.photos() {
        let bytes = project.read(&entry.file).unwrap();
        let i: u8 = entry.name[4..5].parse().unwrap();
        assert_eq!(usize::from(i % 2), class);
        assert_eq!(bytes, vec![i; 100]);
    }
    assert_eq!(project.head().unwrap().as_deref(), Some(&b"head bytes"[..]));
}

#[test]
fn extract_gives_a_dataset_in_project_order() {
    let bytes = sample_project();
    let dir = tempfile::tempdir().unwrap();
    let data = open(&bytes).unwrap().extract(dir.path()).unwrap();
    assert_eq!(data.classes, classes());
    let classes: Vec<usize> = data.samples.iter().map(|s| s.class).collect();
    assert_eq!(classes, [0, 0, 0, 1, 1, 1]);
    assert_eq!(
        std::fs::read(&data.samples[4].path).unwrap(),
        vec![3u8; 100]
    );
}

#[test]
fn a_file_that_is_not_a_zip_is_foreign() {
    let err = open(b"\xff\xd8\xff\xe0 a jpeg, say").err().unwrap();
    assert!(matches!(err, ProjectError::Foreign(_)), "{err}");
    assert!(err.to_string().contains("not an Afinar project"), "{err}");
}

#[test]
fn a_zip_without_a_manifest_or_with_another_one_is_foreign() {
    let err = open(&zip_of(&[("photo.jpg", b"x")])).err().unwrap();
    assert!(err.to_string().contains("no manifest.json"), "{err}");
    let other = zip_of(&[(
        MANIFEST_FILE,
        br#"{"format": "something-else", "version": 1}"#,
    )]);
    assert!(matches!(open(&other), Err(ProjectError::Foreign(_))));
}

#[test]
fn a_newer_version_is_refused_by_name() {
    let newer = zip_of(&[(
        MANIFEST_FILE,
        br#"{"format": "afinar-project", "version": 7, "whatever": "comes next"}"#,
    )]);
    let err = open(&newer).err().unwrap();
    assert!(matches!(err, ProjectError::Newer { found: 7 }), "{err}");
    assert!(err.to_string().contains("newer version of Afinar"), "{err}");
}

#[test]
fn a_cut_short_file_is_damaged() {
    let bytes = sample_project();
    for keep in [bytes.len() - 30, bytes.len() / 2, 10] {
        let err = open(&bytes[..keep]).err().unwrap();
        assert!(matches!(err, ProjectError::Damaged(_)), "{keep}: {err}");
    }
}

#[test]
fn a_changed_photo_byte_is_found_before_anything_is_read() {
    let mut bytes = sample_project();
    // The first photo's bytes (all 0) follow its local header.
    let at = bytes
        .windows(100)
        .position(|w| w.iter().all(|&b| b == 0))
        .unwrap();
    bytes[at + 50] = 1;
    let err = open(&bytes).err().unwrap();
    assert!(matches!(err, ProjectError::Damaged(_)), "{err}");
    assert!(err.to_string().contains("photos/0/00000"), "{err}");
}

#[test]
fn an_entry_the_manifest_names_must_be_there() {
    let manifest = serde_json::json!({
        "format": FORMAT, "version": VERSION, "written_by": "test",
        "classes": [{"name": "a", "photos": [{"name": "1.jpg", "file": "photos/0/00000.jpg"}]}],
        "settings": TrainSettings::default(), "head": null, "last_run": null,
    });
    let bytes = zip_of(&[(MANIFEST_FILE, manifest.to_string().as_bytes())]);
    let err = open(&bytes).err().unwrap();
    assert!(matches!(err, ProjectError::Damaged(_)), "{err}");
}

#[test]
fn a_photo_for_a_class_that_is_not_there_is_refused() {
    let mut writer = ProjectWriter::new(Cursor::new(Vec::new()), &classes());
    let err = writer.add_photo(2, "a.jpg", b"x").err().unwrap();
    assert!(
        matches!(err, ProjectError::NoSuchClass { class: 2, .. }),
        "{err}"
    );
}

/// A zip with a manifest (of one class per entry of `classes`, listing the given entry names)
/// and, stored beside it, the entries in `files` (deflated where they repeat well).
fn crafted(classes: &[&[&str]], settings: serde_json::Value, files: &[(&str, &[u8])]) -> Vec<u8> {
    let classes: Vec<serde_json::Value> = classes
        .iter()
        .enumerate()
        .map(|(i, files)| {
            let photos: Vec<_> = files
                .iter()
                .map(|f| serde_json::json!({"name": "p.jpg", "file": f}))
                .collect();
            serde_json::json!({"name": format!("class {i}"), "photos": photos})
        })
        .collect();
    let manifest = serde_json::json!({
        "format": FORMAT, "version": VERSION, "written_by": "a crafted file",
        "classes": classes, "settings": settings, "head": null, "last_run": null,
    })
    .to_string();
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let deflated = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    zip.start_file(MANIFEST_FILE, deflated).unwrap();
    zip.write_all(manifest.as_bytes()).unwrap();
    for (name, bytes) in files {
        zip.start_file(*name, deflated).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn refusal(bytes: &[u8]) -> String {
    match open(bytes) {
        Ok(_) => panic!("the crafted project was opened"),
        Err(e) => {
            assert!(matches!(e, ProjectError::Refused(_)), "{e}");
            e.to_string()
        }
    }
}

#[test]
fn entry_names_that_leave_the_project_folder_are_refused_and_nothing_is_written() {
    let parent = tempfile::tempdir().unwrap();
    let inside = parent.path().join("project");
    let outside = parent.path().join("escaped.jpg");
    let absolute = outside.to_string_lossy().into_owned();
    let windows = r"photos\0\..\..\escaped.jpg";
    for evil in [
        "../escaped.jpg",
        "photos/0/../../../escaped.jpg",
        absolute.as_str(),
        windows,
        "C:/escaped.jpg",
        "photos/0/00000.jpg/../../../escaped.jpg",
    ] {
        let bytes = crafted(
            &[&[evil, "photos/0/00001.jpg"], &["photos/1/00000.jpg"]],
            serde_json::to_value(TrainSettings::default()).unwrap(),
            &[
                (evil, b"not a photo"),
                ("photos/0/00001.jpg", b"x"),
                ("photos/1/00000.jpg", b"y"),
            ],
        );
        let message = refusal(&bytes);
        assert!(
            message.contains("not a name Afinar writes"),
            "{evil}: {message}"
        );
        assert!(!outside.exists(), "{evil} was written outside");
        assert!(!inside.exists());
    }
}

#[test]
fn a_photo_filed_under_another_class_folder_is_refused() {
    let bytes = crafted(
        &[&["photos/1/00000.jpg"], &["photos/1/00001.jpg"]],
        serde_json::to_value(TrainSettings::default()).unwrap(),
        &[("photos/1/00000.jpg", b"x"), ("photos/1/00001.jpg", b"y")],
    );
    assert!(refusal(&bytes).contains("photos/1/00000.jpg"));
}

#[test]
fn a_deflate_bomb_named_thousands_of_times_is_refused_at_once() {
    // 64 MiB of zeros deflate to about 64 KiB; inflating it 2,000 times would take minutes.
    let bomb = vec![0u8; 64 << 20];
    let name = "photos/0/00000.jpg";
    let mentions = vec![name; 2000];
    let bytes = crafted(
        &[&mentions, &["photos/1/00000.jpg"]],
        serde_json::to_value(TrainSettings::default()).unwrap(),
        &[(name, &bomb), ("photos/1/00000.jpg", b"y")],
    );
    assert!(bytes.len() < 1 << 20, "{} bytes", bytes.len());
    let start = std::time::Instant::now();
    let message = refusal(&bytes);
    let took = start.elapsed();
    assert!(message.contains("named more than once"), "{message}");
    // Refused from the manifest alone, before any entry is inflated.
    assert!(took.as_secs_f64() < 1.0, "{took:?}");
}

#[test]
fn a_recipe_that_cannot_run_gives_way_to_the_default_one_and_says_which_field() {
    let two_classes: &[&[&str]] = &[&["photos/0/00000.jpg"], &["photos/1/00000.jpg"]];
    let entries: &[(&str, &[u8])] = &[("photos/0/00000.jpg", b"x"), ("photos/1/00000.jpg", b"y")];
    let settings = |patch: serde_json::Value| {
        let mut s = serde_json::to_value(TrainSettings::named(RecipeName::Best)).unwrap();
        s.as_object_mut()
            .unwrap()
            .extend(patch.as_object().unwrap().clone());
        s
    };
    for (patch, field) in [
        (serde_json::json!({"views": 100_000}), "views"),
        (serde_json::json!({"epochs": 1_000_000_000u64}), "epochs"),
        (serde_json::json!({"batch_size": 1u64 << 40}), "batch size"),
        (serde_json::json!({"unfreeze": 40}), "unfreeze"),
        (
            serde_json::json!({"finetune_epochs": 1_000_000}),
            "fine-tuning",
        ),
        (serde_json::json!({"warmup_epochs": 1_000_000}), "warm-up"),
        (serde_json::json!({"patience": 0}), "patience"),
    ] {
        let bytes = crafted(two_classes, settings(patch.clone()), entries);
        let project = open(&bytes).unwrap_or_else(|e| panic!("{patch}: {e}"));
        let notes = project.notes.join(" ");
        assert!(notes.contains("recipe"), "{patch}: {notes}");
        assert!(notes.contains(field), "{patch}: {notes}");
        assert!(project.manifest.settings.auto, "{patch}");
        assert!(
            Recipe::from_settings(&project.manifest.settings)
                .check()
                .is_ok()
        );
        assert_eq!(project.manifest.photo_count(), 2);
    }
    // A recipe that runs is kept as it is, without a note.
    let sample = sample_project();
    assert!(open(&sample).unwrap().notes.is_empty());
}

#[test]
fn counts_beyond_any_real_project_are_refused() {
    let many: Vec<String> = (0..=MAX_CLASSES)
        .map(|c| format!("photos/{c}/00000.jpg"))
        .collect();
    let many: Vec<Vec<&str>> = many.iter().map(|f| vec![f.as_str()]).collect();
    let many: Vec<&[&str]> = many.iter().map(Vec::as_slice).collect();
    let message = refusal(&crafted(
        &many,
        serde_json::to_value(TrainSettings::default()).unwrap(),
        &[],
    ));
    let too_many = format!("{} classes", MAX_CLASSES + 1);
    assert!(message.contains(&too_many), "{message}");
    // An upper-case extension is not what the writer makes (and two could meet on a
    // case-insensitive disk).
    let upper = crafted(
        &[&["photos/0/00000.JPG"], &["photos/1/00000.jpg"]],
        serde_json::to_value(TrainSettings::default()).unwrap(),
        &[("photos/0/00000.JPG", b"x"), ("photos/1/00000.jpg", b"y")],
    );
    assert!(refusal(&upper).contains("not a name Afinar writes"));
}

#[test]
fn entries_sharing_their_bytes_are_refused() {
    // Two entries whose central-directory records point at the same local entry: one
    // deflate stream read under many names.
    let names = ["photos/0/00000.jpg", "photos/1/00000.jpg"];
    let mut bytes = crafted(
        &[&names[..1], &names[1..]],
        serde_json::to_value(TrainSettings::default()).unwrap(),
        &[(names[0], b"same bytes"), (names[1], b"same bytes")],
    );
    let central: Vec<usize> = bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == b"PK\x01\x02")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(central.len(), 3, "manifest and two photos");
    // The local-header offset is at 42 in a central-directory record.
    let first: [u8; 4] = bytes[central[1] + 42..central[1] + 46].try_into().unwrap();
    bytes[central[2] + 42..central[2] + 46].copy_from_slice(&first);
    let message = refusal(&bytes);
    assert!(message.contains("overlap"), "{message}");
}

#[test]
fn an_entry_that_inflates_past_its_recorded_size_is_damaged() {
    let name = "photos/0/00000.jpg";
    let mut bytes = crafted(
        &[&[name], &["photos/1/00000.jpg"]],
        serde_json::to_value(TrainSettings::default()).unwrap(),
        &[(name, &[7u8; 5000]), ("photos/1/00000.jpg", b"y")],
    );
    // Say 100 bytes where 5,000 inflate, in the local header (offset 22) and the central
    // directory (offset 24) of that entry.
    let needle = name.as_bytes();
    let positions: Vec<usize> = bytes
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(positions.len(), 2, "local header, central directory");
    let (local, central) = (positions[0] - 30, positions[1] - 46);
    assert_eq!(&bytes[local..local + 4], b"PK\x03\x04");
    assert_eq!(&bytes[central..central + 4], b"PK\x01\x02");
    bytes[local + 22..local + 26].copy_from_slice(&100u32.to_le_bytes());
    bytes[central + 24..central + 28].copy_from_slice(&100u32.to_le_bytes());
    let err = open(&bytes).err().unwrap();
    assert!(matches!(err, ProjectError::Damaged(_)), "{err}");
    assert!(err.to_string().contains(name), "{err}");
}
