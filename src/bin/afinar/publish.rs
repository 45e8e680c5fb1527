//! `afinar publish`: a trained head with its base model as a web app of its own (a folder, a
//! zip of it, or one `.html` file), the same app, byte for byte, as the page's *Publish* gives.

use std::path::{Path, PathBuf};

use afinar::publish::{AppParts, PublishedApp, WORKER_SCRIPT, WORKER_WASM};
use anyhow::{Context, Result};

use crate::args::ModelArgs;

#[derive(clap::Args)]
pub struct PublishArgs {
    /// A head written by `afinar train` or exported from the page.
    #[arg(long)]
    head: PathBuf,
    /// Where to write the app: a `.html` file (everything in one file, which works opened from
    /// the disk), a `.zip` (the folder, zipped), or else a folder for any static host.
    #[arg(long)]
    out: PathBuf,
    /// The app's build (Trunk's output), whose inference worker the published app runs.
    #[arg(long, default_value = "dist")]
    app: PathBuf,
    /// Below this probability a photo is shown as "not sure" rather than in its top class.
    #[arg(long, default_value_t = afinar_vocabulary::NOT_SURE_BELOW)]
    not_sure_below: f64,
    #[command(flatten)]
    model: ModelArgs,
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

pub fn run(args: &PublishArgs) -> Result<bool> {
    let (model_path, _, model) = args.model.weights()?;
    let head = read(&args.head)?;
    let worker_script = read(&args.app.join(WORKER_SCRIPT)).context(
        "the app's inference worker is missing: build the app first (trunk build --release) or pass --app DIR",
    )?;
    let worker_wasm = read(&args.app.join(WORKER_WASM))?;
    let app = PublishedApp::new(AppParts {
        model: &model,
        head: &head,
        worker_script: &worker_script,
        worker_wasm: &worker_wasm,
        not_sure_below: args.not_sure_below,
    })
    .with_context(|| {
        format!(
            "cannot publish {} with {}",
            args.head.display(),
            model_path.display()
        )
    })?;
    let out = &args.out;
    let extension = out
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_lowercase);
    let (form, size) = match extension.as_deref() {
        Some("html" | "htm") => {
            let page = app.single_file();
            write(out, &page)?;
            ("one file, to open from the disk or send", page.len())
        }
        Some("zip") => {
            let zip = app.zip()?;
            write(out, &zip)?;
            ("a zip of the folder, for any static host", zip.len())
        }
        _ => {
            std::fs::create_dir_all(out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let mut size = 0;
            for file in app.folder() {
                write(&out.join(&file.name), &file.bytes)?;
                size += file.bytes.len();
            }
            ("a folder for any static host", size)
        }
    };
    eprintln!(
        "wrote {} ({:.1} MB, {form}): a classifier into {}",
        out.display(),
        size as f64 / 1e6,
        app.classes().join(", ")
    );
    Ok(true)
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}
