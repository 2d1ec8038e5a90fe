//! Reading a provider's "come back later" hint: `retry-after-ms`
//! (milliseconds, fractional allowed; OpenAI and Anthropic send it) wins over
//! `retry-after` (whole seconds, or an HTTP date). Bad values are ignored,
//! never an error; hints are capped at one day.

use std::time::{Duration, SystemTime};

use http::HeaderMap;

/// Longest hint believed: one day.
const MAX_HINT: Duration = Duration::from_secs(24 * 3600);

/// The delay a response asks for, if it names one. `now` is the wall
/// clock, used only for the HTTP-date form of `retry-after`.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = text("retry-after-ms").and_then(|s| s.parse::<f64>().ok()) {
        if ms.is_finite() && ms >= 0.0 {
            return Some(Duration::from_secs_f64(
                ms.min(MAX_HINT.as_millis() as f64) / 1000.0,
            ));
        }
    }
    let v = text("retry-after")?;
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(MAX_HINT));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_HINT),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint(pairs: &[(&'static str, &'static str)]) -> Option<Duration> {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        let now = httpdate::parse_http_date("Wed, 02 Dec 2026 01:00:00 GMT").unwrap();
        retry_after(&h, now)
    }

    #[test]
    fn each_form_is_read() {
        assert_eq!(hint(&[]), None);
        assert_eq!(hint(&[("retry-after", "3")]), Some(Duration::from_secs(3)));
        assert_eq!(
            hint(&[("retry-after-ms", "1500.5")]),
            Some(Duration::from_micros(1_500_500))
        );
        let both = [("retry-after", "30"), ("retry-after-ms", "250")];
        assert_eq!(hint(&both), Some(Duration::from_millis(250)));
        let date = [("retry-after", "Wed, 02 Dec 2026 01:00:07 GMT")];
        assert_eq!(hint(&date), Some(Duration::from_secs(7)));
        let past = [("retry-after", "Wed, 02 Dec 2026 00:59:00 GMT")];
        assert_eq!(hint(&past), Some(Duration::ZERO));
    }

    #[test]
    fn bad_values_are_ignored_and_huge_ones_capped() {
        assert_eq!(hint(&[("retry-after", "soon")]), None);
        assert_eq!(hint(&[("retry-after-ms", "-5")]), None);
        assert_eq!(
            hint(&[("retry-after-ms", "NaN"), ("retry-after", "2")]),
            Some(Duration::from_secs(2))
        );
        assert_eq!(hint(&[("retry-after", "99999999999")]), Some(MAX_HINT));
        assert_eq!(hint(&[("retry-after-ms", "1e300")]), Some(MAX_HINT));
    }
}
