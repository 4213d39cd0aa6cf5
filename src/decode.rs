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
    /// Largest page accepted, in pixels (width × height): a page is held
    /// whole in memory, once per reader thread, so this bounds memory.
    pub max_page_pixels: u64,
    /// Largest file accepted, in bytes: the file is held whole while its
    /// pages are decoded.
    pub max_file_bytes: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        // A4 at 1200 dpi is 9921×14031; nothing a branch scanner sends is larger.
        DecodeLimits {
            max_side_px: 14_100,
            max_pages: 200,
            pdf_dpi: 300.0,
            // A4 at 600 dpi (35 Mpx) with room to spare; 1200 dpi is refused.
            max_page_pixels: 40_000_000,
            // 200 grey pages at 300 dpi are about 60 MB as JPEG.
            max_file_bytes: 128 * 1024 * 1024,
        }
    }
}

/// Why a file could not be decoded; each becomes a quarantine reason.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("empty file")]
    Empty,
    #[error("not a supported scan format (PNG, JPEG, TIFF, PDF); looks like {looks_like}")]
    UnknownFormat { looks_like: &'static str },
    #[error("{format:?} image is {width}×{height} px, over the limit of {limit} px a side")]
    TooLarge {
        format: ScanFormat,
        width: u32,
        height: u32,
        limit: u32,
    },
    #[error("{format:?} page is {width}×{height} px, over the limit of {limit} pixels a page")]
    TooManyPixels {
        format: ScanFormat,
        width: u32,
        height: u32,
        limit: u64,
    },
    #[error("file is {bytes} bytes, over the limit of {limit}")]
    FileTooLarge { bytes: u64, limit: u64 },
    #[error("{format:?} file is corrupt or truncated: {detail}")]
    Corrupt { format: ScanFormat, detail: String },
    #[error("file has {pages} pages, over the limit of {limit}")]
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
            DecodeError::TooLarge { .. } | DecodeError::TooManyPixels { .. } => "too_large",
            DecodeError::FileTooLarge { .. } => "file_too_large",
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

/// True when the file ends where its own structure says it ends: PNG
/// `IEND`; JPEG the EOI after the last scan (not the one closing an EXIF
/// thumbnail); PDF a `%%EOF` with nothing but white space after it (an
/// incremental update being appended has more); TIFF every page and strip
/// in the file and no bytes after the last of them (a page being
/// appended). Used by intake to tell a file still being written from a
/// finished one.
pub fn looks_complete(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(1024)..];
    match sniff(bytes) {
        Some(ScanFormat::Png) => tail.windows(4).any(|w| w == b"IEND"),
        Some(ScanFormat::Jpeg) => jpeg_complete(bytes),
        Some(ScanFormat::Pdf) => pdf_complete(bytes),
        Some(ScanFormat::Tiff) => {
            tiff_complete(bytes)
                && tiff_extent(bytes).is_some_and(|end| {
                    // Word alignment may leave a byte of padding.
                    bytes.len() as u64 <= end + 1
                })
        }
        None => false,
    }
}

/// The file ends with `%%EOF` and at most white space or NULs after it.
fn pdf_complete(bytes: &[u8]) -> bool {
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace() && *b != 0)
        .map_or(0, |i| i + 1);
    bytes[..end].ends_with(b"%%EOF")
}

/// Walks the JPEG's segments from SOI: each marker segment is skipped by
/// its length (an EXIF thumbnail, EOI and all, lies inside APP1), and the
/// entropy-coded data after each SOS is skipped to the next marker. True
/// only when that walk reaches EOI.
fn jpeg_complete(bytes: &[u8]) -> bool {
    let mut i = 2; // after SOI
    loop {
        // Fill bytes may precede a marker.
        while bytes.get(i) == Some(&0xFF) && bytes.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        let (Some(&0xFF), Some(&marker)) = (bytes.get(i), bytes.get(i + 1)) else {
            return false;
        };
        i += 2;
        match marker {
            0xD9 => return true,
            // Markers without a length.
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let Some(len) = bytes
            .get(i..i + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        else {
            return false;
        };
        if len < 2 {
            return false;
        }
        i += len;
        if i > bytes.len() {
            return false;
        }
        if marker == 0xDA {
            // Entropy-coded data: FF00 is a stuffed byte, FFD0-FFD7 a
            // restart; any other FFxx is the next marker.
            loop {
                match (bytes.get(i), bytes.get(i + 1)) {
                    (Some(&0xFF), Some(&(0x00 | 0xD0..=0xD7 | 0xFF))) => i += 1,
                    (Some(&0xFF), Some(_)) => break,
                    (Some(_), _) => i += 1,
                    (None, _) => return false,
                }
            }
        }
    }
}

/// Where the last byte any page of a classic TIFF uses ends: each page
/// directory, every value stored outside it, and every strip or tile.
/// `None` when the structure cannot be followed (or the file is a BigTIFF).
fn tiff_extent(bytes: &[u8]) -> Option<u64> {
    let le = bytes.starts_with(b"II*\0");
    let u16_at = |at: u64| -> Option<u64> {
        let b = bytes.get(at as usize..at as usize + 2)?;
        Some(u64::from(if le {
            u16::from_le_bytes([b[0], b[1]])
        } else {
            u16::from_be_bytes([b[0], b[1]])
        }))
    };
    let u32_at = |at: u64| -> Option<u64> {
        let b = bytes.get(at as usize..at as usize + 4)?;
        let a = [b[0], b[1], b[2], b[3]];
        Some(u64::from(if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }))
    };
    let size_of = |kind: u64| match kind {
        1 | 2 | 6 | 7 => 1,
        3 | 8 => 2,
        4 | 9 | 11 | 13 => 4,
        5 | 10 | 12 => 8,
        _ => 1,
    };
    let mut end = 8u64;
    let mut ifd = u32_at(4)?;
    let mut seen = std::collections::HashSet::new();
    while ifd != 0 {
        if !seen.insert(ifd) {
            return None;
        }
        let n = u16_at(ifd)?;
        let mut offsets = Vec::new();
        let mut counts = Vec::new();
        for e in 0..n {
            let at = ifd + 2 + 12 * e;
            let (tag, kind, count) = (u16_at(at)?, u16_at(at + 2)?, u32_at(at + 4)?);
            let size = count.checked_mul(size_of(kind))?;
            let value_at = if size > 4 { u32_at(at + 8)? } else { at + 8 };
            if size > 4 {
                end = end.max(value_at + size);
            }
            let values = |out: &mut Vec<u64>| -> Option<()> {
                for k in 0..count.min(1 << 20) {
                    out.push(match kind {
                        3 => u16_at(value_at + 2 * k)?,
                        _ => u32_at(value_at + 4 * k)?,
                    });
                }
                Some(())
            };
            match tag {
                273 | 324 => values(&mut offsets)?,
                279 | 325 => values(&mut counts)?,
                _ => {}
            }
        }
        for (o, c) in offsets.iter().zip(&counts) {
            end = end.max(o + c);
        }
        end = end.max(ifd + 2 + 12 * n + 4);
        ifd = u32_at(ifd + 2 + 12 * n)?;
    }
    Some(end)
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

/// A page the file declares that could not be decoded. It becomes an
/// unreadable record with this reason, so no page is lost without a trace.
#[derive(Debug)]
pub struct PageFault {
    /// 1-based page number within the file.
    pub page: usize,
    pub error: DecodeError,
}

/// Decodes a scan one page at a time: each page (or the reason it could not
/// be decoded) is handed to `each` and dropped before the next is decoded, so
/// memory holds one page, not the file's pages. An `Err` is about the whole
/// file (unknown format, over a limit, no page at all can be opened): the
/// file goes to quarantine and whatever `each` made of its pages is void.
/// Every page the file declares reaches `each` exactly once.
pub fn decode_each(
    bytes: &[u8],
    limits: &DecodeLimits,
    pdf: &PdfRenderer,
    each: &mut dyn FnMut(Result<DecodedPage, PageFault>),
) -> Result<(), DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(DecodeError::FileTooLarge {
            bytes: bytes.len() as u64,
            limit: limits.max_file_bytes,
        });
    }
    match sniff(bytes) {
        // JPEG decoders fill a cut-off image with grey rather than fail;
        // a scan without its end marker is refused instead of half read.
        Some(ScanFormat::Jpeg) if !looks_complete(bytes) => Err(DecodeError::Corrupt {
            format: ScanFormat::Jpeg,
            detail: "the file ends before the JPEG end marker (truncated)".into(),
        }),
        Some(f @ (ScanFormat::Png | ScanFormat::Jpeg)) => {
            let image = decode_raster(bytes, f, limits)?;
            each(Ok(DecodedPage { page: 1, image }));
            Ok(())
        }
        Some(ScanFormat::Tiff) => decode_tiff(bytes, limits, each),
        Some(ScanFormat::Pdf) => pdf.render_each(bytes, limits, each),
        None => Err(DecodeError::UnknownFormat {
            looks_like: describe_unknown(bytes),
        }),
    }
}

/// Decodes every page of a scan at once; the first page that cannot be
/// decoded fails the whole file. For tests and tools: the pipeline uses
/// [`decode_each`], which holds one page at a time.
pub fn decode(
    bytes: &[u8],
    limits: &DecodeLimits,
    pdf: &PdfRenderer,
) -> Result<Vec<DecodedPage>, DecodeError> {
    let mut pages = Vec::new();
    let mut fault = None;
    decode_each(bytes, limits, pdf, &mut |p| match p {
        Ok(page) => pages.push(page),
        Err(f) => {
            fault.get_or_insert(f.error);
        }
    })?;
    match fault {
        Some(e) => Err(e),
        None => Ok(pages),
    }
}

/// What an unknown file looks like, in words: its bytes may be anything,
/// including someone's letter, so none of them is quoted.
fn describe_unknown(bytes: &[u8]) -> &'static str {
    let head = &bytes[..bytes.len().min(512)];
    if std::str::from_utf8(head).is_ok_and(|t| {
        t.chars()
            .all(|c| !c.is_control() || c.is_ascii_whitespace())
    }) {
        "text"
    } else if head.starts_with(b"PK\x03\x04") {
        "a ZIP archive (an Office document?)"
    } else {
        "binary data"
    }
}

fn too_many_pixels(
    format: ScanFormat,
    width: u32,
    height: u32,
    limits: &DecodeLimits,
) -> Option<DecodeError> {
    if width.max(height) > limits.max_side_px {
        Some(DecodeError::TooLarge {
            format,
            width,
            height,
            limit: limits.max_side_px,
        })
    } else if u64::from(width) * u64::from(height) > limits.max_page_pixels {
        Some(DecodeError::TooManyPixels {
            format,
            width,
            height,
            limit: limits.max_page_pixels,
        })
    } else {
        None
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
    if let Some(e) = too_many_pixels(format, width, height, limits) {
        return Err(e);
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

/// A TIFF's pages: every page directory is walked first (no pixels), so a
/// file over a limit is refused before anything is decoded; then each page
/// is decoded on its own. A page whose data is damaged is a fault and the
/// next page is still read; a directory chain that breaks is a fault for the
/// page it would have been.
fn decode_tiff(
    bytes: &[u8],
    limits: &DecodeLimits,
    each: &mut dyn FnMut(Result<DecodedPage, PageFault>),
) -> Result<(), DecodeError> {
    use tiff::decoder::Decoder;
    let corrupt = |detail: String| DecodeError::Corrupt {
        format: ScanFormat::Tiff,
        detail,
    };
    let mut dec = Decoder::new(Cursor::new(bytes)).map_err(|e| corrupt(e.to_string()))?;
    let mut pages = 0usize;
    let broken_chain = loop {
        let (width, height) = match dec.dimensions() {
            Ok(d) => d,
            Err(e) => break Some(e.to_string()),
        };
        if let Some(e) = too_many_pixels(ScanFormat::Tiff, width, height, limits) {
            return Err(e);
        }
        pages += 1;
        if pages > limits.max_pages {
            return Err(DecodeError::TooManyPages {
                pages,
                limit: limits.max_pages,
            });
        }
        if !dec.more_images() {
            break None;
        }
        if let Err(e) = dec.next_image() {
            break Some(e.to_string());
        }
    };
    if pages == 0 {
        return Err(corrupt(broken_chain.unwrap_or_default()));
    }
    let mut dec = Decoder::new(Cursor::new(bytes)).map_err(|e| corrupt(e.to_string()))?;
    for page in 1..=pages {
        if page > 1 {
            if let Err(e) = dec.next_image() {
                each(Err(PageFault {
                    page,
                    error: corrupt(format!("page {page}: {e}")),
                }));
                continue;
            }
        }
        let decoded = tiff_page(&mut dec, page).map(|image| DecodedPage { page, image });
        each(decoded.map_err(|error| PageFault { page, error }));
    }
    if let Some(e) = broken_chain {
        each(Err(PageFault {
            page: pages + 1,
            error: corrupt(format!(
                "page {}: its page directory cannot be read: {e}",
                pages + 1
            )),
        }));
    }
    Ok(())
}

/// The decoder's current page, grey.
fn tiff_page(
    dec: &mut tiff::decoder::Decoder<Cursor<&[u8]>>,
    page: usize,
) -> Result<GrayImage, DecodeError> {
    use tiff::decoder::DecodingResult;
    use tiff::ColorType;
    let corrupt = |detail: String| DecodeError::Corrupt {
        format: ScanFormat::Tiff,
        detail: format!("page {page}: {detail}"),
    };
    let (width, height) = dec.dimensions().map_err(|e| corrupt(e.to_string()))?;
    let colour = dec.colortype().map_err(|e| corrupt(e.to_string()))?;
    let data = match dec.read_image().map_err(|e| corrupt(e.to_string()))? {
        DecodingResult::U8(v) => v,
        DecodingResult::U16(v) => v.into_iter().map(|x| (x >> 8) as u8).collect(),
        _ => return Err(corrupt("unsupported sample format".into())),
    };
    let n = width as usize * height as usize;
    let grey: Vec<u8> = match colour {
        // An office scanner's black-and-white mode, usually CCITT Group
        // 4: packed rows, which the decoder has already turned to
        // black-is-zero whatever the file's photometric says.
        ColorType::Gray(bits @ (1 | 2 | 4)) => unpack_grey(&data, width, height, bits)
            .ok_or_else(|| corrupt("the page is cut short".into()))?,
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
        return Err(corrupt(format!("{} of {n} pixels", grey.len())));
    }
    let mut grey = grey;
    grey.truncate(n);
    GrayImage::from_raw(width, height, grey).ok_or_else(|| corrupt("pixel buffer size".into()))
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

/// Work for the pdfium thread. A document stays open there between
/// requests, so a file's pages are rendered one per request and files of
/// different reader threads take turns.
enum PdfJob {
    Open {
        bytes: Vec<u8>,
        limits: DecodeLimits,
        reply: mpsc::Sender<Result<(u64, usize), DecodeError>>,
    },
    Render {
        doc: u64,
        index: usize,
        limits: DecodeLimits,
        reply: mpsc::Sender<Result<GrayImage, DecodeError>>,
    },
    Close {
        doc: u64,
    },
    /// Makes the thread panic, as a fault inside pdfium would: how the
    /// restart is tested.
    Crash,
}

/// pdfium's bindings are process-wide and can be bound only once; every
/// renderer thread, including one started after a crash, uses this.
static PDFIUM: std::sync::OnceLock<Result<pdfium_render::prelude::Pdfium, String>> =
    std::sync::OnceLock::new();

fn pdfium(library: &Path) -> Result<&'static pdfium_render::prelude::Pdfium, String> {
    PDFIUM
        .get_or_init(|| {
            pdfium_render::prelude::Pdfium::bind_to_library(library)
                .map(pdfium_render::prelude::Pdfium::new)
                .map_err(|e| format!("cannot load {}: {e}", library.display()))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Renders PDFs on the one thread that owns pdfium, which is not thread-safe.
/// Cheap to share: every caller sends its job to that thread. When the
/// thread dies (a panic inside pdfium), the next request starts a new one.
pub struct PdfRenderer {
    jobs: std::sync::Mutex<Option<mpsc::Sender<PdfJob>>>,
    unavailable: Option<String>,
    restarts: std::sync::atomic::AtomicUsize,
}

/// The renderer thread is gone: restart it and try again.
struct ThreadDied;

impl PdfRenderer {
    /// Binds pdfium from `library` (see [`pdfium_library_path`]). When it cannot
    /// be loaded, PNG/JPEG/TIFF still work and each PDF is quarantined with
    /// the reason.
    pub fn start(library: &Path) -> PdfRenderer {
        match pdfium(library) {
            Ok(p) => PdfRenderer {
                jobs: std::sync::Mutex::new(Some(spawn_renderer(p))),
                unavailable: None,
                restarts: Default::default(),
            },
            Err(e) => PdfRenderer {
                jobs: std::sync::Mutex::new(None),
                unavailable: Some(e),
                restarts: Default::default(),
            },
        }
    }

    pub fn available(&self) -> Result<(), String> {
        match &self.unavailable {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// How many times the renderer thread was started again after dying.
    pub fn restarts(&self) -> usize {
        self.restarts.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Kills the renderer thread as a panic inside pdfium would.
    #[doc(hidden)]
    pub fn crash_for_test(&self) {
        if let Ok(jobs) = self.sender() {
            let _ = jobs.send(PdfJob::Crash);
        }
        // Wait until the thread is gone, so the next file meets a dead one.
        let start = std::time::Instant::now();
        while self
            .sender()
            .is_ok_and(|j| j.send(PdfJob::Close { doc: 0 }).is_ok())
            && start.elapsed() < std::time::Duration::from_secs(5)
        {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    fn sender(&self) -> Result<mpsc::Sender<PdfJob>, DecodeError> {
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| {
                DecodeError::PdfUnavailable(self.unavailable.clone().unwrap_or_default())
            })
    }

    fn restart(&self) {
        // Bound once at start (or this renderer would be unavailable), so
        // the path is not looked at again.
        if let Ok(p) = pdfium(Path::new("")) {
            let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
            // Another reader may have restarted it already.
            if jobs
                .as_ref()
                .is_none_or(|j| j.send(PdfJob::Close { doc: 0 }).is_err())
            {
                *jobs = Some(spawn_renderer(p));
                self.restarts
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!("the PDF renderer thread died; started a new one");
            }
        }
    }

    fn ask<T>(
        &self,
        job: impl FnOnce(mpsc::Sender<Result<T, DecodeError>>) -> PdfJob,
    ) -> Result<Result<T, DecodeError>, ThreadDied> {
        let (tx, rx) = mpsc::channel();
        let jobs = self.sender().map_err(|_| ThreadDied)?;
        jobs.send(job(tx)).map_err(|_| ThreadDied)?;
        rx.recv().map_err(|_| ThreadDied)
    }

    /// Every page of a PDF, one at a time (see [`decode_each`]). If the
    /// renderer thread dies, it is started again and the file is taken up
    /// again where it stopped, once; a second death quarantines the file.
    fn render_each(
        &self,
        bytes: &[u8],
        limits: &DecodeLimits,
        each: &mut dyn FnMut(Result<DecodedPage, PageFault>),
    ) -> Result<(), DecodeError> {
        self.available().map_err(DecodeError::PdfUnavailable)?;
        let mut next = 0usize;
        let mut retried = false;
        loop {
            match self.render_from(bytes, limits, &mut next, each) {
                Ok(done) => return done,
                Err(ThreadDied) if !retried => {
                    retried = true;
                    self.restart();
                }
                Err(ThreadDied) => {
                    self.restart();
                    return Err(DecodeError::PdfUnavailable(format!(
                        "the PDF renderer failed twice on page {}",
                        next + 1
                    )));
                }
            }
        }
    }

    fn render_from(
        &self,
        bytes: &[u8],
        limits: &DecodeLimits,
        next: &mut usize,
        each: &mut dyn FnMut(Result<DecodedPage, PageFault>),
    ) -> Result<Result<(), DecodeError>, ThreadDied> {
        let (doc, count) = match self.ask(|reply| PdfJob::Open {
            bytes: bytes.to_vec(),
            limits: *limits,
            reply,
        })? {
            Ok(d) => d,
            Err(e) => return Ok(Err(e)),
        };
        let closer = CloseOnDrop {
            renderer: self,
            doc,
        };
        while *next < count {
            let index = *next;
            let page = self.ask(|reply| PdfJob::Render {
                doc,
                index,
                limits: *limits,
                reply,
            })?;
            *next += 1;
            each(
                page.map(|image| DecodedPage {
                    page: index + 1,
                    image,
                })
                .map_err(|error| PageFault {
                    page: index + 1,
                    error,
                }),
            );
        }
        drop(closer);
        Ok(Ok(()))
    }
}

struct CloseOnDrop<'a> {
    renderer: &'a PdfRenderer,
    doc: u64,
}

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        if let Ok(jobs) = self.renderer.sender() {
            let _ = jobs.send(PdfJob::Close { doc: self.doc });
        }
    }
}

static DOC_IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn spawn_renderer(pdfium: &'static pdfium_render::prelude::Pdfium) -> mpsc::Sender<PdfJob> {
    let (jobs_tx, jobs_rx) = mpsc::channel::<PdfJob>();
    std::thread::Builder::new()
        .name("pdfium".into())
        .spawn(move || {
            let mut docs = std::collections::HashMap::new();
            for job in jobs_rx {
                match job {
                    PdfJob::Open {
                        bytes,
                        limits,
                        reply,
                    } => {
                        // Ids are unique across restarts: a reader that lost its
                        // thread closes its old id on the new one, harmlessly.
                        let id = DOC_IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let opened = open_pdf(pdfium, bytes, &limits).map(|(doc, count)| {
                            docs.insert(id, doc);
                            (id, count)
                        });
                        let _ = reply.send(opened);
                    }
                    PdfJob::Render {
                        doc,
                        index,
                        limits,
                        reply,
                    } => {
                        let page = match docs.get(&doc) {
                            Some(d) => render_page(d, index, &limits),
                            None => Err(DecodeError::PdfUnavailable("document not open".into())),
                        };
                        let _ = reply.send(page);
                    }
                    PdfJob::Close { doc } => {
                        docs.remove(&doc);
                    }
                    PdfJob::Crash => panic!("PDF renderer crash requested by a test"),
                }
            }
        })
        .expect("spawn pdfium thread");
    jobs_tx
}

/// Opens a PDF and checks the limits every page must meet before any page
/// is rendered; returns the page count the document declares.
fn open_pdf<'p>(
    pdfium: &'p pdfium_render::prelude::Pdfium,
    bytes: Vec<u8>,
    limits: &DecodeLimits,
) -> Result<(pdfium_render::prelude::PdfDocument<'p>, usize), DecodeError> {
    use pdfium_render::prelude::PdfPageIndex;
    let doc = pdfium
        .load_pdf_from_byte_vec(bytes, None)
        .map_err(|e| DecodeError::Corrupt {
            format: ScanFormat::Pdf,
            detail: e.to_string(),
        })?;
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
    for i in 0..count {
        // A page whose size cannot be read is damaged: it becomes that
        // page's fault when it is rendered.
        if let Ok(size) = doc.pages().page_size(i as PdfPageIndex) {
            let (w, h) = (size.width().value * scale, size.height().value * scale);
            if let Some(e) = too_many_pixels(ScanFormat::Pdf, w as u32, h as u32, limits) {
                return Err(e);
            }
        }
    }
    Ok((doc, count))
}

fn render_page(
    doc: &pdfium_render::prelude::PdfDocument<'_>,
    index: usize,
    limits: &DecodeLimits,
) -> Result<GrayImage, DecodeError> {
    use pdfium_render::prelude::*;
    let corrupt = |e: PdfiumError| DecodeError::Corrupt {
        format: ScanFormat::Pdf,
        detail: format!("page {}: {e}", index + 1),
    };
    let page = doc.pages().get(index as PdfPageIndex).map_err(corrupt)?;
    let scale = limits.pdf_dpi / 72.0;
    let (w, h) = (page.width().value * scale, page.height().value * scale);
    if let Some(e) = too_many_pixels(ScanFormat::Pdf, w as u32, h as u32, limits) {
        return Err(e);
    }
    let config = PdfRenderConfig::new()
        .scale_page_by_factor(scale)
        .use_grayscale_rendering(true)
        .render_form_data(false);
    let bitmap = page.render_with_config(&config).map_err(corrupt)?;
    Ok(bitmap.as_image().map_err(corrupt)?.into_luma8())
}

/// The shipped pdfium when `todoke.toml` names none (order in `paths`).
pub fn pdfium_library_path() -> PathBuf {
    crate::paths::locate(crate::paths::Asset::Pdfium, None).path
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
            jobs: std::sync::Mutex::new(None),
            unavailable: Some("not in this test".into()),
            restarts: Default::default(),
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

    /// Issue 15, item 6: each of these was taken as complete before, and
    /// read early (the JPEG half grey, the TIFF's page 2 lost, the PDF's
    /// update missed).
    #[test]
    fn a_file_is_complete_only_at_its_real_end() {
        // A JPEG whose EXIF thumbnail (a JPEG, EOI and all) sits in APP1.
        let jpeg = |w, h| {
            let img = GrayImage::from_fn(w, h, |x, y| image::Luma([((x * 3 + y) % 256) as u8]));
            let mut b = Vec::new();
            img.write_to(&mut Cursor::new(&mut b), ImageFormat::Jpeg)
                .unwrap();
            b
        };
        let (main, thumb) = (jpeg(400, 300), jpeg(16, 12));
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&thumb);
        let mut file = main[..2].to_vec();
        file.extend_from_slice(&[0xFF, 0xE1]);
        file.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        file.extend_from_slice(&app1);
        let thumb_end = file.len();
        file.extend_from_slice(&main[2..]);
        assert!(looks_complete(&file));
        assert_eq!(
            decode(&file, &DecodeLimits::default(), &no_pdf())
                .unwrap()
                .len(),
            1
        );
        assert!(
            !looks_complete(&file[..thumb_end]),
            "cut after the thumbnail"
        );
        assert!(!looks_complete(&file[..thumb_end + 600]));
        assert!(!looks_complete(&file[..file.len() - 2]));

        // A PDF with an incremental update being appended.
        let pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n".to_vec();
        assert!(looks_complete(&pdf));
        let mut updating = pdf.clone();
        updating.extend_from_slice(b"2 0 obj<< /Type /Page >>endobj\n");
        assert!(!looks_complete(&updating), "taken after the first %%EOF");
        updating.extend_from_slice(b"trailer<< /Prev 9 >>\n%%EOF\r\n");
        assert!(looks_complete(&updating));

        // A TIFF written page by page: page 1 done, page 2's strip being
        // appended before page 1's directory is linked to page 2's.
        let mut tiff = Vec::new();
        GrayImage::from_fn(240, 320, |x, y| image::Luma([((x ^ y) % 251) as u8]))
            .write_to(&mut Cursor::new(&mut tiff), ImageFormat::Tiff)
            .unwrap();
        assert!(looks_complete(&tiff));
        let mut appending = tiff.clone();
        appending.extend_from_slice(&[0x55; 3000]);
        assert!(!looks_complete(&appending), "page 2 on its way");
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
