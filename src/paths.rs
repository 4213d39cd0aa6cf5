//! Where todoke finds what it ships (form templates, the digit model,
//! pdfium) without the source tree it was built in. Each is looked for in
//! one documented order (README, "Where todoke finds its data"):
//!
//! 1. the setting in `todoke.toml` (`forms_dir`, `model`, `pdfium`);
//! 2. an environment variable (`TODOKE_FORMS`, `TODOKE_MODEL`, `TODOKE_PDFIUM`);
//! 3. the install the executable belongs to: `../share/todoke/forms`,
//!    `../share/todoke/models/digits.safetensors`, `../lib/todoke/libpdfium.so`
//!    from its folder (`/usr/bin/todoke` → `/usr/share/todoke/…`);
//! 4. only for a development build, a binary run from inside the checkout it
//!    was built in (`target/release/todoke`, the test binaries): the
//!    checkout's `forms/`, `models/`, `.deps/lib/`.
//!
//! The checkout is never looked at by an installed binary, even one built
//! from a checkout that still exists: deleting the build folder must not
//! change what a server reads, and a package must not silently read a
//! developer's files.

use serde::Serialize;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// A file or folder todoke ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Asset {
    /// The folder of form templates and their printable blanks.
    Forms,
    /// The digit model (`digits.safetensors`).
    Model,
    /// The pdfium shared library.
    Pdfium,
}

/// Which step of the order found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Setting,
    Env,
    Install,
    Checkout,
    /// Nowhere: the path is where an install would hold it, so the error
    /// that follows names the place IT expects.
    Missing,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Located {
    pub asset: Asset,
    pub path: PathBuf,
    pub origin: Origin,
}

/// What `todoke --version` reports: the program, and which forms, model
/// and pdfium it would use, with what identifies each.
#[derive(Debug, Clone)]
pub struct Inventory {
    pub version: &'static str,
    pub forms: Located,
    /// `(id, version)` of each template there.
    pub templates: Vec<(String, String)>,
    pub model: Located,
    pub model_sha256: Option<String>,
    pub pdfium: Located,
    pub pdfium_sha256: Option<String>,
    /// The build recorded beside the library when it was installed
    /// (`pdfium-build.txt`): pdfium itself has no call that says.
    pub pdfium_build: Option<String>,
    /// Whether the library loads, or why not.
    pub pdfium_loaded: Result<(), String>,
}

/// Written beside libpdfium.so by `scripts/setup.sh` from the wheel's
/// `version.json`, and shipped beside it.
pub const PDFIUM_BUILD_FILE: &str = "pdfium-build.txt";

impl Asset {
    pub const ALL: [Asset; 3] = [Asset::Forms, Asset::Model, Asset::Pdfium];

    pub fn env_var(self) -> &'static str {
        match self {
            Asset::Forms => "TODOKE_FORMS",
            Asset::Model => "TODOKE_MODEL",
            Asset::Pdfium => "TODOKE_PDFIUM",
        }
    }

    /// Relative to the install prefix (the executable's folder's parent).
    pub fn installed(self) -> &'static str {
        match self {
            Asset::Forms => "share/todoke/forms",
            Asset::Model => "share/todoke/models/digits.safetensors",
            Asset::Pdfium => "lib/todoke/libpdfium.so",
        }
    }

    /// Relative to the checkout.
    pub fn in_checkout(self) -> &'static str {
        match self {
            Asset::Forms => "forms",
            Asset::Model => "models/digits.safetensors",
            Asset::Pdfium => ".deps/lib/libpdfium.so",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Asset::Forms => "forms",
            Asset::Model => "model",
            Asset::Pdfium => "pdfium",
        }
    }
}

impl Origin {
    pub fn name(self) -> &'static str {
        match self {
            Origin::Setting => "todoke.toml",
            Origin::Env => "environment",
            Origin::Install => "install",
            Origin::Checkout => "checkout (development build)",
            Origin::Missing => "missing",
        }
    }
}

/// Finds `asset` for this process: `setting` is the value from
/// `todoke.toml`, if it has one (already made absolute by `Config::load`).
pub fn locate(asset: Asset, setting: Option<&Path>) -> Located {
    let exe = std::env::current_exe().ok();
    let checkout = dev_checkout(exe.as_deref(), Path::new(env!("CARGO_MANIFEST_DIR")));
    locate_from(
        asset,
        setting,
        std::env::var_os(asset.env_var()),
        exe.as_deref(),
        checkout.as_deref(),
    )
}

/// The order itself, with everything it depends on given, so tests can
/// lay out an install and a checkout of their own.
pub fn locate_from(
    asset: Asset,
    setting: Option<&Path>,
    env: Option<OsString>,
    exe: Option<&Path>,
    checkout: Option<&Path>,
) -> Located {
    let found = |path: PathBuf, origin| Located {
        asset,
        path,
        origin,
    };
    if let Some(p) = setting {
        return found(p.to_path_buf(), Origin::Setting);
    }
    if let Some(p) = env.filter(|v| !v.is_empty()) {
        return found(PathBuf::from(p), Origin::Env);
    }
    let installed = install_prefix(exe).map(|prefix| prefix.join(asset.installed()));
    if let Some(p) = installed.as_ref().filter(|p| p.exists()) {
        return found(p.clone(), Origin::Install);
    }
    if let Some(c) = checkout {
        let p = c.join(asset.in_checkout());
        if p.exists() {
            return found(p, Origin::Checkout);
        }
    }
    let expected = installed
        .or_else(|| checkout.map(|c| c.join(asset.in_checkout())))
        .unwrap_or_else(|| PathBuf::from(asset.installed()));
    found(expected, Origin::Missing)
}

impl Inventory {
    /// Looks everything up as a command without settings would, and loads
    /// pdfium to say whether it loads.
    pub fn gather() -> Inventory {
        let forms = locate(Asset::Forms, None);
        let model = locate(Asset::Model, None);
        let pdfium = locate(Asset::Pdfium, None);
        let templates = crate::template::heads(&forms.path)
            .map(|hs| hs.into_iter().map(|h| (h.id, h.version)).collect())
            .unwrap_or_default();
        let pdfium_build = pdfium
            .path
            .parent()
            .and_then(|d| std::fs::read_to_string(d.join(PDFIUM_BUILD_FILE)).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        let pdfium_loaded = crate::decode::PdfRenderer::start(&pdfium.path).available();
        Inventory {
            version: env!("CARGO_PKG_VERSION"),
            model_sha256: sha256_of(&model.path),
            pdfium_sha256: sha256_of(&pdfium.path),
            forms,
            templates,
            model,
            pdfium,
            pdfium_build,
            pdfium_loaded,
        }
    }

    /// One line per item, `key: value`, for IT and for scripts (English,
    /// like the logs).
    pub fn text(&self) -> String {
        let at = |l: &Located| format!("{} ({})", l.path.display(), l.origin.name());
        let sha = |s: &Option<String>| match s {
            Some(h) => format!("sha256 {h}"),
            None => "unreadable".to_string(),
        };
        let templates = if self.templates.is_empty() {
            "no templates".to_string()
        } else {
            self.templates
                .iter()
                .map(|(id, v)| format!("{id} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let build = self
            .pdfium_build
            .as_deref()
            .map(|b| format!(", build {b}"))
            .unwrap_or_default();
        let loaded = match &self.pdfium_loaded {
            Ok(()) => "loaded".to_string(),
            Err(why) => format!("NOT LOADED: {why}"),
        };
        format!(
            "todoke {}\nforms: {}: {templates}\nmodel: {}, {}\npdfium: {}, {}{build}, {loaded}\n",
            self.version,
            at(&self.forms),
            at(&self.model),
            sha(&self.model_sha256),
            at(&self.pdfium),
            sha(&self.pdfium_sha256),
        )
    }
}

fn sha256_of(path: &Path) -> Option<String> {
    use sha2::{Digest, Sha256};
    let mut f = std::fs::File::open(path).ok()?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).ok()?;
    Some(hex::encode(h.finalize()))
}

/// `/usr` for `/usr/bin/todoke`.
fn install_prefix(exe: Option<&Path>) -> Option<PathBuf> {
    exe?.parent()?.parent().map(Path::to_path_buf)
}

/// The checkout `built_in` when the executable lies inside it (its
/// `target/`): a development build. Release builds are what developers run
/// too, so the build profile cannot tell; where the binary sits can.
pub fn dev_checkout(exe: Option<&Path>, built_in: &Path) -> Option<PathBuf> {
    let root = built_in.canonicalize().ok()?;
    let exe = exe?.canonicalize().ok()?;
    exe.starts_with(&root).then_some(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An install prefix with every asset, and a checkout with every asset.
    fn layout() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("usr");
        let checkout = dir.path().join("src");
        for a in Asset::ALL {
            for p in [prefix.join(a.installed()), checkout.join(a.in_checkout())] {
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                if a == Asset::Forms {
                    std::fs::create_dir_all(&p).unwrap();
                } else {
                    std::fs::write(&p, b"x").unwrap();
                }
            }
        }
        std::fs::create_dir_all(prefix.join("bin")).unwrap();
        std::fs::write(prefix.join("bin/todoke"), b"").unwrap();
        std::fs::create_dir_all(checkout.join("target/release")).unwrap();
        std::fs::write(checkout.join("target/release/todoke"), b"").unwrap();
        (dir, prefix, checkout)
    }

    #[test]
    fn the_order_is_setting_env_install_checkout() {
        for a in Asset::ALL {
            let (_d, prefix, checkout) = layout();
            let exe = prefix.join("bin/todoke");
            let set = Path::new("/etc/todoke/x");
            let l = locate_from(
                a,
                Some(set),
                Some("/env/x".into()),
                Some(&exe),
                Some(&checkout),
            );
            assert_eq!((l.path.as_path(), l.origin), (set, Origin::Setting));
            let l = locate_from(a, None, Some("/env/x".into()), Some(&exe), Some(&checkout));
            assert_eq!(
                (l.path.as_path(), l.origin),
                (Path::new("/env/x"), Origin::Env)
            );
            // An empty variable is unset, as a unit file's `Environment=X=` means.
            let l = locate_from(a, None, Some("".into()), Some(&exe), Some(&checkout));
            assert_eq!(l.path, prefix.join(a.installed()));
            assert_eq!(l.origin, Origin::Install);
            std::fs::remove_dir_all(prefix.join("share")).ok();
            std::fs::remove_dir_all(prefix.join("lib")).ok();
            let l = locate_from(a, None, None, Some(&exe), Some(&checkout));
            assert_eq!(l.path, checkout.join(a.in_checkout()));
            assert_eq!(l.origin, Origin::Checkout);
            // An installed binary has no checkout: it names where the
            // install should hold the file.
            let l = locate_from(a, None, None, Some(&exe), None);
            assert_eq!(l.path, prefix.join(a.installed()));
            assert_eq!(l.origin, Origin::Missing);
        }
    }

    #[test]
    fn only_a_binary_inside_the_checkout_is_a_development_build() {
        let (_d, prefix, checkout) = layout();
        let inside = checkout.join("target/release/todoke");
        assert_eq!(
            dev_checkout(Some(&inside), &checkout),
            Some(checkout.canonicalize().unwrap())
        );
        assert_eq!(
            dev_checkout(Some(&prefix.join("bin/todoke")), &checkout),
            None
        );
        // The checkout deleted after the build: nothing to fall back to.
        let gone = prefix.join("no-such-checkout");
        assert_eq!(dev_checkout(Some(&inside), &gone), None);
    }

    #[test]
    fn this_test_binary_is_a_development_build() {
        let exe = std::env::current_exe().unwrap();
        assert!(dev_checkout(Some(&exe), Path::new(env!("CARGO_MANIFEST_DIR"))).is_some());
        let forms = locate(Asset::Forms, None);
        assert!(forms.path.join("pregnancy-notification.toml").exists());
    }
}
