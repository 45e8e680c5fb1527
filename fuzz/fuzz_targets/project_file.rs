//! Any byte string opened as a project file (`.afinar`) is refused or read whole; it never
//! panics, inflates without bound or names a path outside the folder it is unpacked into.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut project) = afinar::project::Project::open(std::io::Cursor::new(data)) else {
        return;
    };
    let _ = project.head();
    let dir = std::env::temp_dir().join(format!("afinar-fuzz-project-{}", std::process::id()));
    let _ = project.extract(&dir.join("inside"));
    // Everything written stays under `inside`.
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            assert_eq!(entry.file_name(), "inside", "a project wrote outside its folder");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
});
