use std::io::{Cursor, Write};

use afinar_protocol::{RecipeName, TrainSettings};
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
