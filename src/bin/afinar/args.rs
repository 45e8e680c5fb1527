//! What every subcommand shares: which model file, on which device, and where the feature
//! cache lives.

use std::path::{Path, PathBuf};

use afinar::model::kernels::CpuKernels;
use afinar::{Arithmetic, Classifier, DEFAULT_MODEL_FILE, MobileNetV2Weights};
use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use clap::ValueEnum;

use crate::feature_cache::FeatureCache;

/// Where the setup script puts the model, relative to the project root.
const MODEL_DIR: &str = "www/models";
/// Label list looked for beside a model file that carries none.
const LABELS_FILE: &str = "imagenet_labels.txt";

/// Which model file, on which device.
#[derive(clap::Args)]
pub struct ModelArgs {
    /// The MobileNetV2 `.tflite` file [default: www/models/mobilenet_v2_1.0_224_quant.tflite]
    #[arg(long, env = "AFINAR_MODEL")]
    model: Option<PathBuf>,
    /// Where the model runs.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    device: DeviceChoice,
    /// Which CPU path runs the frozen backbone on `--device cpu` [default: the fastest this CPU
    /// has, or `$AFINAR_CPU_KERNELS`]; a path this CPU lacks is refused.
    #[arg(long, value_enum)]
    kernels: Option<KernelsChoice>,
    /// The arithmetic of a quantized file's frozen part on Afinar's kernels: `auto` runs the
    /// file's own 8-bit integers where this CPU has 8-bit dot products (AVX-512 VNNI), else
    /// float32 [default: auto, or `$AFINAR_ARITHMETIC`].
    #[arg(long, value_enum)]
    arithmetic: Option<ArithmeticChoice>,
}

/// [`Arithmetic`] by name.
#[derive(Clone, Copy, ValueEnum)]
enum ArithmeticChoice {
    /// The file's integers where they are faster here, else float32.
    Auto,
    /// The file's 8-bit integers, on any path.
    Integer,
    /// Float32 over the dequantized weights.
    Float,
}

impl ArithmeticChoice {
    fn arithmetic(self) -> Arithmetic {
        match self {
            Self::Auto => Arithmetic::Auto,
            Self::Integer => Arithmetic::Integer,
            Self::Float => Arithmetic::Float,
        }
    }
}

/// The CPU paths by name ([`CpuKernels`]); the browser's `simd128` is not one natively.
#[derive(Clone, Copy, ValueEnum)]
enum KernelsChoice {
    /// Burn's own ops.
    Burn,
    /// Afinar's kernels in portable Rust.
    Portable,
    /// Afinar's kernels for AVX2 + FMA.
    Avx2,
    /// Afinar's kernels for AVX-512.
    Avx512,
}

impl KernelsChoice {
    fn kernels(self) -> CpuKernels {
        match self {
            Self::Burn => CpuKernels::Burn,
            Self::Portable => CpuKernels::Portable,
            Self::Avx2 => CpuKernels::Avx2,
            Self::Avx512 => CpuKernels::Avx512,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum DeviceChoice {
    /// Burn's ndarray backend on the CPU.
    Cpu,
    /// Burn's wgpu backend on the first GPU adapter (Vulkan, Metal, DX12).
    #[cfg(feature = "wgpu")]
    Wgpu,
}

impl ModelArgs {
    /// Finds and loads the model on the chosen device.
    pub fn load(&self) -> Result<Classifier> {
        let (path, weights, _) = self.weights()?;
        let fallback = std::fs::read_to_string(path.with_file_name(LABELS_FILE)).ok();
        let labels = weights
            .labels_or(fallback.as_deref())
            .with_context(|| format!("cannot load model {}", path.display()))?;
        let device = match self.device {
            DeviceChoice::Cpu => afinar::device::cpu(),
            #[cfg(feature = "wgpu")]
            DeviceChoice::Wgpu => Device::wgpu_options()
                .init()
                .context("no usable GPU adapter for --device wgpu")?,
        };
        let kernels = match self.kernels.map(KernelsChoice::kernels) {
            Some(kernels) if !kernels.is_supported() => {
                let runs: Vec<&str> = CpuKernels::ALL
                    .into_iter()
                    .filter(|k| k.is_supported())
                    .map(CpuKernels::name)
                    .collect();
                bail!(
                    "this CPU cannot run the {} kernels (it runs: {})",
                    kernels.name(),
                    runs.join(", ")
                );
            }
            Some(kernels) => kernels,
            None => CpuKernels::from_env(),
        };
        let arithmetic = self
            .arithmetic
            .map_or_else(Arithmetic::from_env, ArithmeticChoice::arithmetic);
        Ok(Classifier::with_cpu_path(
            &weights, labels, &device, kernels, arithmetic,
        ))
    }

    /// Finds and reads the model file: its path, weights and bytes.
    pub fn weights(&self) -> Result<(PathBuf, MobileNetV2Weights, Vec<u8>)> {
        let path = model_path(self.model.as_deref())?;
        let bytes = std::fs::read(&path)
            .with_context(|| format!("cannot read model {}", path.display()))?;
        let weights = MobileNetV2Weights::from_tflite(&bytes)
            .with_context(|| format!("cannot load model {}", path.display()))?;
        Ok((path, weights, bytes))
    }
}

/// Finds the model: `--model` / `$AFINAR_MODEL`, else the setup script's location under the
/// working directory or under the source tree this binary was built from.
fn model_path(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    let candidates = [
        Path::new(MODEL_DIR).join(DEFAULT_MODEL_FILE),
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(MODEL_DIR)
            .join(DEFAULT_MODEL_FILE),
    ];
    match candidates.iter().find(|p| p.is_file()) {
        Some(path) => Ok(path.clone()),
        None => bail!(
            "no model found at {}; run scripts/setup-model, or pass --model PATH (or set AFINAR_MODEL)",
            candidates[1].display()
        ),
    }
}

/// Where the per-photo feature cache lives.
#[derive(clap::Args)]
pub struct CacheArgs {
    /// Folder of the per-photo feature cache [default: $AFINAR_CACHE_DIR, else afinar/ in the
    /// user's cache folder].
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Compute every photo's features again and keep nothing on disk.
    #[arg(long)]
    no_cache: bool,
}

impl CacheArgs {
    pub fn dir(&self) -> Option<PathBuf> {
        if self.no_cache {
            None
        } else {
            self.cache_dir.clone().or_else(FeatureCache::default_dir)
        }
    }
}
