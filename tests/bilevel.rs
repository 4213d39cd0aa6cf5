//! Black-and-white scans: office scanners in their document mode write
//! 1-bit TIFFs coded CCITT Group 4, with white as zero. They must decode to
//! the pixels scanned and read like any other scan.

mod common;

use image::GrayImage;
use todoke::decode::{decode, looks_complete, DecodeLimits, PdfRenderer};
use todoke::synth::Truth;

/// `img` as a scanner's black-and-white mode writes it: dark below
/// `threshold`, Group 4 coded, in a single-strip TIFF.
fn group4_tiff(img: &GrayImage, threshold: u8) -> Vec<u8> {
    use fax::{encoder::Encoder, Color, VecWriter};
    let mut enc = Encoder::new(VecWriter::new());
    for row in img.rows() {
        let pels = row.map(|p| match p[0] < threshold {
            true => Color::Black,
            false => Color::White,
        });
        enc.encode_line(pels, img.width() as u16).unwrap();
    }
    let coded = enc.finish().unwrap().finish();
    fax::tiff::wrap(&coded, img.width(), img.height())
}

fn no_pdf() -> PdfRenderer {
    PdfRenderer::start(std::path::Path::new("/nonexistent/libpdfium.so"))
}

#[test]
fn a_group4_tiff_decodes_to_the_pixels_scanned() {
    // Odd width, so rows end inside a byte; stripes and a box of ink.
    let img = GrayImage::from_fn(203, 61, |x, y| {
        let ink = (x / 7 + y / 5) % 3 == 0 || (40..60).contains(&x) && (10..30).contains(&y);
        image::Luma([if ink { 20 } else { 230 }])
    });
    let bytes = group4_tiff(&img, 128);
    assert!(looks_complete(&bytes));
    assert!(!looks_complete(&bytes[..bytes.len() * 9 / 10]));
    let pages = decode(&bytes, &DecodeLimits::default(), &no_pdf()).expect("decodes");
    assert_eq!(pages.len(), 1);
    let got = &pages[0].image;
    assert_eq!(got.dimensions(), img.dimensions());
    for (x, y, p) in img.enumerate_pixels() {
        let want = if p[0] < 128 { 0 } else { 255 };
        assert_eq!(got.get_pixel(x, y)[0], want, "pixel ({x}, {y})");
    }
}

#[test]
fn black_and_white_scans_of_the_samples_read_as_their_truth_says() {
    let samples = common::repo().join("samples");
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    let mut truths = Vec::new();
    // The single-page image samples, each as a scanner in black-and-white
    // mode would have written it.
    for branch in ["honcho", "sakura"] {
        std::fs::create_dir_all(inbox.join(branch)).unwrap();
        for e in std::fs::read_dir(samples.join("inbox").join(branch)).unwrap() {
            let path = e.unwrap().path();
            let ext = path.extension().unwrap().to_string_lossy().to_string();
            if !["png", "jpg"].contains(&ext.as_str()) {
                continue;
            }
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let truth: Truth = serde_json::from_str(
                &std::fs::read_to_string(samples.join(format!("truth/{branch}/{name}.json")))
                    .unwrap(),
            )
            .unwrap();
            let stem = path.file_stem().unwrap().to_string_lossy().to_string();
            let grey = image::open(&path).unwrap().into_luma8();
            std::fs::write(
                inbox.join(branch).join(format!("{stem}.tif")),
                group4_tiff(&grey, 128),
            )
            .unwrap();
            truths.push((format!("{branch}/{stem}.tif"), truth));
        }
    }
    assert!(truths.len() >= 6, "{} image samples", truths.len());
    let out = dir.path().join("out");
    let run = common::run(
        &inbox,
        &samples.parent().unwrap().join("seeds/register.csv"),
        &out,
    );
    assert_eq!(run.quarantined, 0, "every black-and-white scan decodes");
    let records = common::records(&out);
    assert_eq!(records.len(), truths.len());
    let (mut answers, mut right, mut validated) = (0, 0, 0);
    for (source, truth) in &truths {
        let r = records
            .iter()
            .find(|r| r["source"] == source.as_str())
            .unwrap_or_else(|| panic!("no record for {source}"));
        let t = &truth.pages[0];
        assert_eq!(r["side"].as_str(), t.side.as_deref(), "{source}: side");
        validated += usize::from(r["status"] == "validated");
        for (id, want) in &t.fields {
            let got = &r["fields"][id]["value"];
            if id == "my_number" {
                continue; // masked in records.jsonl
            }
            // A faint pencil tick can fall below the scanner's black level:
            // the answer is then missing and the page goes to staff.
            assert!(
                got == want || r["status"] != "validated",
                "{source}: validated {id} is {got}, the paper says {want}"
            );
            if !want.is_string() {
                answers += 1;
                right += usize::from(got == want);
                // A pencil tick a black-and-white scanner dropped may go
                // unread, but never silently: its field goes to staff.
                assert!(
                    got == want || r["fields"][id]["status"] != "ok",
                    "{source}: {id} read {got} with status ok, the paper says {want}"
                );
            }
        }
    }
    println!(
        "{validated} of {} black-and-white sample pages validated; {right} of {answers} checkbox answers read right",
        truths.len()
    );
    assert!(answers >= 60, "{answers} checkbox answers compared");
    // Most answers are plain ticks, crosses and fills, which survive the
    // black level; only faint pencil is lost (README, checkboxes by style).
    assert!(
        right * 10 >= answers * 8,
        "{right} of {answers} answers right"
    );
}
