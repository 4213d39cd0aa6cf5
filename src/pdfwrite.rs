//! A minimal PDF writer: one full-page image per page, nothing else.
//!
//! Enough for printable blanks and for synthetic multi-page scans, which is
//! all that scanners produce anyway. Hand-written so that no PDF library is
//! needed just to wrap images.

use flate2::write::ZlibEncoder;
use flate2::Compression;
use image::GrayImage;
use std::io::{self, Write};

/// How a page's image is stored.
#[derive(Debug, Clone)]
pub enum PdfImage {
    /// A baseline JPEG file, stored as is (DCTDecode); 1 component = gray,
    /// 3 = RGB.
    Jpeg {
        data: Vec<u8>,
        width: u32,
        height: u32,
        components: u8,
    },
    /// 8-bit gray pixels, Flate-compressed on writing; lossless, and small
    /// for line art such as a blank form.
    Gray(GrayImage),
}

#[derive(Debug, Clone)]
pub struct PdfPage {
    pub width_pt: f64,
    pub height_pt: f64,
    pub image: PdfImage,
}

impl PdfPage {
    /// A page whose size follows from the image's pixels at `dpi`.
    pub fn gray(image: GrayImage, dpi: f64) -> PdfPage {
        PdfPage {
            width_pt: image.width() as f64 * 72.0 / dpi,
            height_pt: image.height() as f64 * 72.0 / dpi,
            image: PdfImage::Gray(image),
        }
    }

    /// A gray page stored as JPEG at `quality` (1–100).
    pub fn gray_jpeg(image: &GrayImage, dpi: f64, quality: u8) -> io::Result<PdfPage> {
        let mut data = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut data, quality)
            .encode_image(image)
            .map_err(io::Error::other)?;
        Ok(PdfPage {
            width_pt: image.width() as f64 * 72.0 / dpi,
            height_pt: image.height() as f64 * 72.0 / dpi,
            image: PdfImage::Jpeg {
                data,
                width: image.width(),
                height: image.height(),
                components: 1,
            },
        })
    }
}

/// Writes `pages` as one PDF. Object numbers: 1 catalog, 2 page tree, then
/// per page i: 3+3i page, 4+3i content stream, 5+3i image.
pub fn write_pdf(pages: &[PdfPage], out: &mut impl Write) -> io::Result<()> {
    let mut w = Counting { inner: out, pos: 0 };
    let mut offsets: Vec<u64> = Vec::new();
    w.write_all(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")?;

    offsets.push(w.pos);
    w.write_all(b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n")?;

    offsets.push(w.pos);
    let kids: Vec<String> = (0..pages.len())
        .map(|i| format!("{} 0 R", 3 + 3 * i))
        .collect();
    write!(
        w,
        "2 0 obj\n<< /Type /Pages /Kids [{}] /Count {} >>\nendobj\n",
        kids.join(" "),
        pages.len()
    )?;

    for (i, page) in pages.iter().enumerate() {
        let (page_obj, content_obj, image_obj) = (3 + 3 * i, 4 + 3 * i, 5 + 3 * i);
        let (pw, ph) = (num(page.width_pt), num(page.height_pt));

        offsets.push(w.pos);
        write!(
            w,
            "{page_obj} 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {pw} {ph}] \
             /Resources << /XObject << /Im0 {image_obj} 0 R >> >> /Contents {content_obj} 0 R >>\nendobj\n"
        )?;

        let content = format!("q {pw} 0 0 {ph} 0 0 cm /Im0 Do Q\n");
        offsets.push(w.pos);
        write!(
            w,
            "{content_obj} 0 obj\n<< /Length {} >>\nstream\n{content}endstream\nendobj\n",
            content.len()
        )?;

        offsets.push(w.pos);
        match &page.image {
            PdfImage::Jpeg {
                data,
                width,
                height,
                components,
            } => {
                let cs = if *components == 1 {
                    "/DeviceGray"
                } else {
                    "/DeviceRGB"
                };
                write!(
                    w,
                    "{image_obj} 0 obj\n<< /Type /XObject /Subtype /Image /Width {width} /Height {height} \
                     /ColorSpace {cs} /BitsPerComponent 8 /Filter /DCTDecode /Length {} >>\nstream\n",
                    data.len()
                )?;
                w.write_all(data)?;
            }
            PdfImage::Gray(img) => {
                let mut z = ZlibEncoder::new(Vec::new(), Compression::best());
                z.write_all(img.as_raw())?;
                let data = z.finish()?;
                write!(
                    w,
                    "{image_obj} 0 obj\n<< /Type /XObject /Subtype /Image /Width {} /Height {} \
                     /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode /Length {} >>\nstream\n",
                    img.width(),
                    img.height(),
                    data.len()
                )?;
                w.write_all(&data)?;
            }
        }
        w.write_all(b"\nendstream\nendobj\n")?;
    }

    let xref = w.pos;
    writeln!(w, "xref\n0 {}\n0000000000 65535 f ", offsets.len() + 1)?;
    for o in &offsets {
        // Each xref entry is exactly 20 bytes, hence the two-character EOL.
        writeln!(w, "{o:010} 00000 n ")?;
    }
    write!(
        w,
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        offsets.len() + 1
    )?;
    w.flush()
}

fn num(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Tracks the byte offset for the cross-reference table.
struct Counting<'a, W: Write> {
    inner: &'a mut W,
    pos: u64,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xref_offsets_point_at_objects() {
        let img = GrayImage::from_pixel(20, 30, image::Luma([200]));
        let pages = vec![
            PdfPage::gray(img.clone(), 72.0),
            PdfPage::gray_jpeg(&img, 72.0, 85).unwrap(),
        ];
        let mut buf = Vec::new();
        write_pdf(&pages, &mut buf).unwrap();
        let text = String::from_utf8_lossy(&buf);
        let start: usize = text
            .rsplit("startxref\n")
            .next()
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(buf[start..].starts_with(b"xref"));
        let tail = std::str::from_utf8(&buf[start..]).unwrap();
        let entries: Vec<usize> = tail
            .lines()
            .skip(3)
            .take(8)
            .map(|l| l[..10].parse().unwrap())
            .collect();
        for (i, off) in entries.iter().enumerate() {
            let head = format!("{} 0 obj", i + 1);
            assert!(buf[*off..].starts_with(head.as_bytes()), "object {}", i + 1);
        }
        assert!(text.contains("/Count 2"));
        assert!(text.contains("/MediaBox [0 0 20 30]"));
    }
}
