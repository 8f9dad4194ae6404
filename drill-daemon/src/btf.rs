//! One enum's members read straight from a kernel BTF blob. The drop probe needs the
//! names of `enum skb_drop_reason` (their numbers differ between kernels); a general
//! BTF parser (btf-rs, still the fallback) builds every type of the 5 MB vmlinux BTF
//! first, ~300 ms here, which a drill start that names a drop reason had to wait for.
//! This scan walks the type section once, skipping each type by the size its kind
//! gives (the format: linux/Documentation/bpf/btf.rst), and returns `None` on anything
//! it does not know, so the caller falls back to the full parser.

use std::collections::BTreeMap;

const MAGIC: u16 = 0xeb9f;
const KIND_ENUM: u32 = 6;

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn str_at(strings: &[u8], off: u32) -> Option<&str> {
    let s = strings.get(off as usize..)?;
    std::str::from_utf8(&s[..s.iter().position(|&c| c == 0)?]).ok()
}

/// Bytes that follow a type's 12-byte header, by kind; `None` for a kind this scan
/// does not know.
fn trailing(kind: u32, vlen: usize) -> Option<usize> {
    Some(match kind {
        1 | 14 | 17 => 4,          // int, var, decl_tag
        2 | 7..=12 | 16 | 18 => 0, // ptr, fwd, typedef, volatile, const, restrict, func, float, type_tag
        3 => 12,                   // array
        4 | 5 | 15 => 12 * vlen,   // struct, union, datasec
        6 | 13 => 8 * vlen,        // enum, func_proto
        19 => 12 * vlen,           // enum64
        _ => return None,
    })
}

/// The members (value -> name) of the 32-bit enum `name` in a little-endian BTF blob.
pub fn enum_members(blob: &[u8], name: &str) -> Option<BTreeMap<u32, String>> {
    if u16::from_le_bytes(blob.get(0..2)?.try_into().ok()?) != MAGIC {
        return None;
    }
    let hdr_len = u32_at(blob, 4)? as usize;
    let (type_off, type_len, str_off, str_len) = (u32_at(blob, 8)? as usize, u32_at(blob, 12)? as usize, u32_at(blob, 16)? as usize, u32_at(blob, 20)? as usize);
    let types = blob.get(hdr_len + type_off..hdr_len + type_off + type_len)?;
    let strings = blob.get(hdr_len + str_off..hdr_len + str_off + str_len)?;
    let mut off = 0;
    while off + 12 <= types.len() {
        let (name_off, info) = (u32_at(types, off)?, u32_at(types, off + 4)?);
        let (kind, vlen) = ((info >> 24) & 0x1f, (info & 0xffff) as usize);
        let body = off + 12;
        if kind == KIND_ENUM && str_at(strings, name_off) == Some(name) {
            let mut m = BTreeMap::new();
            for i in 0..vlen {
                let at = body + 8 * i;
                m.insert(u32_at(types, at + 4)?, str_at(strings, u32_at(types, at)?)?.to_string());
            }
            return Some(m);
        }
        off = body + trailing(kind, vlen)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A blob with an int, a struct of two members, and the enum.
    fn blob() -> Vec<u8> {
        let strings = b"\0int\0s\0a\0b\0skb_drop_reason\0SKB_DROP_REASON_NOT_SPECIFIED\0SKB_DROP_REASON_NETFILTER_DROP\0";
        let pos = |s: &str| strings.windows(s.len() + 1).position(|w| &w[..s.len()] == s.as_bytes() && w[s.len()] == 0).unwrap() as u32;
        let mut t = Vec::new();
        let mut push = |v: &[u32]| v.iter().for_each(|x| t.extend(x.to_le_bytes()));
        push(&[pos("int"), 1 << 24, 4, 0x20]); // int: one trailing u32
        push(&[pos("s"), 4 << 24 | 2, 8, pos("a"), 1, 0, pos("b"), 1, 32]); // struct, 2 members
        push(&[pos("skb_drop_reason"), 6 << 24 | 2, 4, pos("SKB_DROP_REASON_NOT_SPECIFIED"), 2, pos("SKB_DROP_REASON_NETFILTER_DROP"), 9]);
        let mut b = Vec::new();
        b.extend(MAGIC.to_le_bytes());
        b.extend([1u8, 0]);
        for x in [24u32, 0, t.len() as u32, t.len() as u32, strings.len() as u32] {
            b.extend(x.to_le_bytes());
        }
        b.extend(&t);
        b.extend(strings);
        b
    }

    #[test]
    fn finds_the_enum_past_other_kinds() {
        let m = enum_members(&blob(), "skb_drop_reason").expect("found");
        assert_eq!(m.get(&2).map(String::as_str), Some("SKB_DROP_REASON_NOT_SPECIFIED"));
        assert_eq!(m.get(&9).map(String::as_str), Some("SKB_DROP_REASON_NETFILTER_DROP"));
        assert_eq!(enum_members(&blob(), "nope"), None);
        assert_eq!(enum_members(&blob()[..30], "skb_drop_reason"), None, "a truncated blob is not an answer");
    }

    #[test]
    fn agrees_with_the_full_parser_on_this_kernel() {
        let Ok(blob) = std::fs::read("/sys/kernel/btf/vmlinux") else {
            eprintln!("skipped: no /sys/kernel/btf/vmlinux on this machine");
            return;
        };
        let fast = enum_members(&blob, "skb_drop_reason").expect("the scan finds skb_drop_reason");
        let btf = btf_rs::Btf::from_bytes(&blob).expect("btf-rs parses it");
        let mut full = BTreeMap::new();
        for t in btf.resolve_types_by_name("skb_drop_reason").unwrap_or_default() {
            if let btf_rs::Type::Enum(e) = t {
                for m in &e.members {
                    full.insert(m.val(), btf.resolve_name(m).unwrap());
                }
            }
        }
        assert!(fast.len() > 10);
        assert_eq!(fast, full);
    }
}
