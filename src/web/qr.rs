//! QR codes as inline SVG (no image files, no script), from qrcodegen.

use maud::{Markup, html};
use qrcodegen::{QrCode, QrCodeEcc};

/// An SVG of `text` as a QR code with a 4-module quiet zone, or `None`
/// when it does not fit in a QR code.
pub fn svg(text: &str) -> Option<Markup> {
    let qr = QrCode::encode_text(text, QrCodeEcc::Medium).ok()?;
    let border = 4;
    let size = qr.size() + 2 * border;
    let mut path = String::new();
    for y in 0..qr.size() {
        for x in 0..qr.size() {
            if qr.get_module(x, y) {
                path += &format!("M{},{}h1v1h-1z", x + border, y + border);
            }
        }
    }
    // Elements in SVG are closed explicitly: HTML's parser knows no void
    // elements there.
    Some(html! {
        svg xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (size) " " (size) }
            shape-rendering="crispEdges" role="img" aria-label="QR code" {
            rect width="100%" height="100%" fill="#fff" {}
            path d=(path) fill="#000" {}
        }
    })
}
