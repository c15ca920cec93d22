//! CSV for spreadsheets: RFC 4180 (core's `push_csv_line`), with every cell a spreadsheet
//! would run as a formula neutralised. A cell starting with `=`, `+`, `-`, `@`, a tab or a
//! carriage return gets a single quote in front (OWASP "CSV injection"): names, aliases,
//! team names and commune labels come from people and tablets, and must stay text.

use std::borrow::Cow;

use repere_core::indicators::push_csv_line;

/// The first characters that make a spreadsheet read a cell as a formula.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// The cell as a spreadsheet will show it as text: a quote before a formula start.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(FORMULA_STARTS) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// Appends one line (neutralised cells, RFC 4180 quoting, CRLF).
pub fn push_line(out: &mut String, fields: &[String]) {
    let cells: Vec<String> = fields.iter().map(|f| neutralise(f).into_owned()).collect();
    push_csv_line(out, &cells);
}

/// The records of an RFC 4180 text (quoted fields may hold commas, quotes and line
/// breaks; lines end with CRLF, a bare LF is accepted too).
pub fn parse(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

/// A whole CSV text (such as core's `indicators::to_csv`) with its cells neutralised; a
/// text with nothing to neutralise comes back byte for byte.
pub fn neutralise_document(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for row in parse(text) {
        push_line(&mut out, &row);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_starts_get_a_quote_and_nothing_else_changes() {
        for (cell, shown) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+33 6 00 00 00 00", "'+33 6 00 00 00 00"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tTab", "'\tTab"),
            ("\rCR", "'\rCR"),
        ] {
            assert_eq!(neutralise(cell), shown);
        }
        for cell in [
            "",
            "Léa",
            "J-0a1b2c3d",
            "2025-01-31",
            "12",
            "a=b",
            " =x",
            "'=déjà",
        ] {
            assert_eq!(neutralise(cell), cell);
        }
    }

    #[test]
    fn lines_are_quoted_after_neutralising() {
        let mut out = String::new();
        push_line(
            &mut out,
            &[
                "=1+2".to_string(),
                "-1,5".to_string(),
                "dit \"Kéké\"".to_string(),
                "simple".to_string(),
            ],
        );
        assert_eq!(out, "'=1+2,\"'-1,5\",\"dit \"\"Kéké\"\"\",simple\r\n");
    }

    #[test]
    fn documents_round_trip_and_only_formulas_change() {
        let clean = "a,b,c\r\n\"CC Ardenne, Rives de Meuse\",\"deux\nlignes\",\"x\"\"y\"\r\n,,\r\n";
        assert_eq!(neutralise_document(clean), clean);
        assert_eq!(
            parse(clean)[1],
            ["CC Ardenne, Rives de Meuse", "deux\nlignes", "x\"y"]
        );
        let risky = "label,n\r\n=cmd|' /C calc'!A0,1\r\n\"@x, y\",2\r\n";
        assert_eq!(
            neutralise_document(risky),
            "label,n\r\n'=cmd|' /C calc'!A0,1\r\n\"'@x, y\",2\r\n"
        );
    }
}
