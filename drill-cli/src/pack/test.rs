//! `drill pack test`.

use std::path::Path;

use anyhow::{Result, bail};

use crate::client::Client;

pub async fn run(client: &Client, socket: &Path, dir: &Path, scenario: Option<&str>, jobs: Option<usize>, json: bool) -> Result<u8> {
    let _ = (client, socket, dir, scenario, jobs, json);
    bail!("drill pack test is not built yet")
}
