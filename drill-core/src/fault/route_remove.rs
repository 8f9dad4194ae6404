//! `route-remove`: a route of a host removed.

use super::{Env, Fault, Kind, common, shape};
use crate::model::Cidr;
use crate::schema::{Entry, Key, Ty, key};

const KEYS: &[Key] = &[common::HOST, key("to", Ty::Str, "\"default\"", "`default` or the prefix of a route the host has")];

pub const KIND: Kind = Kind { shape: shape("route-remove", KEYS), build };

fn build(e: &mut Entry, env: &Env) -> Option<Fault> {
    let host = common::host(e, env);
    let to = e.str("to");
    let (Ok(Some(host)), Some(to)) = (host.clone(), to) else {
        if host.is_ok() {
            e.need("a route-remove fault needs `host` and `to`", "e.g. host = \"client\", to = \"default\"");
        }
        return None;
    };
    let dst = match to.get_ref().as_str() {
        "default" => None,
        t => match t.parse::<Cidr>() {
            Ok(c) => Some(c),
            Err(err) => {
                e.err(to.span(), err, "write `default` or a prefix such as \"10.77.2.0/24\"");
                return None;
            }
        },
    };
    let routed = env.topo.iter().find(|h| &h.name == host.get_ref()).is_some_and(|h| h.routes.iter().any(|r| r.to == dst && !r.v6));
    if !routed {
        e.err(to.span(), format!("host `{}` has no route to {} to remove", host.get_ref(), to.get_ref()), "declare the route in the host's `routes` first");
        return None;
    }
    Some(Fault::RouteRemove { host: host.into_inner(), to: dst })
}
