//! The `afinar` command end to end: classifying (real photos, folders, bad files, output
//! formats, exit codes), training and evaluating, projects.

mod classify;
#[path = "../common/mod.rs"]
mod common;
mod projects;
mod training;

use std::process::{Command, Output};

use common::{V1_QUANT, models_dir};
use serde_json::Value;

pub fn afinar(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_afinar"))
        .args(args)
        .env_remove("AFINAR_MODEL")
        .output()
        .expect("run afinar")
}

pub fn model() -> String {
    models_dir().join(V1_QUANT).to_string_lossy().into_owned()
}

pub fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}
