//! `afinar classify`: real photos, folders, bad files, output formats, exit codes.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::common::{self, models_dir, references};
use crate::{afinar, json_lines, model};

#[test]
fn classify_json_gives_the_reference_labels_and_reports_bad_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let notes = dir.path().join("notes.jpg");
    std::fs::write(&notes, "not a photo").expect("write");
    let refs: Vec<_> = references()
        .into_iter()
        .filter(|(_, r)| r.is_jpeg())
        .collect();
    let mut files: Vec<String> = refs
        .iter()
        .map(|(_, r)| r.image_path().to_string_lossy().into_owned())
        .collect();
    files.insert(2, notes.to_string_lossy().into_owned());
    let model = model();
    let mut args = vec!["classify", "--json", "--model", &model];
    args.extend(files.iter().map(String::as_str));
    let out = afinar(&args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a bad file makes the exit code non-zero"
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), files.len(), "one line per file");
    for (line, file) in lines.iter().zip(&files) {
        assert_eq!(
            line["file"],
            file.as_str(),
            "files keep their order and spelling"
        );
    }
    assert!(
        lines[2]["error"]
            .as_str()
            .expect("error")
            .contains("not an image")
    );
    let labels = std::fs::read_to_string(models_dir().join("imagenet_labels.txt")).expect("labels");
    let labels: Vec<&str> = labels.lines().collect();
    let good: Vec<&Value> = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, l)| l)
        .collect();
    for ((name, r), line) in refs.iter().zip(good) {
        let top = line["top"].as_array().expect("top");
        assert_eq!(top.len(), 5);
        let index = top[0]["index"].as_u64().expect("index") as usize;
        let prob = top[0]["prob"].as_f64().expect("prob");
        assert_eq!(top[0]["label"], labels[index]);
        // LiteRT's top-1 where it is confident, the float reference's wherever it is clear.
        let (lite_index, _, lite_prob) = &r.top5_litert[0];
        if *lite_prob > 0.5 {
            assert_eq!(index, *lite_index, "{name}: LiteRT says {lite_index}");
        }
        if r.top5[0].2 > 0.3 {
            assert_eq!(index, r.top1(), "{name}");
            assert!(
                (prob - f64::from(r.top5[0].2)).abs() < 0.05,
                "{name}: {prob}"
            );
        }
    }
}

#[test]
fn classify_prints_readable_top_k() {
    let daisy = common::shared_dir().join("data/flower_photos/daisy/100080576_f52e8ee070_n.jpg");
    let out = afinar(&[
        "classify",
        "--top",
        "3",
        "--model",
        &model(),
        &daisy.to_string_lossy(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[1].contains("daisy [986]"), "{text}");
    assert!(lines[1].trim_start().starts_with("99.9"), "{text}");
}

#[test]
fn classify_runs_on_the_kernels_asked_for_and_says_which() {
    use afinar::model::kernels::CpuKernels;
    let daisy = common::shared_dir().join("data/flower_photos/daisy/100080576_f52e8ee070_n.jpg");
    let daisy = daisy.to_string_lossy();
    let run = |kernels: Option<&str>| {
        let mut args = vec!["classify", "--json", "--top", "1", "--model"];
        let model = model();
        args.push(&model);
        if let Some(k) = kernels {
            args.extend(["--kernels", k]);
        }
        args.push(&daisy);
        afinar(&args)
    };
    let unasked = run(None);
    let stderr = String::from_utf8_lossy(&unasked.stderr);
    assert!(
        stderr.contains(&format!(
            "Afinar's {} kernels",
            CpuKernels::from_env().name()
        )),
        "{stderr}"
    );
    for (name, kernels) in [
        ("burn", CpuKernels::Burn),
        ("portable", CpuKernels::Portable),
        ("avx2", CpuKernels::Avx2),
        ("avx512", CpuKernels::Avx512),
    ] {
        let out = run(Some(name));
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !kernels.is_supported() {
            assert_eq!(out.status.code(), Some(2), "{stderr}");
            assert!(
                stderr.contains(&format!("cannot run the {name} kernels")),
                "{stderr}"
            );
            continue;
        }
        assert!(out.status.success(), "{name}: {stderr}");
        let said = match kernels {
            CpuKernels::Burn => "Burn's CPU ops".to_string(),
            _ => format!("Afinar's {name} kernels"),
        };
        assert!(stderr.contains(&said), "{name}: {stderr}");
        let lines = json_lines(&out);
        assert_eq!(lines[0]["top"][0]["label"], "daisy", "{name}: {lines:?}");
    }
}

/// `--arithmetic` picks the file's own integers or float32 on any kernels, says which runs,
/// and both name the photo alike; `auto` runs the integers only where the CPU has 8-bit dot
/// products.
#[test]
fn classify_runs_in_the_arithmetic_asked_for_and_says_which() {
    use afinar::model::kernels::CpuKernels;
    let daisy = common::shared_dir().join("data/flower_photos/daisy/100080576_f52e8ee070_n.jpg");
    let daisy = daisy.to_string_lossy();
    let model = model();
    let runs = CpuKernels::ALL
        .into_iter()
        .filter(|k| *k != CpuKernels::Burn && k.is_supported());
    for kernels in runs {
        for (arithmetic, said) in [
            ("integer", "in the file's 8-bit integers"),
            ("float", "in float32"),
        ] {
            let args = [
                "classify",
                "--json",
                "--top",
                "1",
                "--model",
                &model,
                "--kernels",
                kernels.name(),
                "--arithmetic",
                arithmetic,
                &daisy,
            ];
            let out = afinar(&args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{arithmetic}: {stderr}");
            assert!(stderr.contains(said), "{kernels:?} {arithmetic}: {stderr}");
            let lines = json_lines(&out);
            assert_eq!(
                lines[0]["top"][0]["label"], "daisy",
                "{arithmetic}: {lines:?}"
            );
        }
    }
    let auto = afinar(&[
        "classify",
        "--model",
        &model,
        "--arithmetic",
        "auto",
        &daisy,
    ]);
    let stderr = String::from_utf8_lossy(&auto.stderr);
    let integer = CpuKernels::from_env().integer_is_faster();
    assert_eq!(stderr.contains("8-bit integers"), integer, "{stderr}");
}

#[test]
fn a_missing_model_is_a_clear_error() {
    let out = afinar(&["classify", "--model", "/nonexistent/model.tflite", "x.jpg"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("cannot read model /nonexistent/model.tflite")
    );
}

#[test]
fn a_wrong_model_file_is_a_clear_error() {
    let daisy = common::shared_dir().join("data/flower_photos/daisy/100080576_f52e8ee070_n.jpg");
    let out = afinar(&["classify", "--model", &daisy.to_string_lossy(), "x.jpg"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a TFLite model"));
}

#[test]
fn the_model_is_found_through_the_environment() {
    let daisy = common::shared_dir().join("data/flower_photos/daisy/100080576_f52e8ee070_n.jpg");
    let out = Command::new(env!("CARGO_BIN_EXE_afinar"))
        .args(["classify", "--json", "--top", "1", &daisy.to_string_lossy()])
        .env("AFINAR_MODEL", model())
        .current_dir(std::env::temp_dir())
        .output()
        .expect("run afinar");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json_lines(&out)[0]["top"][0]["index"], 986);
}

#[test]
fn many_files_run_in_batches() {
    // 20 photos with batch 8: three forward passes, every photo answered in order.
    let dir = common::shared_dir().join("data/flower_photos/sunflowers");
    let mut photos: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("sunflowers")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    photos.sort();
    photos.truncate(20);
    let model = model();
    let mut args = vec![
        "classify", "--json", "--top", "1", "--batch", "8", "--model", &model,
    ];
    let names: Vec<String> = photos
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    args.extend(names.iter().map(String::as_str));
    let out = afinar(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 20);
    for (line, name) in lines.iter().zip(&names) {
        assert_eq!(line["file"], name.as_str());
        assert!(line["top"][0]["prob"].as_f64().expect("prob") > 0.0);
    }
    // ImageNet has "daisy" but no sunflower: most sunflowers are called daisies.
    let daisies = lines.iter().filter(|l| l["top"][0]["index"] == 986).count();
    assert!(daisies >= 10, "{daisies} of 20 sunflowers labelled daisy");
}

/// A folder stands for the photos in it and in its sub-folders, in order of path; other files
/// there are left alone; a folder without photos is reported, and the others still answered.
#[test]
fn classify_takes_folders() {
    let flowers = common::shared_dir().join("data/flower_photos");
    let daisy = flowers.join("daisy/100080576_f52e8ee070_n.jpg");
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("photos");
    std::fs::create_dir_all(root.join("b/nested")).expect("folders");
    std::fs::create_dir_all(dir.path().join("empty")).expect("folder");
    std::fs::copy(&daisy, root.join("UPPER.JPG")).expect("copy");
    std::fs::copy(&daisy, root.join("a.jpg")).expect("copy");
    std::fs::copy(&daisy, root.join("b/nested/c.jpeg")).expect("copy");
    std::fs::write(root.join("notes.txt"), "not a photo").expect("write");
    std::fs::write(root.join("b/broken.png"), "not a PNG either").expect("write");
    let model = model();
    let (photos, empty) = (root.to_string_lossy(), dir.path().join("empty"));
    let empty = empty.to_string_lossy();
    let out = afinar(&[
        "classify", "--json", "--top", "1", "--model", &model, &photos, &empty,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "an empty folder is an error: {stderr}"
    );
    assert!(stderr.contains("holds no photos"), "{stderr}");
    let lines = json_lines(&out);
    let files: Vec<&str> = lines.iter().filter_map(|l| l["file"].as_str()).collect();
    let want = ["UPPER.JPG", "a.jpg", "b/broken.png", "b/nested/c.jpeg"]
        .map(|f| root.join(f).to_string_lossy().into_owned());
    assert_eq!(files, want, "{stderr}");
    for line in [&lines[0], &lines[1], &lines[3]] {
        assert_eq!(line["top"][0]["label"], "daisy", "{line}");
    }
    assert!(lines[2]["error"].is_string(), "{}", lines[2]);
}
