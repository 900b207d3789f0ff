//! Exact decimal amounts: prices, factors and USD figures are read from decimal strings
//! into scaled integers and written back the same way. No floating point anywhere.
//!
//! Units: a per-token price is held in femto-USD (1e-15 USD), so a price in USD per 1M
//! tokens may carry up to [`PRICE_DECIMALS`] fractional digits; a factor (1.10, 1.75,
//! 0.5) is held in units of 1e-4. Costs are summed in femto-USD and reported in pico-USD
//! (the `decimal(38,12)` column), rounded half to even only when a sub-pico remainder
//! exists (the row is then flagged `cost_rounded`).

/// Fractional digits of a price in USD per 1M tokens (1e-9 USD per 1M = 1e-15 USD per token).
pub const PRICE_DECIMALS: u32 = 9;
/// Most integer digits of a price in USD per 1M tokens (bounds every product below i128).
pub(crate) const PRICE_INT_DIGITS: usize = 6;
/// Fractional digits of a factor.
pub(crate) const FACTOR_DECIMALS: u32 = 4;
/// A factor of exactly 1.
pub const FACTOR_ONE: i128 = 10_000;
/// Largest factor accepted (100x).
pub const MAX_FACTOR: i128 = 100 * FACTOR_ONE;
/// Femto-USD per pico-USD.
pub const FEMTO_PER_PICO: i128 = 1_000;
/// Fractional digits of a USD amount in a row (`decimal(38,12)`).
pub(crate) const USD_DECIMALS: u32 = 12;
/// Fractional digits of a meter price in USD per 1,000 units (1e-12 USD per 1,000 units
/// = 1e-15 USD per unit).
pub(crate) const METER_DECIMALS: u32 = 12;

/// Parses a non-negative decimal string with at most `decimals` fractional digits and
/// `int_digits` integer digits into an integer scaled by 10^`decimals`.
pub(crate) fn parse_scaled(s: &str, decimals: u32, int_digits: usize) -> Result<i128, String> {
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() {
        return Err("empty number".into());
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{s}` is not a non-negative decimal number like \"0.06\""));
    }
    if frac.len() > decimals as usize {
        return Err(format!("`{s}` has more than {decimals} decimal places"));
    }
    let int = int.trim_start_matches('0');
    if int.len() > int_digits {
        return Err(format!("`{s}` is implausibly large"));
    }
    let int_v: i128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| format!("`{s}` is not a number"))?
    };
    let frac_v: i128 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| format!("`{s}` is not a number"))?
    };
    let scale = 10i128.pow(decimals);
    Ok(int_v * scale + frac_v * 10i128.pow(decimals - frac.len() as u32))
}

/// A price in USD per 1M tokens → femto-USD per token.
pub fn parse_price(s: &str) -> Result<i128, String> {
    parse_scaled(s, PRICE_DECIMALS, PRICE_INT_DIGITS)
}

/// A factor such as `1.10` → units of 1e-4, between 0 and [`MAX_FACTOR`].
pub fn parse_factor(s: &str) -> Result<i128, String> {
    let f = parse_scaled(s, FACTOR_DECIMALS, 3)?;
    if f > MAX_FACTOR {
        return Err(format!("`{s}` is larger than the largest factor, 100"));
    }
    Ok(f)
}

/// A USD amount (budget limits) → pico-USD.
pub fn parse_usd(s: &str) -> Result<i128, String> {
    parse_scaled(s, USD_DECIMALS, 15)
}

/// A meter price in USD per 1,000 units → femto-USD per unit.
pub(crate) fn parse_meter(s: &str) -> Result<i128, String> {
    parse_scaled(s, METER_DECIMALS, PRICE_INT_DIGITS)
}

/// Writes `v / 10^decimals` with trailing fractional zeros trimmed (at least `min_frac`
/// fractional digits kept).
pub(crate) fn format_scaled(v: i128, decimals: u32, min_frac: u32) -> String {
    let scale = 10u128.pow(decimals);
    let a = v.unsigned_abs();
    let mut out = String::with_capacity(24);
    if v < 0 {
        out.push('-');
    }
    // The integer part's digits without `to_string` (one allocation, not two).
    let mut int = a / scale;
    let mut int_digits = [b'0'; 40];
    let mut first = int_digits.len();
    loop {
        first -= 1;
        int_digits[first] = b'0' + (int % 10) as u8;
        int /= 10;
        if int == 0 {
            break;
        }
    }
    out.extend(int_digits[first..].iter().map(|&b| b as char));
    let mut digits = [b'0'; 38];
    let d = &mut digits[..decimals as usize];
    let frac = a % scale;
    match u64::try_from(frac) {
        // Below 10^decimals: a u64 for every scale this crate uses (divisions by 10 in
        // 64 bits, not 128).
        Ok(mut f) => {
            for x in d.iter_mut().rev() {
                *x = b'0' + (f % 10) as u8;
                f /= 10;
            }
        }
        Err(_) => {
            let mut f = frac;
            for x in d.iter_mut().rev() {
                *x = b'0' + (f % 10) as u8;
                f /= 10;
            }
        }
    }
    let mut end = decimals as usize;
    while end > min_frac as usize && d[end - 1] == b'0' {
        end -= 1;
    }
    if end > 0 {
        out.push('.');
        out.extend(d[..end].iter().map(|&b| b as char));
    }
    out
}

/// A per-token price in femto-USD as USD per 1M tokens (`3.3`, `0.000001`).
pub(crate) fn format_price(femto: i128) -> String {
    format_scaled(femto, PRICE_DECIMALS, 0)
}

/// A factor in units of 1e-4 (`1.1`, `0.5`).
pub(crate) fn format_factor(f: i128) -> String {
    format_scaled(f, FACTOR_DECIMALS, 0)
}

/// Femto-USD → pico-USD, rounding half to even; the flag tells whether it rounded.
pub(crate) fn femto_to_pico(femto: i128) -> (i128, bool) {
    let q = femto.div_euclid(FEMTO_PER_PICO);
    let r = femto.rem_euclid(FEMTO_PER_PICO);
    let half = FEMTO_PER_PICO / 2;
    let rounded = match r.cmp(&half) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q & 1),
    };
    (rounded, r != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_parse_exactly() {
        assert_eq!(parse_price("0.06").unwrap(), 60_000_000);
        assert_eq!(parse_price("3").unwrap(), 3_000_000_000);
        assert_eq!(parse_price("0.000000001").unwrap(), 1);
        assert_eq!(parse_price("007.5").unwrap(), 7_500_000_000);
        assert!(parse_price("0.0000000001").is_err());
        assert!(parse_price("-1").is_err());
        assert!(parse_price("1e-6").is_err());
        assert!(parse_price("").is_err());
        assert!(parse_price("1234567").is_err());
        assert_eq!(parse_factor("1.10").unwrap(), 11_000);
        assert_eq!(parse_factor("0.5").unwrap(), 5_000);
        assert!(parse_factor("101").is_err());
        assert!(parse_factor("1.00001").is_err());
        assert_eq!(parse_usd("50.00").unwrap(), 50_000_000_000_000);
        assert_eq!(parse_meter("0.15").unwrap(), 150_000_000_000);
    }

    #[test]
    fn formatting_equals_the_plain_rule_on_every_magnitude() {
        // The rule written plainly: integer part by `to_string`, then the trimmed fraction.
        fn plain(v: i128, decimals: u32, min_frac: u32) -> String {
            let scale = 10u128.pow(decimals);
            let a = v.unsigned_abs();
            let frac = format!("{:0w$}", a % scale, w = decimals as usize);
            let keep = frac.trim_end_matches('0').len().max(min_frac as usize);
            let sign = if v < 0 { "-" } else { "" };
            let dot = if keep > 0 { "." } else { "" };
            format!("{sign}{}{dot}{}", a / scale, &frac[..keep])
        }
        let mut v: i128 = 1;
        for _ in 0..38 {
            for x in [v, v - 1, v + 7, -v, v * 3 / 2, 0, i128::MAX, i128::MIN + 1] {
                for (d, m) in [(12, 6), (12, 0), (15, 6), (15, 0), (4, 0), (0, 0)] {
                    assert_eq!(format_scaled(x, d, m), plain(x, d, m), "{x} at {d}/{m}");
                }
            }
            v = v.saturating_mul(10);
        }
    }

    #[test]
    fn formats_and_rounds() {
        assert_eq!(format_price(3_300_000_000), "3.3");
        assert_eq!(format_price(1), "0.000000001");
        assert_eq!(format_price(0), "0");
        assert_eq!(format_factor(11_000), "1.1");
        assert_eq!(format_scaled(216_810_000_000, 12, 6), "0.216810");
        assert_eq!(format_scaled(216_810_000_000, 12, 0), "0.21681");
        assert_eq!(format_scaled(0, 12, 6), "0.000000");
        assert_eq!(format_scaled(-1, 12, 6), "-0.000000000001");
        assert_eq!(femto_to_pico(5_000), (5, false));
        assert_eq!(femto_to_pico(5_500), (6, true));
        assert_eq!(femto_to_pico(6_500), (6, true));
        assert_eq!(femto_to_pico(6_501), (7, true));
        assert_eq!(femto_to_pico(6_499), (6, true));
    }
}
