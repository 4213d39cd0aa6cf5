//! A working folder as `todoke init` makes it for an installed todoke, and
//! what an upgrade meets there: newer shipped templates, a ledger of
//! another schema version. (The package itself, unpacked and run outside
//! the checkout, is `make test-deb`.)

mod common;

use common::{repo, todoke};
use std::path::Path;

fn init(dir: &Path) -> std::process::Output {
    let out = todoke().arg("init").arg(dir).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn status(settings: &Path, lang: &str) -> std::process::Output {
    todoke()
        .args(["status", "--lang", lang, "--config"])
        .arg(settings)
        .output()
        .unwrap()
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn init_copies_the_shipped_templates_and_writes_paths_relative_to_the_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("city");
    init(&dir);
    let settings = std::fs::read_to_string(dir.join("todoke.toml")).unwrap();
    assert!(settings.contains("\nforms_dir = \"forms\"\n"), "{settings}");
    assert!(!settings.contains(&*repo().to_string_lossy()));
    for name in [
        "pregnancy-notification.toml",
        "infant-checkup.toml",
        "pregnancy-notification.pdf",
        "infant-checkup-back.png",
        "README.md",
    ] {
        let copy = dir.join("forms").join(name);
        assert_eq!(
            std::fs::read(&copy).unwrap(),
            std::fs::read(repo().join("forms").join(name)).unwrap(),
            "{name}"
        );
        assert_eq!(mode(&copy), 0o600, "{name}");
    }
    // The generator script is the checkout's, not a template.
    assert!(!dir.join("forms/gen_templates.py").exists());
    assert_eq!(mode(&dir.join("forms")), 0o700);
    assert_eq!(mode(&dir.join("todoke.toml")), 0o600);
    assert!(dir.join("todoke.db").exists());

    // The folder moved elsewhere still reads its own templates: a city's
    // change to its copy is what the daemon reads.
    let moved = tmp.path().join("moved");
    std::fs::rename(&dir, &moved).unwrap();
    let c = todoke::config::Config::load(&moved.join("todoke.toml")).unwrap();
    assert_eq!(c.forms_dir, moved.join("forms"));
    let ids: Vec<String> = todoke::template::load_dir(&c.forms_dir)
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(ids, ["infant-checkup", "pregnancy-notification"]);

    // Run again, init keeps the city's adapted copy and settings.
    let mine = moved.join("forms/pregnancy-notification.toml");
    let adapted = std::fs::read_to_string(&mine).unwrap().replace(
        "title = \"妊娠届出書\"",
        "title = \"妊娠届出書（つくば市）\"",
    );
    std::fs::write(&mine, &adapted).unwrap();
    std::fs::write(
        moved.join("todoke.toml"),
        settings.replace("quiet_secs = 5.0", "quiet_secs = 2.0"),
    )
    .unwrap();
    let again = init(&moved);
    let said = String::from_utf8_lossy(&again.stdout);
    assert!(said.contains("0 copied"), "{said}");
    assert_eq!(std::fs::read_to_string(&mine).unwrap(), adapted);
    assert!(std::fs::read_to_string(moved.join("todoke.toml"))
        .unwrap()
        .contains("quiet_secs = 2.0"));
}

#[test]
fn status_says_when_a_newer_template_ships_and_leaves_the_citys_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("city");
    init(&dir);
    let settings = dir.join("todoke.toml");
    let out = status(&settings, "ja");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("新しい様式定義"), "{text}");

    // The city's copy is an older version than the one this todoke ships.
    let mine = dir.join("forms/pregnancy-notification.toml");
    let older = std::fs::read_to_string(&mine)
        .unwrap()
        .replace("\nversion = \"1\"\n", "\nversion = \"0\"\n");
    std::fs::write(&mine, &older).unwrap();
    let out = status(&settings, "ja");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("新しい様式定義"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("pregnancy-notification"), "{line}");
    assert!(
        line.contains("同梱 版1") && line.contains("使用中 版0"),
        "{line}"
    );
    assert!(line.contains(&*mine.to_string_lossy()), "{line}");
    assert!(!text.contains("infant-checkup（"), "{text}");
    let en = String::from_utf8_lossy(&status(&settings, "en").stdout).to_string();
    assert!(
        en.contains("newer template shipped: pregnancy-notification (shipped version 1, yours 0)"),
        "{en}"
    );
    // Saying so changed nothing.
    assert_eq!(std::fs::read_to_string(&mine).unwrap(), older);
}

#[test]
fn a_ledger_from_a_newer_todoke_is_refused_with_a_message_staff_can_read() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("city");
    init(&dir);
    let db = dir.join("todoke.db");
    let newer = todoke::ledger::SCHEMA_VERSION + 1;
    rusqlite::Connection::open(&db)
        .unwrap()
        .pragma_update(None, "user_version", newer)
        .unwrap();
    let before = std::fs::read(&db).unwrap();
    let settings = dir.join("todoke.toml");
    for (lang, words) in [
        ("ja", "新しい版の todoke で書かれています"),
        ("en", "was written by a newer todoke"),
    ] {
        let out = status(&settings, lang);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(words), "{lang}: {err}");
        assert!(
            err.contains(&format!("{newer}")) && err.contains(&*db.to_string_lossy()),
            "{err}"
        );
    }
    // The daemon refuses it too, before touching anything.
    std::fs::copy(repo().join("seeds/register.csv"), dir.join("register.csv")).unwrap();
    let out = todoke()
        .args(["watch", "--config"])
        .arg(&settings)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("新しい版の todoke"));
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

#[test]
fn version_names_the_program_the_forms_the_model_and_pdfium() {
    let out = todoke().arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        format!("todoke {}", env!("CARGO_PKG_VERSION")),
        "{text}"
    );
    // A test binary is a development build: the checkout's files.
    let forms = repo().join("forms");
    assert!(
        lines[1].starts_with(&format!(
            "forms: {} (checkout (development build)): infant-checkup 1, pregnancy-notification 1",
            forms.display()
        )),
        "{text}"
    );
    let model = std::fs::read(repo().join("models/digits.safetensors")).unwrap();
    use sha2::Digest;
    let sha = hex::encode(sha2::Sha256::digest(&model));
    assert!(lines[2].ends_with(&format!("sha256 {sha}")), "{text}");
    assert!(
        lines[3].starts_with("pdfium: ") && lines[3].ends_with(", loaded"),
        "{text}"
    );
    // The environment comes before the install and the checkout.
    let out = todoke()
        .arg("--version")
        .env("TODOKE_MODEL", "/nowhere/digits.safetensors")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("model: /nowhere/digits.safetensors (environment), unreadable"),
        "{text}"
    );
}
