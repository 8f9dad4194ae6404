//! Placeholder of the postmortem renderer (JSON only) until the renderer lands.
use crate::record::DrillRecord;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Md,
    Html,
    Json,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "md" => Ok(Format::Md),
            "html" => Ok(Format::Html),
            "json" => Ok(Format::Json),
            _ => Err(format!("unknown report format `{s}`: md, html or json")),
        }
    }
}

pub fn render(rec: &DrillRecord, _fmt: Format) -> String {
    serde_json::to_string_pretty(rec).unwrap_or_default()
}
