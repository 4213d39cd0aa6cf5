//! Bad files among good scans: each bad one is quarantined with its own
//! reason, and the good ones are still processed.

mod common;

use std::path::Path;

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap();
}

/// A PNG whose header claims 20000×20000 pixels (with a valid header CRC),
/// followed by a few bytes of data: decoding it would need 400 MB.
fn huge_png_header() -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(b"IHDR");
    ihdr.extend_from_slice(&20000u32.to_be_bytes());
    ihdr.extend_from_slice(&20000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    png.extend_from_slice(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82]);
    png
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn bad_files_are_quarantined_and_good_ones_processed() {
    let samples = common::repo().join("samples/inbox");
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    let sample = |ext: &str| {
        todoke::intake::collect(&samples)
            .unwrap()
            .into_iter()
            .map(|s| s.path)
            .find(|p| p.extension().is_some_and(|e| e == ext))
            .unwrap_or_else(|| panic!("a sample .{ext}"))
    };
    let (good_png, good_pdf) = (sample("png"), sample("pdf"));
    copy(&good_png, &inbox.join("honcho/good.png"));
    copy(&good_pdf, &inbox.join("sakura/good.pdf"));
    let png = std::fs::read(&good_png).unwrap();
    let pdf = std::fs::read(&good_pdf).unwrap();
    let jpg = std::fs::read(sample("jpg")).unwrap();
    let bad: [(&str, Vec<u8>, &str); 6] = [
        ("honcho/empty.png", vec![], "empty"),
        (
            "honcho/truncated.png",
            png[..png.len() / 3].to_vec(),
            "corrupt",
        ),
        (
            "sakura/truncated.jpg",
            jpg[..jpg.len() / 3].to_vec(),
            "corrupt",
        ),
        (
            "sakura/truncated.pdf",
            pdf[..pdf.len() / 3].to_vec(),
            "corrupt",
        ),
        (
            "sakura/notes.pdf",
            b"meeting notes, not a scan\n".to_vec(),
            "unknown_format",
        ),
        ("sakura/huge.png", huge_png_header(), "too_large"),
    ];
    for (rel, bytes, _) in &bad {
        std::fs::write(inbox.join(rel), bytes).unwrap();
    }
    let out = dir.path().join("out");
    let summary = common::run(&inbox, &common::repo().join("seeds/register.csv"), &out);

    assert_eq!(summary.quarantined, bad.len());
    for (rel, _, code) in &bad {
        let reason_file = out
            .join("quarantine")
            .join(format!("{}.reason.txt", rel.replace('/', "__")));
        let reason = std::fs::read_to_string(&reason_file)
            .unwrap_or_else(|_| panic!("{rel} not quarantined"));
        assert!(reason.contains(code), "{rel}: {reason}");
    }
    let records = common::records(&out);
    let sources: Vec<&str> = records
        .iter()
        .map(|r| r["source"].as_str().unwrap())
        .collect();
    assert!(sources.contains(&"honcho/good.png"), "{sources:?}");
    assert!(sources.contains(&"sakura/good.pdf"), "{sources:?}");
    // The good scans are read as their truth says: every page there, the
    // synthetic blank page sent to staff, every form page registered.
    for (good, original) in [
        ("honcho/good.png", &good_png),
        ("sakura/good.pdf", &good_pdf),
    ] {
        let name = original.file_name().unwrap().to_string_lossy();
        let branch = original
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy();
        let truth: todoke::synth::Truth = serde_json::from_str(
            &std::fs::read_to_string(
                common::repo().join(format!("samples/truth/{branch}/{name}.json")),
            )
            .unwrap(),
        )
        .unwrap();
        let mine: Vec<&serde_json::Value> =
            records.iter().filter(|r| r["source"] == good).collect();
        assert_eq!(mine.len(), truth.pages.len(), "{good}");
        for (r, t) in mine.iter().zip(&truth.pages) {
            assert_eq!(r["page"], t.page as u64, "{good}");
            assert_eq!(
                r["side"].as_str(),
                t.side.as_deref(),
                "{good} page {}",
                t.page
            );
            // A known side that is not read is skipped; a blank sheet goes
            // to staff (it looks the same as a page whose image is lost).
            let want = match t.side.as_deref() {
                None => "unreadable",
                Some(s) if s.ends_with("-front") => "skipped",
                Some(_) => r["status"].as_str().unwrap(),
            };
            assert_eq!(r["status"], want, "{good} page {}", t.page);
            if t.side.is_some() {
                assert_ne!(r["status"], "unreadable", "{good} page {}", t.page);
            } else {
                assert_eq!(r["reasons"][0], "blank_page", "{good} page {}", t.page);
            }
        }
    }
    for (rel, _, _) in &bad {
        assert!(!sources.contains(rel), "{rel} must not be a record");
    }
}
