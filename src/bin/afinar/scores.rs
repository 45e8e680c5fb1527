//! Validation scores as people read them, or as one JSON line.

use std::path::PathBuf;

use afinar::train::{Dataset, Disputed, Evaluation};
use afinar_vocabulary::{CONFUSED_PAIRS_SHOWN, MANY_CLASSES, most_confused};
use serde::Serialize;

/// Most of the confident mistakes listed in the text output (JSON lists them all).
const MISTAKES_SHOWN: usize = 10;

#[derive(Serialize)]
struct Scores<'a> {
    accuracy: f64,
    loss: f64,
    macro_f1: f64,
    classes: &'a [String],
    per_class: serde_json::Map<String, serde_json::Value>,
    confusion: &'a [Vec<usize>],
    /// Photos the model gets wrong, the most confident first.
    mistakes: Vec<Mistake>,
}

#[derive(Serialize)]
struct Mistake {
    photo: String,
    label: String,
    predicted: String,
    confidence: f32,
}

/// Prints `e` for `classes`; `photos` are the evaluated photos in their rows' order, for the
/// list of confident mistakes.
pub fn print_scores(classes: &[String], e: &Evaluation, photos: &[PathBuf], json: bool) {
    let name = |c: usize| classes.get(c).cloned().unwrap_or_else(|| c.to_string());
    let mistakes: Vec<Mistake> = e
        .mistakes()
        .into_iter()
        .filter_map(|row| {
            let p = e.predictions[row];
            Some(Mistake {
                photo: photos.get(row)?.display().to_string(),
                label: name(p.truth),
                predicted: name(p.class),
                confidence: p.confidence,
            })
        })
        .collect();
    if json {
        let per_class = classes
            .iter()
            .enumerate()
            .map(|(c, class)| {
                let value = serde_json::json!({
                    "recall": e.per_class[c],
                    "precision": e.precision[c],
                    "f1": e.f1[c],
                    "photos": e.confusion[c].iter().sum::<usize>(),
                });
                (class.clone(), value)
            })
            .collect();
        let scores = Scores {
            accuracy: e.accuracy,
            loss: e.loss,
            macro_f1: e.macro_f1(),
            classes,
            per_class,
            confusion: &e.confusion,
            mistakes,
        };
        match serde_json::to_string(&scores) {
            Ok(line) => println!("{line}"),
            Err(err) => eprintln!("error: {err}"),
        }
        return;
    }
    println!(
        "validation accuracy {:.1}% (loss {:.4}), macro F1 {:.3}",
        e.accuracy * 100.0,
        e.loss,
        e.macro_f1()
    );
    let width = classes.iter().map(|c| c.len()).max().unwrap_or(5).max(5);
    println!("  {:<width$}  precision  recall     F1  photos", "class");
    for (c, class) in classes.iter().enumerate() {
        println!(
            "  {class:<width$}  {:8.1}%  {:5.1}%  {:.3}  {:>6}",
            e.precision[c] * 100.0,
            e.per_class[c] * 100.0,
            e.f1[c],
            e.confusion[c].iter().sum::<usize>()
        );
    }
    if classes.len() > MANY_CLASSES {
        // A matrix this wide can't be read in a terminal (`--json` has it whole).
        println!("most confused pairs (true class → predicted):");
        for pair in most_confused(&e.confusion, CONFUSED_PAIRS_SHOWN) {
            let name = |c: usize| classes.get(c).map_or("?", String::as_str);
            println!(
                "  {:>5}  {} → {}",
                pair.count,
                name(pair.truth),
                name(pair.predicted)
            );
        }
    } else {
        println!("confusion (rows: true class, columns: predicted):");
        for (c, row) in classes.iter().zip(&e.confusion) {
            let cells: Vec<String> = row.iter().map(|n| format!("{n:>5}")).collect();
            println!("  {c:<width$} {}", cells.join(""));
        }
    }
    if !mistakes.is_empty() {
        println!("most confident mistakes (a wrong label, or a hard photo):");
        for m in mistakes.iter().take(MISTAKES_SHOWN) {
            println!(
                "  {:5.1}% {} (labelled {}): {}",
                m.confidence * 100.0,
                m.predicted,
                m.label,
                m.photo
            );
        }
    }
}

/// Prints the photos whose label the model disputes, the most confident first.
pub fn print_disputed(dataset: &Dataset, disputed: &[Disputed]) {
    if disputed.is_empty() {
        return;
    }
    let name = |c: usize| dataset.classes.get(c).map_or("?", String::as_str);
    println!(
        "labels to check: {} photos a head trained without them puts in another class (the most confident first):",
        disputed.len()
    );
    for d in disputed.iter().take(MISTAKES_SHOWN) {
        let photo = dataset
            .samples
            .get(d.sample)
            .map_or_else(String::new, |s| s.path.display().to_string());
        println!(
            "  {:5.1}% {} (labelled {}, {:.1}%): {photo}",
            d.confidence * 100.0,
            name(d.suggested),
            name(d.label),
            d.label_probability * 100.0,
        );
    }
}
