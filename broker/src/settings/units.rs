//! Value syntaxes shared by the command line and config files: sizes (`1GB`, `500MB`, `1024`),
//! Go-style durations (`1h30m`, `10s`, `250ms`) and Go-style booleans (`true`, `t`, `1`, …).

use std::time::Duration;

/// Parses a size: a plain integer or an integer with a NATS unit suffix (case-insensitive).
///
/// `k`, `m`, `g`, `t`, `p`, `e` are powers of 1000; `kb`/`ki`/`kib` (and the same for the other
/// letters) are powers of 1024. So `1GB` is 1073741824 and `1G` is 1000000000.
///
/// ```
/// use stan_broker::settings::units::parse_size;
/// assert_eq!(parse_size("1GB"), Ok(1 << 30));
/// assert_eq!(parse_size("500mb"), Ok(500 << 20));
/// assert_eq!(parse_size("2k"), Ok(2000));
/// assert_eq!(parse_size("1024"), Ok(1024));
/// assert!(parse_size("12 parsecs").is_err());
/// ```
pub fn parse_size(text: &str) -> Result<i64, String> {
    let s = text.trim();
    let digits_end = s
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && c == '-')))
        .map_or(s.len(), |(i, _)| i);
    let (num, suffix) = s.split_at(digits_end);
    let bad = || format!("invalid size {text:?} (expected a number like 1024, 500MB or 1GB)");
    let num: i64 = num.parse().map_err(|_| bad())?;
    let multiplier = size_multiplier(suffix).ok_or_else(bad)?;
    num.checked_mul(multiplier)
        .ok_or_else(|| format!("size {text:?} is out of range"))
}

/// The multiplier of a NATS size suffix (`""` is 1), or `None` if the suffix is unknown.
pub(crate) fn size_multiplier(suffix: &str) -> Option<i64> {
    let suffix = suffix.trim().to_ascii_lowercase();
    if suffix.is_empty() {
        return Some(1);
    }
    let mut chars = suffix.chars();
    let letter = chars.next()?;
    let rest: String = chars.collect();
    let power = match letter {
        'k' => 1,
        'm' => 2,
        'g' => 3,
        't' => 4,
        'p' => 5,
        'e' => 6,
        _ => return None,
    };
    let base: i64 = match rest.as_str() {
        "" => 1000,
        "b" | "i" | "ib" => 1024,
        _ => return None,
    };
    Some(base.pow(power))
}

/// Parses a Go duration (`300ms`, `-1.5h`, `2h45m`, `0`); negative durations are rejected.
///
/// Units: `ns`, `us` (`µs`), `ms`, `s`, `m`, `h`. A bare `0` is zero; other numbers need a unit.
///
/// ```
/// use std::time::Duration;
/// use stan_broker::settings::units::parse_go_duration;
/// assert_eq!(parse_go_duration("1h30m"), Ok(Duration::from_secs(5400)));
/// assert_eq!(parse_go_duration("1.5s"), Ok(Duration::from_millis(1500)));
/// assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
/// assert!(parse_go_duration("10").is_err());
/// assert!(parse_go_duration("-1s").is_err());
/// ```
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?} (expected e.g. 10s, 1h30m, 500ms)");
    let mut s = text.trim();
    let mut negative = false;
    if let Some(rest) = s.strip_prefix('-') {
        negative = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let int_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (int_part, after) = rest.split_at(int_end);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(a) => {
                let end = a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len());
                a.split_at(end)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(bad());
        }
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_end);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3600 * 1_000_000_000,
            _ => return Err(bad()),
        };
        let int_value: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| bad())?
        };
        let mut nanos = int_value.checked_mul(unit_nanos).ok_or_else(bad)?;
        if !frac_part.is_empty() {
            // Keep at most 18 fractional digits; more cannot change the nanosecond result.
            let frac = &frac_part[..frac_part.len().min(18)];
            let scale = 10u128.pow(frac.len() as u32);
            let frac_value: u128 = frac.parse().map_err(|_| bad())?;
            nanos = nanos
                .checked_add(frac_value * unit_nanos / scale)
                .ok_or_else(bad)?;
        }
        total = total.checked_add(nanos).ok_or_else(bad)?;
        if total > i64::MAX as u128 {
            return Err(format!("duration {text:?} is out of range"));
        }
        rest = after;
    }
    if negative && total > 0 {
        return Err(format!(
            "invalid duration {text:?}: negative durations are not allowed"
        ));
    }
    Ok(Duration::from_nanos(total as u64))
}

/// Parses a Go boolean: `1`, `t`, `T`, `TRUE`, `true`, `True` and the `false` forms.
///
/// ```
/// use stan_broker::settings::units::parse_go_bool;
/// assert_eq!(parse_go_bool("T"), Ok(true));
/// assert_eq!(parse_go_bool("0"), Ok(false));
/// assert!(parse_go_bool("yes").is_err());
/// ```
pub fn parse_go_bool(text: &str) -> Result<bool, String> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("invalid boolean {text:?} (expected true or false)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("1KB"), Ok(1024));
        assert_eq!(parse_size("1k"), Ok(1000));
        assert_eq!(parse_size("1KiB"), Ok(1024));
        assert_eq!(parse_size("3m"), Ok(3_000_000));
        assert_eq!(parse_size("1GB"), Ok(1 << 30));
        assert_eq!(parse_size("1g"), Ok(1_000_000_000));
        assert_eq!(parse_size("2TB"), Ok(2 << 40));
        assert_eq!(parse_size("1024000000"), Ok(1_024_000_000));
        assert_eq!(parse_size("-1"), Ok(-1));
        for bad in [
            "",
            "GB",
            "1.5GB",
            "1XB",
            "1 G B",
            "1GBB",
            "abc",
            "99999999999EB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn durations() {
        let d = parse_go_duration;
        assert_eq!(d("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(d("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(d("2h45m"), Ok(Duration::from_secs(2 * 3600 + 45 * 60)));
        assert_eq!(d("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(d("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(d(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(d("10us"), Ok(Duration::from_micros(10)));
        assert_eq!(d("10µs"), Ok(Duration::from_micros(10)));
        assert_eq!(d("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(d("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(d("-0s"), Ok(Duration::ZERO));
        assert_eq!(d("+5s"), Ok(Duration::from_secs(5)));
        for bad in [
            "",
            "10",
            "1d",
            "s",
            "1h-5m",
            "abc",
            "1.2.3s",
            "-3s",
            "9999999999h",
            "340282366920938463463374607431768211455.9ns",
            "94000000000000000000000000.99999h",
            "99999999999999999999999999999999999999999s",
        ] {
            assert!(d(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn booleans() {
        for t in ["1", "t", "T", "true", "TRUE", "True"] {
            assert_eq!(parse_go_bool(t), Ok(true));
        }
        for f in ["0", "f", "F", "false", "FALSE", "False"] {
            assert_eq!(parse_go_bool(f), Ok(false));
        }
        assert!(parse_go_bool("tRuE").is_err());
        assert!(parse_go_bool("").is_err());
    }
}
