//! `todoke explain` on sample pages: a page that reads, one scanned upside
//! down, one with a corner mark covered (and one with two), one whose id
//! code names no form, and a file that does not decode. Each run writes the
//! files its stages reached, owner-only, with the reasons the pipeline
//! gives; and nothing read from the page goes to stdout.

mod common;

use image::GrayImage;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const SAMPLE: &str = "samples/inbox/honcho/scan-0006.png";
const TURNED: &str = "samples/inbox/honcho/scan-0004.jpg";

struct Explained {
    stdout: String,
    page: PathBuf,
    json: Value,
    txt: String,
}

fn explain(file: &Path, out: &Path, lang: &str) -> Explained {
    let o = common::todoke()
        .arg("explain")
        .arg(file)
        .arg("--register")
        .arg(common::repo().join("seeds/register.csv"))
        .arg("--lang")
        .arg(lang)
        .arg("--out")
        .arg(out)
        .env("TODOKE_FORMS", common::repo().join("forms"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "explain failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let page = out.join("page-1");
    let json = serde_json::from_str(&std::fs::read_to_string(page.join("explain.json")).unwrap())
        .expect("explain.json parses");
    let txt = std::fs::read_to_string(page.join("explain.txt")).unwrap();
    Explained {
        stdout,
        page,
        json,
        txt,
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Exactly `images` (and the two texts) are in the page folder, every file
/// owner-only, the folders too; `images` is what explain.json lists.
fn assert_files(e: &Explained, out: &Path, images: &[&str]) {
    assert_eq!(mode(out), 0o700, "{}", out.display());
    assert_eq!(mode(&e.page), 0o700);
    let mut names: Vec<String> = std::fs::read_dir(&e.page)
        .unwrap()
        .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut want: Vec<String> = images.iter().map(|s| s.to_string()).collect();
    want.extend(["explain.json".to_string(), "explain.txt".to_string()]);
    want.sort();
    assert_eq!(names, want);
    for n in &names {
        assert_eq!(mode(&e.page.join(n)), 0o600, "{n}");
    }
    for img in images {
        let i = image::open(e.page.join(img)).unwrap_or_else(|err| panic!("{img}: {err}"));
        assert!(i.width() > 500 && i.height() > 700, "{img} is a page");
    }
    assert_eq!(e.json["images"], serde_json::json!(images));
}

fn load(path: &str) -> GrayImage {
    image::open(common::repo().join(path)).unwrap().to_luma8()
}

/// Paints white over a rectangle given in template mm, placed where the
/// page's own registration puts it (scans are shifted and scaled a little).
fn whiten(img: &mut GrayImage, x_mm: f64, y_mm: f64, w_mm: f64, h_mm: f64) {
    let templates =
        todoke::template::load_dir(&common::repo().join("forms")).expect("shipped templates");
    let hom = todoke::register::register(img, &templates)
        .expect("the sample registers")
        .to_image;
    let (x0, y0) = hom.apply(x_mm, y_mm);
    let (x1, y1) = hom.apply(x_mm + w_mm, y_mm + h_mm);
    let (x0, x1) = (x0.min(x1).max(0.0) as u32, x0.max(x1) as u32);
    let (y0, y1) = (y0.min(y1).max(0.0) as u32, y0.max(y1) as u32);
    for y in y0..y1.min(img.height()) {
        for x in x0..x1.min(img.width()) {
            img.put_pixel(x, y, image::Luma([255]));
        }
    }
}

fn truth_fields() -> Value {
    let t: Value = serde_json::from_str(
        &std::fs::read_to_string(common::repo().join("samples/truth/honcho/scan-0006.png.json"))
            .unwrap(),
    )
    .unwrap();
    t["pages"][0]["fields"].clone()
}

#[test]
fn a_sample_page_is_explained_stage_by_stage_with_my_number_masked() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("explain");
    let e = explain(&common::repo().join(SAMPLE), &out, "ja");
    assert_files(
        &e,
        &out,
        &["1-decoded.png", "2-registered.png", "3-read.png"],
    );
    let j = &e.json;
    assert_eq!(j["failed_stage"], Value::Null);
    assert_eq!(j["outcome"]["form"], "pregnancy-notification");
    assert_eq!(j["register"]["placed"]["turned"], false);
    assert_eq!(j["register"]["placed"]["covered_mark"], Value::Null);
    // The decoded page keeps its size and states its resolution.
    assert_eq!(j["decode"]["dpi_from"], "marks");
    let dpi = j["decode"]["dpi"].as_f64().unwrap();
    assert!((dpi - 400.0).abs() < 12.0, "dpi {dpi}");
    let decoded = image::open(e.page.join("1-decoded.png")).unwrap();
    let src = image::open(common::repo().join(SAMPLE)).unwrap();
    assert_eq!(
        (decoded.width(), decoded.height()),
        (src.width(), src.height())
    );
    // All four marks found, each close to where the other three put it.
    let marks = j["register"]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["side"] == "pregnancy-notification")
        .expect("the pregnancy template placed it")["marks"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(marks.len(), 4);
    for m in &marks {
        assert!(m["found_px"].is_array(), "{m}");
        assert!(m["residual_mm"].as_f64().unwrap() < 1.0, "{m}");
    }
    // Every field of the side, with its cells and boxes as the read stage saw them.
    let fields = j["read"]["fields"].as_array().unwrap();
    let truth = truth_fields();
    assert_eq!(fields.len(), truth.as_object().unwrap().len());
    let atena = fields.iter().find(|f| f["id"] == "atena_no").unwrap();
    assert_eq!(atena["cells"].as_array().unwrap().len(), 10);
    let worries = fields.iter().find(|f| f["id"] == "q_worries").unwrap();
    let boxes = worries["boxes"].as_array().unwrap();
    for (i, b) in boxes.iter().enumerate() {
        // The truth's ticks (3 and 5) are marked, their ink share is given.
        let ticked = truth["q_worries"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(i + 1));
        assert_eq!(b["state"] == "marked", ticked, "box {}: {b}", i + 1);
        assert!(b["evidence"]["ink"].is_number());
    }
    // My Number: masked but for its last four, in the texts and the cells.
    let my_number = truth["my_number"].as_str().unwrap();
    let mine = fields.iter().find(|f| f["id"] == "my_number").unwrap();
    let shown = mine["value"].as_str().unwrap();
    assert!(shown.starts_with("********"), "{shown}");
    let cells = mine["cells"].as_array().unwrap();
    assert!(cells[..8].iter().all(|c| c["digit"] == "*"));
    let json_text = std::fs::read_to_string(e.page.join("explain.json")).unwrap();
    for text in [&e.txt, &json_text] {
        assert!(!text.contains(my_number), "My Number in full");
        assert!(!text.contains(&my_number[..8]));
    }
    // The match with the register, and the page's outcome, in words.
    assert!(j["match"]["outcome"]["outcome"].is_string());
    assert!(e.txt.contains("位置合わせ") && e.txt.contains("妊娠届出書"));
    assert!(e.txt.contains("凡例"));
    // stdout names the page and its status, nothing read from it.
    assert!(e.stdout.contains("1ページ"), "{}", e.stdout);
    for v in ["atena_no", "my_number", "birth_date"] {
        let value = truth[v].as_str().unwrap();
        assert!(!e.stdout.contains(value), "{v} on stdout");
    }
}

#[test]
fn an_upside_down_page_is_read_turned() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("explain");
    let e = explain(&common::repo().join(TURNED), &out, "en");
    assert_files(
        &e,
        &out,
        &["1-decoded.png", "2-registered.png", "3-read.png"],
    );
    assert_eq!(e.json["failed_stage"], Value::Null);
    assert_eq!(e.json["register"]["placed"]["turned"], true);
    assert_eq!(e.json["outcome"]["turned"], true);
    // The upright id code named nothing; the turned one named the side.
    let attempt = e.json["register"]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["side"].is_string())
        .unwrap()
        .clone();
    let codes = attempt["id_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 2);
    assert_eq!(codes[0]["turned"], false);
    assert_eq!(codes[1]["turned"], true);
    assert!(codes[1]["code"].is_number());
    assert!(e.txt.contains("upside down"), "{}", e.txt);
}

#[test]
fn a_covered_mark_is_placed_from_the_other_three_and_two_stop_registration() {
    let dir = tempfile::tempdir().unwrap();
    let mut one = load(SAMPLE);
    // The top-right mark is centred at (198, 12) mm, 6 mm square.
    whiten(&mut one, 190.0, 4.0, 16.0, 16.0);
    let file = dir.path().join("covered.png");
    one.save(&file).unwrap();
    let out = dir.path().join("one");
    let e = explain(&file, &out, "ja");
    assert_files(
        &e,
        &out,
        &["1-decoded.png", "2-registered.png", "3-read.png"],
    );
    assert_eq!(e.json["failed_stage"], Value::Null);
    assert_eq!(
        e.json["register"]["placed"]["covered_mark"]["corner"],
        "top-right"
    );
    let attempt = e.json["register"]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["side"].is_string())
        .unwrap()
        .clone();
    let tr = &attempt["marks"][1];
    assert_eq!(tr["corner"], "top-right");
    assert_eq!(tr["found_px"], Value::Null);
    assert!(tr["placed_px"].is_array(), "{tr}");
    assert!(e.txt.contains("右上のマークは隠れていた"), "{}", e.txt);

    // Two marks covered: unreadable, stopped at registration, with the
    // corners as evidence and no reading drawn.
    let mut two = load(SAMPLE);
    whiten(&mut two, 4.0, 277.0, 16.0, 16.0);
    whiten(&mut two, 190.0, 4.0, 16.0, 16.0);
    let file = dir.path().join("two.png");
    two.save(&file).unwrap();
    let out = dir.path().join("two");
    let e = explain(&file, &out, "ja");
    assert_files(&e, &out, &["1-decoded.png", "2-registered.png"]);
    assert_eq!(e.json["outcome"]["status"], "unreadable");
    assert_eq!(
        e.json["outcome"]["reasons"],
        serde_json::json!(["marks_not_found"])
    );
    assert_eq!(e.json["failed_stage"], "register");
    assert_eq!(e.json["error"]["code"], "marks_not_found");
    assert_eq!(
        e.json["error"]["evidence"]["MarksNotFound"]["missing"],
        serde_json::json!(["top-right", "bottom-left"])
    );
    assert!(
        e.txt.contains("位置合わせの段階で止まりました"),
        "{}",
        e.txt
    );
    assert!(e.stdout.contains("marks_not_found"), "{}", e.stdout);
}

#[test]
fn a_page_whose_id_code_names_no_form_is_an_unknown_form_with_the_bits_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut page = load(SAMPLE);
    // The id code strip: 16 cells of 3 mm from x 81, y 10.5.
    whiten(&mut page, 79.0, 9.0, 52.0, 6.0);
    let file = dir.path().join("no-code.png");
    page.save(&file).unwrap();
    let out = dir.path().join("explain");
    let e = explain(&file, &out, "en");
    assert_files(&e, &out, &["1-decoded.png", "2-registered.png"]);
    assert_eq!(e.json["outcome"]["status"], "unreadable");
    assert_eq!(
        e.json["outcome"]["reasons"],
        serde_json::json!(["unknown_form"])
    );
    assert_eq!(e.json["failed_stage"], "register");
    assert_eq!(e.json["error"]["code"], "unknown_form");
    let evidence = &e.json["error"]["evidence"]["UnknownForm"];
    assert_eq!(evidence["bits_upright"], "0".repeat(16));
    // Every template's geometry was tried, every mark found.
    let attempts = e.json["register"]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    for a in attempts {
        assert_eq!(a["error"]["UnknownForm"]["bits_upright"], "0".repeat(16));
        assert!(a["marks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["found_px"].is_array()));
    }
    assert!(e.txt.contains("stopped at stage: 2. register"), "{}", e.txt);
}

#[test]
fn a_file_that_does_not_decode_says_why_at_the_top() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(common::repo().join(SAMPLE)).unwrap();
    let file = dir.path().join("cut.png");
    std::fs::write(&file, &bytes[..bytes.len() / 3]).unwrap();
    let out = dir.path().join("explain");
    let o = common::todoke()
        .args(["explain", "--out"])
        .arg(&out)
        .arg(&file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("explain.json")).unwrap()).unwrap();
    assert_eq!(j["failed_stage"], "decode");
    assert_eq!(j["error"]["code"], "corrupt");
    assert_eq!(mode(&out.join("explain.txt")), 0o600);
    assert!(!out.join("page-1").exists());
}

#[test]
fn report_html_shows_an_unreadable_page_as_registration_saw_it() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox/honcho");
    std::fs::create_dir_all(&inbox).unwrap();
    let mut page = load(SAMPLE);
    whiten(&mut page, 79.0, 9.0, 52.0, 6.0);
    page.save(inbox.join("no-code.png")).unwrap();
    let out = dir.path().join("out");
    common::run(
        &dir.path().join("inbox"),
        &common::repo().join("seeds/register.csv"),
        &out,
    );
    let html = std::fs::read_to_string(out.join("batches/test/report.html")).unwrap();
    let at = html
        .find("data-image=\"page\"")
        .expect("the unreadable page is shown");
    assert!(html[at..].contains("src=\"data:image/png;base64,"));
    assert!(html.contains("data-reason=\"unknown_form\""));
    // records.jsonl carries no image.
    let records = std::fs::read_to_string(out.join("batches/test/records.jsonl")).unwrap();
    assert!(!records.contains("base64") && !records.contains("@page"));
}

#[test]
fn the_review_card_shows_an_unreadable_page_as_registration_saw_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut page = load(SAMPLE);
    whiten(&mut page, 79.0, 9.0, 52.0, 6.0);
    let file = dir.path().join("no-code.png");
    page.save(&file).unwrap();
    let mut config = todoke::config::Config {
        forms_dir: common::repo().join("forms"),
        ..Default::default()
    };
    config.watch.state = dir.path().join("todoke.db");
    config.watch.register = common::repo().join("seeds/register.csv");
    // The page read by the engine `run` and `watch` use, stored as the
    // daemon stores it.
    let reader = common::reader();
    let engine = todoke::pipeline::Engine::new(&config, &config.watch.register, &reader).unwrap();
    let scan = todoke::intake::Scan {
        path: file.clone(),
        rel: "honcho/no-code.png".into(),
        branch: "honcho".into(),
        received_on: chrono::Local::now().date_naive(),
    };
    let (sha, outcome) = engine.process(&scan);
    let todoke::pipeline::FileOutcome::Pages(records) = outcome else {
        panic!("the file decodes");
    };
    assert_eq!(records[0].reasons, ["unknown_form"]);
    assert!(records[0]
        .images
        .iter()
        .any(|(id, png)| id == todoke::explain::PAGE_IMAGE && png.starts_with(b"\x89PNG")));
    let mut ledger = todoke::ledger::Ledger::open(&config.watch.state).unwrap();
    let todoke::ledger::Received::New(id) = ledger
        .receive(&sha, "honcho", "honcho/no-code.png", "honcho/1-no-code.png")
        .unwrap()
    else {
        panic!("a new scan");
    };
    ledger.store_read(id, &records).unwrap();
    ledger.open_batch("b1").unwrap();
    ledger.publish("b1").unwrap();
    drop(ledger);

    let (port, token) = common::serve_review(config);
    let (status, _, body) = common::browser::http(
        port,
        "GET",
        &format!("/m/{id}/1"),
        &[("Cookie", &format!("todoke_t={token}"))],
        "",
    );
    assert_eq!(status, 200, "{body}");
    let at = body
        .find("id=\"page-image\"")
        .expect("the card shows the page");
    assert!(body[at..].contains("src=\"data:image/png;base64,"));
    assert!(body.contains("data-reason=\"unknown_form\""));
}

/// Writes `docs/explain-3-read.png` for the README: the top of `3-read.png`
/// of the sample page. `cargo test --release --test explain -- --ignored`.
#[test]
#[ignore]
fn write_docs_image() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("explain");
    let e = explain(&common::repo().join(SAMPLE), &out, "ja");
    let read = image::open(e.page.join("3-read.png")).unwrap().to_rgb8();
    let (w, h) = read.dimensions();
    let top =
        image::imageops::crop_imm(&read, w / 10, h * 12 / 100, w * 8 / 10, h * 40 / 100).to_image();
    let (cw, ch) = top.dimensions();
    let small = image::imageops::resize(
        &top,
        cw * 3 / 4,
        ch * 3 / 4,
        image::imageops::FilterType::Triangle,
    );
    small
        .save(common::repo().join("docs/explain-3-read.png"))
        .unwrap();
    if let Ok(keep) = std::env::var("TODOKE_EXPLAIN_KEEP") {
        // The other cases' pictures, for a person to look at.
        let keep = PathBuf::from(keep);
        let mut page = load(SAMPLE);
        whiten(&mut page, 190.0, 4.0, 16.0, 16.0);
        whiten(&mut page, 79.0, 9.0, 52.0, 6.0);
        page.save(keep.join("both.png")).unwrap();
        explain(&keep.join("both.png"), &keep.join("both"), "en");
        let mut page = load(SAMPLE);
        whiten(&mut page, 190.0, 4.0, 16.0, 16.0);
        page.save(keep.join("one.png")).unwrap();
        explain(&keep.join("one.png"), &keep.join("one"), "ja");
    }
}

#[test]
fn one_page_of_a_pdf_is_explained_alone_and_a_missing_page_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("explain");
    // Page 2 of this PDF is a check-up back scanned upside down.
    let pdf = common::repo().join("samples/inbox/sakura/scan-0012.pdf");
    let o = common::todoke()
        .arg("explain")
        .arg(&pdf)
        .args(["--page", "2", "--lang", "en", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!out.join("page-1").exists());
    let j: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("page-2/explain.json")).unwrap())
            .unwrap();
    assert_eq!(j["page"], 2);
    assert_eq!(j["outcome"]["side"], "infant-checkup-back");
    assert_eq!(j["register"]["placed"]["turned"], true);
    assert!(out.join("page-2/3-read.png").exists());

    let o = common::todoke()
        .arg("explain")
        .arg(&pdf)
        .args(["--page", "5", "--out"])
        .arg(dir.path().join("none"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no page 5 (it has 2)"), "{err}");
}
