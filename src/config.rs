//! Settings file (`todoke.toml`). Every setting has a default, so `todoke run`
//! works without one; the file only says where a municipality differs.

use crate::decode::DecodeLimits;
use crate::matching::RegisterMapping;
use crate::template::OutputEncoding;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Folder of form templates.
    pub forms_dir: PathBuf,
    /// Digit model; empty means the shipped one.
    pub model: Option<PathBuf>,
    pub register: RegisterMapping,
    pub output: OutputConfig,
    pub decode: DecodeConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    /// Overrides every template's CSV encoding (`cp932` or `utf8`).
    pub encoding: Option<OutputEncoding>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecodeConfig {
    pub pdf_dpi: f32,
    pub max_side_px: u32,
    pub max_pages: usize,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        let d = DecodeLimits::default();
        DecodeConfig {
            pdf_dpi: d.pdf_dpi,
            max_side_px: d.max_side_px,
            max_pages: d.max_pages,
        }
    }
}

impl DecodeConfig {
    pub fn limits(&self) -> DecodeLimits {
        DecodeLimits {
            max_side_px: self.max_side_px,
            max_pages: self.max_pages,
            pdf_dpi: self.pdf_dpi,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            forms_dir: default_forms_dir(),
            model: None,
            register: RegisterMapping::default(),
            output: OutputConfig::default(),
            decode: DecodeConfig::default(),
        }
    }
}

/// `forms/` beside the executable's install, else the source tree's.
pub fn default_forms_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("TODOKE_FORMS") {
        return PathBuf::from(p);
    }
    let local = PathBuf::from("forms");
    if local.join("pregnancy-notification.toml").exists() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("forms")
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read settings {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("settings {path} are not valid: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
}

impl Config {
    /// Reads a settings file; relative paths in it are taken from its folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut c: Config = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        if c.forms_dir.is_relative() && text.contains("forms_dir") {
            c.forms_dir = base.join(&c.forms_dir);
        }
        if let Some(m) = &c.model {
            if m.is_relative() {
                c.model = Some(base.join(m));
            }
        }
        Ok(c)
    }
}
