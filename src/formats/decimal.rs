//! Decimal numbers read straight from bytes, in JSON's grammar (`-?int(.frac)?(e±exp)?`, no
//! leading zeros, no `+`): the cell parser of the two cube formats, JSON-stat's `value` array
//! and PX's DATA block, where a table's millions of cells make the standard parser the cost.
//!
//! Owns: the fast path and its agreement with the standard parser.
//! Must not: know a format's separators or markers (the callers find where a number starts).

/// Exact powers of ten as f64 (10^22 is the last one a double holds exactly).
const POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The JSON number starting at `bytes[start]`, and the position after it; `None` where no
/// JSON number starts there or it is beyond a double.
pub fn number(bytes: &[u8], start: usize) -> Option<(f64, usize)> {
    let digits_from = |mut pos: usize, mantissa: &mut u64| {
        while let Some(&b) = bytes.get(pos).filter(|b| b.is_ascii_digit()) {
            *mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
            pos += 1;
        }
        pos
    };
    let negative = bytes.get(start) == Some(&b'-');
    let int_start = start + usize::from(negative);
    let mut mantissa = 0u64;
    let mut pos = digits_from(int_start, &mut mantissa);
    let int_digits = pos - int_start;
    if int_digits == 0 || (int_digits > 1 && bytes[int_start] == b'0') {
        return None;
    }
    let mut fraction_digits = 0;
    if bytes.get(pos) == Some(&b'.') {
        let fraction_start = pos + 1;
        pos = digits_from(fraction_start, &mut mantissa);
        fraction_digits = pos - fraction_start;
        if fraction_digits == 0 {
            return None;
        }
    }
    let mut exponent = false;
    if let Some(b'e' | b'E') = bytes.get(pos) {
        pos += 1;
        if let Some(b'+' | b'-') = bytes.get(pos) {
            pos += 1;
        }
        let exponent_start = pos;
        pos = digits_from(exponent_start, &mut 0);
        if pos == exponent_start {
            return None;
        }
        exponent = true;
    }
    // Clinger's fast path: a mantissa a double holds exactly, divided by an exact power of
    // ten, is correctly rounded. Longer numbers and exponents go to the standard parser.
    if !exponent
        && int_digits + fraction_digits <= 19
        && mantissa <= 1 << 53
        && fraction_digits < POWERS_OF_TEN.len()
    {
        // Integers skip the division: it costs more than the rest of the parse.
        let value = match fraction_digits {
            // Through i64: one instruction on x86-64, where u64 → f64 takes a branch.
            0 => mantissa as i64 as f64,
            n => mantissa as i64 as f64 / POWERS_OF_TEN[n],
        };
        return Some((if negative { -value } else { value }, pos));
    }
    let text = std::str::from_utf8(&bytes[start..pos]).ok()?;
    // `1e999` parses as infinity: no figure, so callers refuse it with its place.
    let value: f64 = text.parse().ok()?;
    Some((value.is_finite().then_some(value)?, pos))
}

#[cfg(test)]
mod tests {
    use super::number;

    proptest::proptest! {
        #[test]
        fn fast_number_parser_agrees_with_the_standard_parser(
            negative in proptest::bool::ANY,
            int in "0|[1-9][0-9]{0,22}",
            fraction in proptest::option::of("[0-9]{1,22}"),
            exponent in proptest::option::of(-320i32..320),
        ) {
            let mut text = format!("{}{int}", if negative { "-" } else { "" });
            if let Some(fraction) = fraction {
                text.push('.');
                text.push_str(&fraction);
            }
            if let Some(exponent) = exponent {
                text.push_str(&format!("e{exponent}"));
            }
            let standard = text.parse::<f64>().unwrap();
            match number(text.as_bytes(), 0) {
                Some((value, end)) => {
                    proptest::prop_assert_eq!(end, text.len());
                    proptest::prop_assert_eq!(value.to_bits(), standard.to_bits());
                }
                // Beyond a double: no figure, refused (the standard parser says infinity).
                None => proptest::prop_assert!(standard.is_infinite(), "{text}"),
            }
        }
    }
}
