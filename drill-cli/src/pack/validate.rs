//! `drill pack validate`.

use std::path::Path;

use anyhow::Result;

pub fn run(path: &Path, json: bool) -> Result<u8> {
    let _ = json;
    match drill_core::pack::load(path) {
        Ok(_) => Ok(0),
        Err(drill_core::pack::LoadError::Invalid(p)) => {
            eprintln!("{}", drill_core::source::SourceErrors(p));
            Ok(1)
        }
        Err(e) => {
            eprintln!("drill: error: {e}");
            Ok(2)
        }
    }
}
