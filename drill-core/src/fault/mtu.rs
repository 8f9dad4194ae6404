//! `mtu`: an interface's MTU lowered (or raised).

use super::{Env, Fault, Kind, common, shape};
use crate::schema::{Entry, Key, Ty, key};

const KEYS: &[Key] =
    &[common::HOST, common::INTERFACE, key("mtu", Ty::Int, "1280", "the interface's new MTU (68-65535)").from(68.0, 65535.0, "").says("mtu {} is out of range", "use an MTU between 68 and 65535")];

pub const KIND: Kind = Kind { shape: shape("mtu", KEYS), build };

fn build(e: &mut Entry, env: &Env) -> Option<Fault> {
    let host = common::host(e, env);
    let (iface, m) = (e.str("interface"), e.int("mtu"));
    let (Ok(Some(host)), Some(iface), Some(m)) = (host.clone(), iface, m) else {
        if host.is_ok() {
            e.need("an mtu fault needs `host`, `interface` and `mtu`", "e.g. host = \"router\", interface = \"eth1\", mtu = 1280");
        }
        return None;
    };
    if !common::has_interface(e, env, &host, &iface) {
        return None;
    }
    // In 68..=65535: the key's bounds.
    let mtu = u32::try_from(*m.get_ref()).ok()?;
    Some(Fault::Mtu { host: host.into_inner(), interface: iface.into_inner(), mtu })
}
