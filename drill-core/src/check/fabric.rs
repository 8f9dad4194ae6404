//! `fabric-drops`: at most `max` frames dropped by a switch's fabric for being larger
//! than its `path_mtu` during the window (the switch's `fabric_mtu` classifier counts
//! them in its own namespace). The window fails when no frame crossed the switch at
//! all: a fabric that carried nothing proves nothing.

use super::{Check, Env, Kind, shape};
use crate::schema::{Entry, Key, Ty, key};

const KEYS: &[Key] = &[
    key("switch", Ty::Str, "\"underlay\"", "the switch whose fabric is watched (it must have a `path_mtu`)"),
    key("max", Ty::Int, "0", "most oversize frames tolerated (at least 0; default 0)").from(0.0, f64::INFINITY, "frames"),
];

pub const KIND: Kind = Kind { shape: shape("fabric-drops", KEYS), build };

fn build(e: &mut Entry, env: &Env) -> Option<Check> {
    let name = e.str("name").map(|n| n.into_inner());
    let max = e.int_opt("max");
    let Some(switch) = e.str("switch") else {
        e.need("a fabric-drops check needs `switch`", "name a [[switches]] table that has a path_mtu, e.g. switch = \"underlay\"");
        return None;
    };
    let seg = env.segments.iter().find(|s| s.switch.as_deref() == Some(switch.get_ref().as_str()));
    let Some(seg) = seg else {
        let known: Vec<&str> = env.segments.iter().filter_map(|s| s.switch.as_deref()).collect();
        let hint = if known.is_empty() { "the scenario has no [[switches]]: add one with a path_mtu".to_string() } else { format!("name one of the scenario's switches: {}", known.join(", ")) };
        e.err(switch.span(), format!("there is no switch `{}`", switch.get_ref()), hint);
        return None;
    };
    let Some(path_mtu) = seg.path_mtu else {
        e.err(switch.span(), format!("switch `{}` has no path_mtu, so its fabric drops nothing to count", switch.get_ref()), "give the switch a path_mtu (e.g. path_mtu = 1400), or remove this check");
        return None;
    };
    let Ok(max) = max else { return None };
    let max = max.map_or(0, i64::unsigned_abs);
    let name = name.unwrap_or_else(|| format!("at most {max} frames over {path_mtu} bytes dropped by switch {}", switch.get_ref()));
    Some(Check::FabricDrops { name, switch: switch.into_inner(), max })
}
