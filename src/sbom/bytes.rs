//! Bounds-checked integers at an offset, in either byte order: the one reader shared by the binary
//! formats the catalogers parse (ELF section headers, zip records, rpm headers, sqlite pages,
//! Berkeley DB and ndb pages). A read past the end, or an offset that overflows, is `None`, never a
//! panic: every input here may be hostile.

/// Byte order of a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    Little,
    Big,
}

/// The `n`-byte (1 to 8) unsigned integer at `at` in `b`.
pub fn uint(b: &[u8], at: usize, n: usize, order: Order) -> Option<u64> {
    let bytes = b.get(at..at.checked_add(n)?)?;
    (1..=8).contains(&n).then(|| {
        bytes.iter().enumerate().fold(0u64, |acc, (i, &x)| {
            let shift = match order {
                Order::Little => 8 * i,
                Order::Big => 8 * (n - 1 - i),
            };
            acc | (u64::from(x) << shift)
        })
    })
}

/// A little-endian `u16` at `at`.
pub fn u16_le(b: &[u8], at: usize) -> Option<u16> {
    uint(b, at, 2, Order::Little).map(|v| v as u16)
}

/// A little-endian `u32` at `at`.
pub fn u32_le(b: &[u8], at: usize) -> Option<u32> {
    uint(b, at, 4, Order::Little).map(|v| v as u32)
}

/// A big-endian `u16` at `at`.
pub fn u16_be(b: &[u8], at: usize) -> Option<u16> {
    uint(b, at, 2, Order::Big).map(|v| v as u16)
}

/// A big-endian `u32` at `at`.
pub fn u32_be(b: &[u8], at: usize) -> Option<u32> {
    uint(b, at, 4, Order::Big).map(|v| v as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_orders_and_every_edge_is_none_not_a_panic() {
        let b = [0x01, 0x02, 0x03, 0x04, 0x05];
        assert_eq!(u16_le(&b, 0), Some(0x0201));
        assert_eq!(u16_be(&b, 0), Some(0x0102));
        assert_eq!(u32_le(&b, 1), Some(0x0504_0302));
        assert_eq!(u32_be(&b, 1), Some(0x0203_0405));
        assert_eq!(uint(&b, 0, 5, Order::Big), Some(0x01_0203_0405));
        assert_eq!(u32_be(&b, 2), None, "past the end");
        assert_eq!(u16_le(&b, usize::MAX), None, "an offset that overflows");
        assert_eq!(uint(&b, 0, 0, Order::Little), None);
        assert_eq!(uint(&[0; 9], 0, 9, Order::Little), None);
    }
}
