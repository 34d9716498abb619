//! An order-preserving text encoding of a decimal, for SQLite, which has
//! no exact numeric type: comparing two keys as byte strings gives the
//! order of the decimals, so `MinCost`/`MaxCost` compare exactly.
//!
//! A non-negative value is `P`, the number of integer digits as two
//! digits, the integer digits without leading zeros, `.`, and the
//! fraction digits without trailing zeros: more integer digits sort
//! later, then the digits decide. A negative value is `N` (before `P`),
//! then the same of its magnitude with every digit `d` written `9 - d`
//! (the length too) and `~` (after every digit) at the end, which turns
//! the order around.

use rust_decimal::Decimal;

/// The key of `d`.
pub(crate) fn cost_key(d: Decimal) -> String {
    let n = d.normalize();
    let text = n.abs().to_string();
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let int = int.trim_start_matches('0');
    let mut out = String::with_capacity(text.len() + 5);
    // A Decimal has at most 29 digits.
    let len = int.len().min(99);
    if n.is_sign_negative() && !n.is_zero() {
        let flip = |c: char| char::from(b'9' - (c as u8 - b'0'));
        out.push('N');
        out.push_str(&format!("{:02}", 99 - len));
        out.extend(int.chars().map(flip));
        out.push('.');
        out.extend(frac.chars().map(flip));
        out.push('~');
    } else {
        out.push('P');
        out.push_str(&format!("{len:02}"));
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    #[test]
    fn keys_sort_as_the_values() {
        let mut vals: Vec<Decimal> = [
            "0",
            "-0",
            "0.5",
            "0.51",
            "0.05",
            "1",
            "1.5",
            "10",
            "9.999",
            "-1",
            "-1.5",
            "-1.25",
            "-0.001",
            "0.001",
            "123456789012345678.9",
            "-123456789012345678.9",
            "0.0000000000000000000000000001",
            "-0.0000000000000000000000000001",
            "2.50",
        ]
        .iter()
        .map(|s| Decimal::from_str(s).unwrap())
        .collect();
        // And pseudo-random ones of every scale.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..2000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let m = i64::try_from(x >> 20).unwrap() - (1 << 43);
            let scale = u32::try_from((x >> 8) % 20).unwrap();
            vals.push(Decimal::new(m, scale));
        }
        for a in &vals {
            for b in vals.iter().take(60) {
                assert_eq!(
                    cost_key(*a).cmp(&cost_key(*b)),
                    a.cmp(b),
                    "{a} vs {b}: {} {}",
                    cost_key(*a),
                    cost_key(*b)
                );
            }
        }
        let mut by_key = vals.clone();
        by_key.sort_by_key(|d| cost_key(*d));
        let mut by_val = vals;
        by_val.sort();
        let norm = |v: Vec<Decimal>| v.iter().map(Decimal::normalize).collect::<Vec<_>>();
        assert_eq!(norm(by_key), norm(by_val));
    }
}
