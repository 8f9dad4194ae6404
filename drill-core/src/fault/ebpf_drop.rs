//! `ebpf-drop`: an eBPF tc classifier on an interface drops matching packets with a
//! probability (retunable live through its map).

use super::{Env, Fault, Kind, common, shape};
use crate::schema::{Entry, Key, Ty, key};

const KEYS: &[Key] = &[
    common::HOST,
    common::INTERFACE,
    key("direction", Ty::Str, "\"ingress\"", "ingress (default) or egress"),
    common::PROTO,
    common::DPORT,
    common::FROM,
    key("percent", Ty::Num, "20", "share of matching packets dropped, in percent (0-100; default 100)").from(0.0, 100.0, "%").says("loss of {}% is impossible", "give a percentage from 0 to 100"),
];

pub const KIND: Kind = Kind { shape: shape("ebpf-drop", KEYS), build };

fn build(e: &mut Entry, env: &Env) -> Option<Fault> {
    let host = common::host(e, env);
    let iface = e.str("interface");
    let (Ok(Some(host)), Some(iface)) = (host.clone(), iface) else {
        if host.is_ok() {
            e.need("an ebpf-drop fault needs `host` and `interface`", "e.g. host = \"api\", interface = \"eth0\", proto = \"tcp\", dport = 8080, percent = 20");
        }
        return None;
    };
    if !common::has_interface(e, env, &host, &iface) {
        return None;
    }
    let egress = match e.str("direction") {
        None => false,
        Some(d) if d.get_ref() == "ingress" => false,
        Some(d) if d.get_ref() == "egress" => true,
        Some(d) => {
            e.err(d.span(), format!("direction `{}` is not supported", d.get_ref()), "use ingress or egress");
            return None;
        }
    };
    let (proto, dport) = common::proto_and_port(e).ok()?;
    let from = common::source(e, env).ok()?;
    let loss = common::loss_fraction(e, 1.0).ok()?;
    if loss == 0.0 {
        e.err(e.span.clone(), "this ebpf-drop fault drops nothing", "give a `percent` above 0 (or leave it out: 100%)");
        return None;
    }
    Some(Fault::EbpfDrop { host: host.into_inner(), interface: iface.into_inner(), egress, proto, dport, from, loss })
}
