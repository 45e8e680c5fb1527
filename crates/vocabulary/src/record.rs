//! What a head file says of how it was trained, for the people who use it later: the published
//! app shows it beside the classes.

use serde::{Deserialize, Serialize};

/// A training run as its head file records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingRecord {
    /// The day training finished, UTC, as `YYYY-MM-DD`.
    pub date: String,
    pub training_photos: usize,
    pub validation_photos: usize,
    /// Share of the validation photos the kept weights classify right (none without them).
    pub validation_accuracy: Option<f64>,
}

/// The UTC day of a Unix time, as `YYYY-MM-DD` (the proleptic Gregorian calendar; Howard
/// Hinnant's `civil_from_days`, which is exact for every day a clock can read).
pub fn utc_date(unix_seconds: u64) -> String {
    let days = (unix_seconds / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::utc_date;

    #[test]
    fn unix_times_become_their_utc_day() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(86_399), "1970-01-01");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_date(1_709_164_800), "2024-02-29");
        assert_eq!(utc_date(1_796_601_599), "2026-12-06");
        assert_eq!(utc_date(4_107_542_400), "2100-03-01");
    }
}
