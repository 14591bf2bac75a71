//! Invoice PDFs: A4 pages with the standard Helvetica font (WinAnsi encoding covers Swedish),
//! written with `pdf-writer`. Content streams are left uncompressed, so the text is plain in
//! the file (tests read it back).

use pdf_writer::{Content, Name, Pdf, Rect, Ref, Str};

use super::invoicing::InvoiceView;

const LINES_PER_PAGE: usize = 28;

/// Formats minor units as Swedish kronor: `1 116,94 kr`.
pub fn kronor(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    let (whole, frac) = (abs / 100, abs % 100);
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(' ');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped},{frac:02} kr")
}

/// Encodes text for WinAnsiEncoding; characters outside it become '?'.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            '–' => 0x96,
            '—' => 0x97,
            '…' => 0x85,
            '€' => 0x80,
            c if (c as u32) < 0x80 || (0xA0..=0xFF).contains(&(c as u32)) => c as u32 as u8,
            _ => b'?',
        })
        .collect()
}

struct Page {
    content: Content,
    y: f32,
}

impl Page {
    fn new() -> Self {
        Page {
            content: Content::new(),
            y: 800.0,
        }
    }

    fn text(&mut self, x: f32, size: f32, font: &[u8], text: &str) {
        let bytes = win_ansi(text);
        self.content
            .begin_text()
            .set_font(Name(font), size)
            .next_line(x, self.y)
            .show(Str(&bytes))
            .end_text();
    }

    fn line(&mut self, size: f32, font: &[u8], text: &str) {
        self.text(50.0, size, font, text);
        self.y -= size + 6.0;
    }
}

/// Renders an invoice or credit note.
pub fn render(invoice: &InvoiceView) -> Vec<u8> {
    let mut pages = vec![Page::new()];
    let title = if invoice.kind == "credit_note" {
        "Kreditfaktura"
    } else {
        "Faktura"
    };
    let p = pages.last_mut().expect("one page");
    p.line(20.0, b"F2", &format!("{title} {}", invoice.number));
    p.line(
        10.0,
        b"F1",
        &format!("Fakturadatum: {}", invoice.issued_at.format("%Y-%m-%d")),
    );
    p.line(10.0, b"F1", &format!("Period: {}", invoice.period));
    if let Some(original) = invoice.credits_invoice_id {
        p.line(10.0, b"F1", &format!("Krediterar faktura id {original}"));
    }
    if let Some(note) = &invoice.note {
        p.line(10.0, b"F1", &format!("Anledning: {note}"));
    }
    p.y -= 8.0;
    p.line(11.0, b"F2", "Säljare");
    p.line(10.0, b"F1", &invoice.seller.name);
    p.line(10.0, b"F1", &invoice.seller.address);
    p.line(
        10.0,
        b"F1",
        &format!(
            "Org.nr {}  Momsreg.nr {}",
            invoice.seller.org_number, invoice.seller.vat_number
        ),
    );
    p.y -= 8.0;
    p.line(11.0, b"F2", "Köpare");
    p.line(10.0, b"F1", &invoice.buyer.name);
    if let Some(email) = &invoice.buyer.email {
        p.line(10.0, b"F1", email);
    }
    p.y -= 8.0;
    p.line(11.0, b"F2", "Laddsessioner (belopp exkl. moms)");
    for (i, l) in invoice.lines.iter().enumerate() {
        if i > 0 && i % LINES_PER_PAGE == 0 {
            pages.push(Page::new());
        }
        let p = pages.last_mut().expect("a page");
        p.line(9.0, b"F1", &l.description);
        let kwh = l.energy_wh as f64 / 1000.0;
        p.line(
            9.0,
            b"F1",
            &format!(
                "    {kwh:.3} kWh, laddning {} min, inaktiv {} min, moms {} %: {}",
                l.charging_seconds / 60,
                l.idle_seconds / 60,
                l.vat_rate,
                kronor(l.excl_vat)
            ),
        );
    }
    let p = pages.last_mut().expect("a page");
    p.y -= 8.0;
    p.line(
        10.0,
        b"F1",
        &format!("Summa exkl. moms: {}", kronor(invoice.amount.excl_vat)),
    );
    p.line(
        10.0,
        b"F1",
        &format!("Moms: {}", kronor(invoice.amount.vat)),
    );
    p.line(
        12.0,
        b"F2",
        &format!(
            "Att betala: {} ({})",
            kronor(invoice.amount.total),
            invoice.amount.currency
        ),
    );

    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(tree);
    let ids: Vec<(Ref, Ref)> = (0..pages.len())
        .map(|i| (Ref::new(5 + 2 * i as i32), Ref::new(6 + 2 * i as i32)))
        .collect();
    pdf.pages(tree)
        .kids(ids.iter().map(|(page, _)| *page))
        .count(pages.len() as i32);
    pdf.type1_font(regular)
        .base_font(Name(b"Helvetica"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold)
        .base_font(Name(b"Helvetica-Bold"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    for (page, (page_id, content_id)) in pages.into_iter().zip(ids) {
        let mut writer = pdf.page(page_id);
        writer
            .parent(tree)
            .media_box(Rect::new(0.0, 0.0, 595.0, 842.0))
            .contents(content_id);
        writer
            .resources()
            .fonts()
            .pair(Name(b"F1"), regular)
            .pair(Name(b"F2"), bold);
        drop(writer);
        let data = page.content.finish();
        pdf.stream(content_id, &data);
    }
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kronor_are_grouped_with_a_decimal_comma() {
        assert_eq!(kronor(111_694), "1 116,94 kr");
        assert_eq!(kronor(5), "0,05 kr");
        assert_eq!(kronor(-123_456_789), "-1 234 567,89 kr");
    }

    #[test]
    fn swedish_letters_are_win_ansi() {
        assert_eq!(
            win_ansi("Köpare å–"),
            vec![b'K', 0xF6, b'p', b'a', b'r', b'e', b' ', 0xE5, 0x96]
        );
    }
}
