//! Shared validation rules. Device clocks drift, so "in the future" allows a tolerance.

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, Utc};

use crate::communes::Communes;
use crate::error::{Problem, ValidationErrors};

/// How far ahead of the device clock a date may be before it counts as "in the future".
pub const FUTURE_TOLERANCE: Duration = Duration::days(1);
/// Nothing in Repère predates this; older dates are typing mistakes.
pub const EARLIEST_DATE: NaiveDate = match NaiveDate::from_ymd_opt(2000, 1, 1) {
    Some(d) => d,
    None => panic!("valid constant date"),
};

pub const NAME_MAX: usize = 80;
pub const SHORT_TEXT_MAX: usize = 500;
pub const NOTES_MAX: usize = 20_000;

/// What validation needs from the outside world.
pub struct ValidationContext<'a> {
    pub now: DateTime<Utc>,
    pub communes: &'a Communes,
}

impl ValidationContext<'_> {
    pub fn today(&self) -> NaiveDate {
        self.now.date_naive()
    }

    pub fn check_past_date(&self, errs: &mut ValidationErrors, field: &'static str, d: NaiveDate) {
        if d > (self.now + FUTURE_TOLERANCE).date_naive() {
            errs.push(field, Problem::InFuture);
        } else if d < EARLIEST_DATE {
            errs.push(field, Problem::TooOld);
        }
    }

    pub fn check_past_instant(
        &self,
        errs: &mut ValidationErrors,
        field: &'static str,
        t: &DateTime<FixedOffset>,
    ) {
        if t.with_timezone(&Utc) > self.now + FUTURE_TOLERANCE {
            errs.push(field, Problem::InFuture);
        } else if t.date_naive() < EARLIEST_DATE {
            errs.push(field, Problem::TooOld);
        }
    }

    pub fn check_commune(&self, errs: &mut ValidationErrors, field: &'static str, code: &str) {
        if self.communes.get(code).is_none() {
            errs.push(field, Problem::UnknownCommune);
        }
    }
}

/// Length in characters (what a person counts), not bytes.
pub fn check_text(
    errs: &mut ValidationErrors,
    field: &'static str,
    text: &str,
    max: usize,
    required: bool,
) {
    if text.trim().is_empty() {
        if required {
            errs.push(field, Problem::Empty);
        }
    } else if text.chars().count() > max {
        errs.push(field, Problem::TooLong { max });
    } else if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        errs.push(field, Problem::BadFormat);
    }
}

pub fn check_opt_text(
    errs: &mut ValidationErrors,
    field: &'static str,
    text: &Option<String>,
    max: usize,
) {
    if let Some(t) = text {
        check_text(errs, field, t, max, true);
    }
}

/// A French or international phone number: digits with optional spaces, dots, dashes, leading +.
pub fn check_phone(errs: &mut ValidationErrors, field: &'static str, phone: &str) {
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    let allowed = phone
        .char_indices()
        .all(|(i, c)| c.is_ascii_digit() || " .-()".contains(c) || (c == '+' && i == 0));
    if !allowed || !(6..=15).contains(&digits) {
        errs.push(field, Problem::BadFormat);
    }
}

pub fn check_email(errs: &mut ValidationErrors, field: &'static str, email: &str) {
    let ok = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if !ok {
        errs.push(field, Problem::BadFormat);
    }
}
