//! Project files saved by the page, trained and evaluated by the command.

use std::path::PathBuf;

use crate::common;
use crate::{afinar, json_lines, model};

/// A project file (as the page saves it) is data for `afinar train` and `afinar eval`: its
/// classes, its photos, its recipe and its head; a damaged one is refused with a message.
#[test]
fn a_project_file_trains_and_evaluates() {
    use afinar::project::ProjectWriter;
    use afinar_vocabulary::{RecipeName, TrainSettings};

    let dir = tempfile::tempdir().expect("tempdir");
    let flowers = common::shared_dir().join("data/flower_photos");
    let classes = ["daisy".to_string(), "sunflowers".to_string()];
    let settings = TrainSettings {
        epochs: 4,
        val_fraction: 0.25,
        ..TrainSettings::named(RecipeName::Quick)
    };
    let write_project = |path: &std::path::Path, head: Option<&[u8]>| {
        let file = std::fs::File::create(path).expect("project file");
        let mut project = ProjectWriter::new(file, &classes);
        for (class, name) in classes.iter().enumerate() {
            let mut photos: Vec<PathBuf> = std::fs::read_dir(flowers.join(name))
                .expect("photos")
                .map(|e| e.expect("entry").path())
                .collect();
            photos.sort();
            for photo in photos.iter().take(8) {
                let bytes = std::fs::read(photo).expect("photo");
                let name = photo.file_name().expect("name").to_string_lossy();
                project.add_photo(class, &name, &bytes).expect("add photo");
            }
        }
        project
            .finish(settings.clone(), head, None)
            .expect("finish");
    };
    let project = dir.path().join("flowers.afinar");
    write_project(&project, None);
    let (project_file, cache) = (project.to_string_lossy(), dir.path().join("cache"));
    let cache_dir = cache.to_string_lossy();
    let head = dir.path().join("head.safetensors");
    let head_file = head.to_string_lossy();
    // No --recipe: the project's own (4 epochs).
    let out = afinar(&[
        "train",
        "--data",
        &project_file,
        "--out",
        &head_file,
        "--model",
        &model(),
        "--cache-dir",
        &cache_dir,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches("train loss").count(), 4, "{stdout}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("trained on 12 photos, validated on 4"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Without a head in the project, eval needs --head.
    let eval = |data: &str, head: Option<&str>| {
        let mut args = vec!["eval", "--data", data, "--json", "--cache-dir", &cache_dir];
        if let Some(head) = head {
            args.extend(["--head", head]);
        }
        let model = model();
        args.extend(["--model", &model]);
        afinar(&args)
    };
    let out = eval(&project_file, None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no trained head"));
    let out = eval(&project_file, Some(&head_file));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let scores = json_lines(&out).pop().expect("a JSON line");
    assert_eq!(scores["classes"], serde_json::json!(classes));
    // The validation photos of the project's split: 2 of 8 per class.
    assert_eq!(scores["per_class"]["daisy"]["photos"], 2, "{scores}");
    assert!(
        scores["accuracy"].as_f64().expect("accuracy") >= 0.75,
        "{scores}"
    );

    // With the head inside, eval takes it and scores the same.
    let with_head = dir.path().join("with-head.afinar");
    write_project(&with_head, Some(&std::fs::read(&head).expect("head")));
    let out = eval(&with_head.to_string_lossy(), None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = json_lines(&out).pop().expect("a JSON line");
    // Mistakes name the photos where they were unpacked (a folder per project file).
    for key in ["accuracy", "loss", "confusion", "per_class"] {
        assert_eq!(again[key], scores[key], "{key}");
    }

    // Cut short: refused, with what is wrong.
    let bytes = std::fs::read(&with_head).expect("project");
    let damaged = dir.path().join("damaged.afinar");
    std::fs::write(&damaged, &bytes[..bytes.len() / 2]).expect("write");
    let out = eval(&damaged.to_string_lossy(), None);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the project file is damaged"), "{stderr}");
}

/// A project file whose manifest names a photo outside the folder it is unpacked into
/// (zip-slip: `../…` or an absolute path) is refused, and nothing is written anywhere.
#[test]
fn a_project_naming_a_path_outside_its_folder_is_refused() {
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("cache");
    // The CLI unpacks into cache/projects/<hash>/: three levels up is the temporary folder.
    let escaped = dir.path().join("escaped.jpg");
    let absolute = escaped.to_string_lossy().into_owned();
    for evil in ["../../../escaped.jpg", absolute.as_str()] {
        let manifest = serde_json::json!({
            "format": "afinar-project", "version": 1, "written_by": "a crafted file",
            "classes": [
                {"name": "a", "photos": [{"name": "a.jpg", "file": evil},
                                         {"name": "b.jpg", "file": "photos/0/00001.jpg"}]},
                {"name": "b", "photos": [{"name": "c.jpg", "file": "photos/1/00000.jpg"},
                                         {"name": "d.jpg", "file": "photos/1/00001.jpg"}]},
            ],
            "settings": {}, "head": null, "last_run": null,
        });
        let path = dir.path().join("evil.afinar");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).expect("file"));
        for (name, bytes) in [
            ("manifest.json", manifest.to_string().into_bytes()),
            (evil, b"written where it should not be".to_vec()),
            ("photos/0/00001.jpg", b"x".to_vec()),
            ("photos/1/00000.jpg", b"y".to_vec()),
            ("photos/1/00001.jpg", b"z".to_vec()),
        ] {
            zip.start_file(name, SimpleFileOptions::default())
                .expect("entry");
            zip.write_all(&bytes).expect("write");
        }
        zip.finish().expect("zip");
        let out = afinar(&[
            "train",
            "--data",
            &path.to_string_lossy(),
            "--out",
            &dir.path().join("head.safetensors").to_string_lossy(),
            "--model",
            &model(),
            "--cache-dir",
            &cache.to_string_lossy(),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{evil}: {stderr}");
        assert!(
            stderr.contains("not a name Afinar writes"),
            "{evil}: {stderr}"
        );
        assert!(!escaped.exists(), "{evil}: written outside");
        assert!(!cache.join("projects").exists(), "{evil}: unpacked");
    }
}
