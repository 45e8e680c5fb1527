//! Validation scores as people read them, or as one JSON line.

use afinar::train::Evaluation;
use serde::Serialize;

#[derive(Serialize)]
struct Scores<'a> {
    accuracy: f64,
    classes: &'a [String],
    per_class: serde_json::Map<String, serde_json::Value>,
    confusion: &'a [Vec<usize>],
}

pub fn print_scores(classes: &[String], e: &Evaluation, json: bool) {
    if json {
        let per_class = classes
            .iter()
            .zip(&e.per_class)
            .map(|(c, a)| (c.clone(), serde_json::json!(a)))
            .collect();
        let scores = Scores {
            accuracy: e.accuracy,
            classes,
            per_class,
            confusion: &e.confusion,
        };
        match serde_json::to_string(&scores) {
            Ok(line) => println!("{line}"),
            Err(err) => eprintln!("error: {err}"),
        }
        return;
    }
    println!(
        "validation accuracy {:.1}% (loss {:.4})",
        e.accuracy * 100.0,
        e.loss
    );
    let width = classes.iter().map(|c| c.len()).max().unwrap_or(5).max(5);
    for (c, a) in classes.iter().zip(&e.per_class) {
        println!("  {c:<width$}  {:5.1}%", a * 100.0);
    }
    println!("confusion (rows: true class, columns: predicted):");
    for (c, row) in classes.iter().zip(&e.confusion) {
        let cells: Vec<String> = row.iter().map(|n| format!("{n:>5}")).collect();
        println!("  {c:<width$} {}", cells.join(""));
    }
}
