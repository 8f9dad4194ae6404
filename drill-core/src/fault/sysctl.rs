//! `sysctl`: a per-network-namespace sysctl of a host set to a bad value.

use super::{Env, Fault, Kind, common, shape};
use crate::schema::{Entry, Key, Ty, key};

const KEYS: &[Key] =
    &[common::HOST, key("key", Ty::Str, "\"net.ipv4.ip_local_port_range\"", "a per-network-namespace net.* sysctl"), key("value", Ty::StrOrInt, "\"40000 40010\"", "the value written to it")];

pub const KIND: Kind = Kind { shape: shape("sysctl", KEYS), build };

fn build(e: &mut Entry, env: &Env) -> Option<Fault> {
    let host = common::host(e, env);
    let (key, value) = (e.str("key"), e.value("value"));
    let (Ok(Some(host)), Some(key), Some(value)) = (host.clone(), key, value) else {
        if host.is_ok() {
            e.need("a sysctl fault needs `host`, `key` and `value`", "e.g. host = \"client\", key = \"net.ipv4.ip_local_port_range\", value = \"40000 40010\"");
        }
        return None;
    };
    let value = match value.get_ref() {
        toml::Value::String(v) => v.clone(),
        toml::Value::Integer(i) => i.to_string(),
        other => {
            e.err(key.span(), format!("sysctl value {other} is not a string or a number"), "write e.g. \"40000 40010\" or 128");
            return None;
        }
    };
    let k = key.get_ref();
    if !k.starts_with("net.") || k.contains('/') || k.contains("..") || crate::topo::GLOBAL_SYSCTLS.contains(&k.as_str()) {
        e.err(key.span(), format!("sysctl `{k}` is not a per-network-namespace setting"), "only per-namespace net.* sysctls can be faults; others would change the learner's machine");
        return None;
    }
    Some(Fault::Sysctl { host: host.into_inner(), key: k.clone(), value })
}
