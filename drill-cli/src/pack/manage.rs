//! `drill pack new|list|install|remove`.

use std::path::Path;

use anyhow::{Result, bail};

pub fn new(dir: &Path) -> Result<u8> {
    let _ = dir;
    bail!("drill pack new is not built yet")
}

pub fn list(json: bool) -> Result<u8> {
    let _ = json;
    bail!("drill pack list is not built yet")
}

pub fn install(dir: &Path) -> Result<u8> {
    let _ = dir;
    bail!("drill pack install is not built yet")
}

pub fn remove(name: &str) -> Result<u8> {
    let _ = name;
    bail!("drill pack remove is not built yet")
}
