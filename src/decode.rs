//! Decode stage: the bytes of one scan file in, grey page images out.
//!
//! The format is told by its magic bytes, never by the file name, so a text
//! file named `.pdf` is reported as what it is. Sizes are checked against
//! limits before pixels are allocated, so a header that claims a gigapixel
//! image costs nothing.

use image::{GrayImage, ImageFormat};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// One decoded page, upright or not (registration decides).
#[derive(Debug, Clone)]
pub struct DecodedPage {
    /// 1-based page number within the file.
    pub page: usize,
    pub image: GrayImage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanFormat {
    Png,
    Jpeg,
    Tiff,
    Pdf,
}

#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// Largest width or height accepted, in pixels.
    pub max_side_px: u32,
    /// Largest page count of one file.
    pub max_pages: usize,
    /// Resolution PDF pages are rendered at.
    pub pdf_dpi: f32,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        // A4 at 1200 dpi is 9921×14031; nothing a branch scanner sends is larger.
        DecodeLimits {
            max_side_px: 14_100,
            max_pages: 200,
            pdf_dpi: 300.0,
        }
    }
}

/// Why a file could not be decoded; each becomes a quarantine reason.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("empty file")]
    Empty,
    #[error("not a supported scan format (PNG, JPEG, TIFF, PDF); starts with {magic}")]
    UnknownFormat { magic: String },
    #[error("{format:?} image is {width}×{height} px, over the limit of {limit} px a side")]
    TooLarge {
        format: ScanFormat,
        width: u32,
        height: u32,
        limit: u32,
    },
    #[error("{format:?} file is corrupt or truncated: {detail}")]
    Corrupt { format: ScanFormat, detail: String },
    #[error("PDF has {pages} pages, over the limit of {limit}")]
    TooManyPages { pages: usize, limit: usize },
    #[error("PDF has no pages")]
    NoPages,
    #[error("PDF support unavailable: {0}")]
    PdfUnavailable(String),
}

impl DecodeError {
    /// Short machine-readable code for ledgers and reason files.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::Empty => "empty",
            DecodeError::UnknownFormat { .. } => "unknown_format",
            DecodeError::TooLarge { .. } => "too_large",
            DecodeError::Corrupt { .. } => "corrupt",
            DecodeError::TooManyPages { .. } => "too_many_pages",
            DecodeError::NoPages => "no_pages",
            DecodeError::PdfUnavailable(_) => "pdf_unavailable",
        }
    }
}

/// Tells the format from the first bytes.
pub fn sniff(bytes: &[u8]) -> Option<ScanFormat> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ScanFormat::Png)
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ScanFormat::Jpeg)
    } else if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        Some(ScanFormat::Tiff)
    } else if bytes.len() >= 5
        && bytes[..bytes.len().min(1024)]
            .windows(5)
            .any(|w| w == b"%PDF-")
    {
        Some(ScanFormat::Pdf)
    } else {
        None
    }
}

/// True when the file's own end marker is present: PNG `IEND`, JPEG EOI,
/// PDF `%%EOF`. TIFF has no end marker; it counts as complete when it decodes.
/// Used by intake to tell a file still being written from a finished one.
pub fn looks_complete(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(1024)..];
    match sniff(bytes) {
        Some(ScanFormat::Png) => tail.windows(4).any(|w| w == b"IEND"),
        Some(ScanFormat::Jpeg) => tail.windows(2).any(|w| w == [0xFF, 0xD9]),
        Some(ScanFormat::Pdf) => tail.windows(5).any(|w| w == b"%%EOF"),
        Some(ScanFormat::Tiff) => tiff_complete(bytes),
        None => false,
    }
}

/// A TIFF has no end marker: it is complete when every page's directory
/// can be read and every strip or tile it points to lies inside the file.
/// Checked without decompressing, which would double the reading cost of
/// every TIFF the daemon takes.
fn tiff_complete(bytes: &[u8]) -> bool {
    use tiff::tags::Tag;
    let Ok(mut dec) = tiff::decoder::Decoder::new(Cursor::new(bytes)) else {
        return false;
    };
    let len = bytes.len() as u64;
    loop {
        let mut tag = |strips: Tag, tiles: Tag| {
            dec.get_tag_u64_vec(strips)
                .or_else(|_| dec.get_tag_u64_vec(tiles))
                .ok()
        };
        let offsets = tag(Tag::StripOffsets, Tag::TileOffsets);
        let counts = tag(Tag::StripByteCounts, Tag::TileByteCounts);
        let inside = match (offsets, counts) {
            (Some(o), Some(c)) if o.len() == c.len() && !o.is_empty() => o
                .iter()
                .zip(&c)
                .all(|(&o, &c)| o.checked_add(c).is_some_and(|end| end <= len)),
            _ => false,
        };
        if !inside {
            return false;
        }
        if !dec.more_images() {
            return true;
        }
        if dec.next_image().is_err() {
            return false;
        }
    }
}

/// Decodes every page of a scan. PDFs go through `pdf`, which owns pdfium.
pub fn decode(
    bytes: &[u8],
    limits: &DecodeLimits,
    pdf: &PdfRenderer,
) -> Result<Vec<DecodedPage>, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    match sniff(bytes) {
        // JPEG decoders fill a cut-off image with grey rather than fail;
        // a scan without its end marker is refused instead of half read.
        Some(ScanFormat::Jpeg) if !looks_complete(bytes) => Err(DecodeError::Corrupt {
            format: ScanFormat::Jpeg,
            detail: "the file ends before the JPEG end marker (truncated)".into(),
        }),
        Some(f @ (ScanFormat::Png | ScanFormat::Jpeg)) => Ok(vec![DecodedPage {
            page: 1,
            image: decode_raster(bytes, f, limits)?,
        }]),
        Some(ScanFormat::Tiff) => decode_tiff(bytes, limits),
        Some(ScanFormat::Pdf) => pdf.render(bytes.to_vec(), *limits),
        None => Err(DecodeError::UnknownFormat {
            magic: bytes
                .iter()
                .take(8)
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" "),
        }),
    }
}

fn decode_raster(
    bytes: &[u8],
    format: ScanFormat,
    limits: &DecodeLimits,
) -> Result<GrayImage, DecodeError> {
    let corrupt = |e: image::ImageError| DecodeError::Corrupt {
        format,
        detail: e.to_string(),
    };
    let image_format = match format {
        ScanFormat::Png => ImageFormat::Png,
        _ => ImageFormat::Jpeg,
    };
    // PNG's first chunk is its header: read the claimed size from it before
    // any decoder runs, so a lying header is refused even without pixel data.
    let (width, height) = match (format, png_header_size(bytes)) {
        (ScanFormat::Png, Some(size)) => size,
        _ => image::ImageReader::with_format(Cursor::new(bytes), image_format)
            .into_dimensions()
            .map_err(corrupt)?,
    };
    if width.max(height) > limits.max_side_px {
        return Err(DecodeError::TooLarge {
            format,
            width,
            height,
            limit: limits.max_side_px,
        });
    }
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), image_format);
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = Some(limits.max_side_px);
    image_limits.max_image_height = Some(limits.max_side_px);
    reader.limits(image_limits);
    Ok(reader.decode().map_err(corrupt)?.into_luma8())
}

fn png_header_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.len() < 24 || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Some((be(&bytes[16..20]), be(&bytes[20..24])))
}

fn decode_tiff(bytes: &[u8], limits: &DecodeLimits) -> Result<Vec<DecodedPage>, DecodeError> {
    use tiff::decoder::{Decoder, DecodingResult};
    use tiff::ColorType;
    let corrupt = |detail: String| DecodeError::Corrupt {
        format: ScanFormat::Tiff,
        detail,
    };
    let mut dec = Decoder::new(Cursor::new(bytes)).map_err(|e| corrupt(e.to_string()))?;
    let mut pages = Vec::new();
    loop {
        let (width, height) = dec.dimensions().map_err(|e| corrupt(e.to_string()))?;
        if width.max(height) > limits.max_side_px {
            return Err(DecodeError::TooLarge {
                format: ScanFormat::Tiff,
                width,
                height,
                limit: limits.max_side_px,
            });
        }
        if pages.len() >= limits.max_pages {
            return Err(DecodeError::TooManyPages {
                pages: pages.len() + 1,
                limit: limits.max_pages,
            });
        }
        let colour = dec.colortype().map_err(|e| corrupt(e.to_string()))?;
        let data = match dec.read_image().map_err(|e| corrupt(e.to_string()))? {
            DecodingResult::U8(v) => v,
            DecodingResult::U16(v) => v.into_iter().map(|x| (x >> 8) as u8).collect(),
            _ => return Err(corrupt("unsupported sample format".into())),
        };
        let n = (width * height) as usize;
        let grey: Vec<u8> = match colour {
            // An office scanner's black-and-white mode, usually CCITT Group
            // 4: packed rows, which the decoder has already turned to
            // black-is-zero whatever the file's photometric says.
            ColorType::Gray(bits @ (1 | 2 | 4)) => unpack_grey(&data, width, height, bits)
                .ok_or_else(|| corrupt(format!("page {} is cut short", pages.len() + 1)))?,
            ColorType::Gray(_) => data,
            ColorType::RGB(_) => data
                .chunks_exact(3)
                .map(|p| luma(p[0], p[1], p[2]))
                .collect(),
            ColorType::RGBA(_) => data
                .chunks_exact(4)
                .map(|p| luma(p[0], p[1], p[2]))
                .collect(),
            other => return Err(corrupt(format!("unsupported colour type {other:?}"))),
        };
        if grey.len() < n {
            return Err(corrupt(format!(
                "page {} has {} of {n} pixels",
                pages.len() + 1,
                grey.len()
            )));
        }
        let image = GrayImage::from_raw(width, height, grey[..n].to_vec())
            .ok_or_else(|| corrupt("pixel buffer size".into()))?;
        pages.push(DecodedPage {
            page: pages.len() + 1,
            image,
        });
        if !dec.more_images() {
            break;
        }
        dec.next_image().map_err(|e| corrupt(e.to_string()))?;
    }
    Ok(pages)
}

/// Grey levels of packed `bits`-per-pixel rows (each row starting on a
/// byte, most significant bits first), 0 black and 255 white; `None` when
/// the data is shorter than the image.
fn unpack_grey(data: &[u8], width: u32, height: u32, bits: u8) -> Option<Vec<u8>> {
    let (width, bits) = (width as usize, usize::from(bits));
    let row_bytes = (width * bits).div_ceil(8);
    let rows = data.get(..row_bytes * height as usize)?;
    let top = (1u16 << bits) - 1;
    Some(
        rows.chunks_exact(row_bytes)
            .flat_map(|row| {
                (0..width).map(move |x| {
                    let at = x * bits;
                    let v = (row[at / 8] >> (8 - bits - at % 8)) as u16 & top;
                    (v * 255 / top) as u8
                })
            })
            .collect(),
    )
}

fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((r as u32 * 299 + g as u32 * 587 + b as u32 * 114) / 1000) as u8
}

type PdfJob = (
    Vec<u8>,
    DecodeLimits,
    mpsc::Sender<Result<Vec<DecodedPage>, DecodeError>>,
);

/// Renders PDFs on the one thread that owns pdfium, which is not thread-safe.
/// Cheap to share: every caller sends its job to that thread.
pub struct PdfRenderer {
    jobs: Option<mpsc::Sender<PdfJob>>,
    unavailable: Option<String>,
}

impl PdfRenderer {
    /// Binds pdfium from `library` (see [`pdfium_library_path`]). When it cannot
    /// be loaded, PNG/JPEG/TIFF still work and each PDF is quarantined with
    /// the reason.
    pub fn start(library: &Path) -> PdfRenderer {
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let (jobs_tx, jobs_rx) = mpsc::channel::<PdfJob>();
        let library = library.to_path_buf();
        std::thread::Builder::new()
            .name("pdfium".into())
            .spawn(move || {
                let bindings = match pdfium_render::prelude::Pdfium::bind_to_library(&library) {
                    Ok(b) => b,
                    Err(e) => {
                        let _ =
                            ready_tx.send(Err(format!("cannot load {}: {e}", library.display())));
                        return;
                    }
                };
                let pdfium = pdfium_render::prelude::Pdfium::new(bindings);
                let _ = ready_tx.send(Ok(()));
                for (bytes, limits, reply) in jobs_rx {
                    let _ = reply.send(render_pdf(&pdfium, bytes, &limits));
                }
            })
            .expect("spawn pdfium thread");
        match ready_rx.recv() {
            Ok(Ok(())) => PdfRenderer {
                jobs: Some(jobs_tx),
                unavailable: None,
            },
            Ok(Err(e)) => PdfRenderer {
                jobs: None,
                unavailable: Some(e),
            },
            Err(_) => PdfRenderer {
                jobs: None,
                unavailable: Some("pdfium thread ended".into()),
            },
        }
    }

    pub fn available(&self) -> Result<(), String> {
        match &self.unavailable {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    pub fn render(
        &self,
        bytes: Vec<u8>,
        limits: DecodeLimits,
    ) -> Result<Vec<DecodedPage>, DecodeError> {
        let jobs = self.jobs.as_ref().ok_or_else(|| {
            DecodeError::PdfUnavailable(self.unavailable.clone().unwrap_or_default())
        })?;
        let (tx, rx) = mpsc::channel();
        jobs.send((bytes, limits, tx))
            .map_err(|_| DecodeError::PdfUnavailable("pdfium thread ended".into()))?;
        rx.recv()
            .map_err(|_| DecodeError::PdfUnavailable("pdfium thread ended".into()))?
    }
}

// PdfRenderer holds only a channel sender; the pdfium handle never leaves its thread.
unsafe impl Sync for PdfRenderer {}

fn render_pdf(
    pdfium: &pdfium_render::prelude::Pdfium,
    bytes: Vec<u8>,
    limits: &DecodeLimits,
) -> Result<Vec<DecodedPage>, DecodeError> {
    use pdfium_render::prelude::*;
    let corrupt = |e: PdfiumError| DecodeError::Corrupt {
        format: ScanFormat::Pdf,
        detail: e.to_string(),
    };
    let doc = pdfium
        .load_pdf_from_byte_vec(bytes, None)
        .map_err(corrupt)?;
    let count = doc.pages().len() as usize;
    if count == 0 {
        return Err(DecodeError::NoPages);
    }
    if count > limits.max_pages {
        return Err(DecodeError::TooManyPages {
            pages: count,
            limit: limits.max_pages,
        });
    }
    let scale = limits.pdf_dpi / 72.0;
    let mut out = Vec::with_capacity(count);
    for (i, page) in doc.pages().iter().enumerate() {
        let (w, h) = (page.width().value * scale, page.height().value * scale);
        if w.max(h) > limits.max_side_px as f32 {
            return Err(DecodeError::TooLarge {
                format: ScanFormat::Pdf,
                width: w as u32,
                height: h as u32,
                limit: limits.max_side_px,
            });
        }
        let config = PdfRenderConfig::new()
            .scale_page_by_factor(scale)
            .use_grayscale_rendering(true)
            .render_form_data(false);
        let bitmap = page.render_with_config(&config).map_err(corrupt)?;
        let image = bitmap.as_image().map_err(corrupt)?.into_luma8();
        out.push(DecodedPage { page: i + 1, image });
    }
    Ok(out)
}

/// Where pdfium is looked for: `TODOKE_PDFIUM`, then beside the executable,
/// then `/usr/local/lib/todoke`, then the source tree's `.deps/lib`.
pub fn pdfium_library_path() -> PathBuf {
    if let Some(p) = std::env::var_os("TODOKE_PDFIUM") {
        return PathBuf::from(p);
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            candidates.push(dir.join("libpdfium.so"));
        }
    }
    candidates.push(PathBuf::from("/usr/local/lib/todoke/libpdfium.so"));
    let dev = Path::new(env!("CARGO_MANIFEST_DIR")).join(".deps/lib/libpdfium.so");
    candidates.push(dev.clone());
    candidates.into_iter().find(|p| p.exists()).unwrap_or(dev)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_bytes(w: u32, h: u32) -> Vec<u8> {
        let img = GrayImage::from_pixel(w, h, image::Luma([200]));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    fn no_pdf() -> PdfRenderer {
        PdfRenderer {
            jobs: None,
            unavailable: Some("not in this test".into()),
        }
    }

    #[test]
    fn sniffs_by_content_not_name() {
        assert_eq!(sniff(&png_bytes(4, 4)), Some(ScanFormat::Png));
        assert_eq!(sniff(b"%PDF-1.7\n"), Some(ScanFormat::Pdf));
        assert_eq!(sniff(b"hello, this is text"), None);
    }

    #[test]
    fn empty_and_text_files_get_their_own_reasons() {
        let limits = DecodeLimits::default();
        assert!(matches!(
            decode(b"", &limits, &no_pdf()),
            Err(DecodeError::Empty)
        ));
        assert!(matches!(
            decode(b"just some text", &limits, &no_pdf()),
            Err(DecodeError::UnknownFormat { .. })
        ));
    }

    #[test]
    fn a_tiff_is_complete_only_with_every_page_and_strip() {
        use tiff::encoder::{colortype::Gray8, Compression, DeflateLevel, TiffEncoder};
        let mut bytes = Vec::new();
        {
            let mut cur = Cursor::new(&mut bytes);
            let mut enc = TiffEncoder::new(&mut cur)
                .unwrap()
                .with_compression(Compression::Deflate(DeflateLevel::Balanced));
            for page in 0..2u32 {
                let img = image::GrayImage::from_fn(240, 320, |x, y| {
                    image::Luma([((x * 7 + y * 13 + page * 29) % 253) as u8])
                });
                enc.new_image::<Gray8>(240, 320)
                    .unwrap()
                    .write_data(img.as_raw())
                    .unwrap();
            }
        }
        assert!(looks_complete(&bytes));
        assert_eq!(
            decode(&bytes, &DecodeLimits::default(), &no_pdf())
                .unwrap()
                .len(),
            2
        );
        // Cut anywhere, as a copy still under way leaves it: never complete.
        for tenth in 1..10 {
            let cut = &bytes[..bytes.len() * tenth / 10];
            assert!(!looks_complete(cut), "complete at {tenth}/10");
        }
        assert!(!looks_complete(&bytes[..bytes.len() - 1]));
    }

    #[test]
    fn truncated_png_is_corrupt_and_incomplete() {
        let bytes = png_bytes(64, 64);
        let cut = &bytes[..bytes.len() / 2];
        assert!(!looks_complete(cut));
        assert!(looks_complete(&bytes));
        let err = decode(cut, &DecodeLimits::default(), &no_pdf()).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::Corrupt {
                    format: ScanFormat::Png,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn truncated_jpeg_is_corrupt_not_half_read() {
        let img = GrayImage::from_fn(120, 80, |x, y| image::Luma([((x + y) % 256) as u8]));
        let mut bytes = Vec::new();
        img.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Jpeg)
            .unwrap();
        assert_eq!(
            decode(&bytes, &DecodeLimits::default(), &no_pdf())
                .unwrap()
                .len(),
            1
        );
        let cut = &bytes[..bytes.len() * 2 / 3];
        let err = decode(cut, &DecodeLimits::default(), &no_pdf()).unwrap_err();
        assert_eq!(err.code(), "corrupt", "{err}");
    }

    #[test]
    fn oversized_header_is_refused_before_allocation() {
        let limits = DecodeLimits {
            max_side_px: 100,
            ..Default::default()
        };
        let err = decode(&png_bytes(101, 10), &limits, &no_pdf()).unwrap_err();
        assert!(
            matches!(err, DecodeError::TooLarge { width: 101, .. }),
            "{err}"
        );
    }
}
