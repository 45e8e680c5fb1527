//! The user's trained head, kept as its file so it can be built again on whichever device the
//! classifier moves to.

use std::rc::Rc;

use afinar::classify::{CpuClassifier, PackedHead};
use afinar::head::{self, TrainedParts};
use burn::tensor::Device;

pub struct UserHead {
    file: Vec<u8>,
    classes: Vec<String>,
    /// Built for the device of the classifier in use; rebuilt when that changes.
    built: Option<(Device, Rc<TrainedParts>)>,
    /// Packed for the CPU kernels, once they classify.
    packed: Option<Rc<PackedHead>>,
}

impl UserHead {
    /// A head already built on `device` (just trained, or just checked).
    pub fn new(file: Vec<u8>, classes: Vec<String>, parts: TrainedParts, device: Device) -> Self {
        Self {
            file,
            classes,
            built: Some((device, Rc::new(parts))),
            packed: None,
        }
    }

    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// The head file as it came.
    pub fn file(&self) -> &[u8] {
        &self.file
    }

    /// The parts built for `device` (rebuilt from the file after a device switch).
    pub fn parts_on(&mut self, device: &Device) -> Option<Rc<TrainedParts>> {
        match &self.built {
            Some((built_on, parts)) if built_on == device => Some(parts.clone()),
            _ => {
                let (parts, _) = head::load(&self.file, None, device).ok()?;
                let parts = Rc::new(parts);
                self.built = Some((device.clone(), parts.clone()));
                Some(parts)
            }
        }
    }

    /// The head packed for `classifier`'s CPU kernels (packed once).
    pub fn packed_for(&mut self, classifier: &CpuClassifier) -> Option<Rc<PackedHead>> {
        if self.packed.is_none() {
            let packed =
                PackedHead::from_file(&self.file, classifier.model_sha256(), classifier.kernels());
            self.packed = Some(Rc::new(packed.ok()?));
        }
        self.packed.clone()
    }
}
