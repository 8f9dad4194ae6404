//! `delay`: latency, jitter and loss on the egress of an interface (netem, or the
//! userspace delay wire where the kernel has no netem).

use super::{Env, Fault, Kind, common, shape};
use crate::schema::{Entry, Key, Ty, key};

const KEYS: &[Key] = &[
    common::HOST,
    common::INTERFACE,
    key("delay_ms", Ty::Num, "300", "added latency in milliseconds (0-10000)").from(0.0, 10_000.0, "ms").says("delay of {} ms is impossible", "give a delay from 0 to 10000 ms"),
    key("jitter_ms", Ty::Num, "20", "uniform +- jitter in milliseconds (0 up to the delay; default 0)"),
    key("percent", Ty::Num, "1", "random loss in percent (0-100; default 0)").from(0.0, 100.0, "%").says("loss of {}% is impossible", "give a percentage from 0 to 100"),
];

pub const KIND: Kind = Kind { shape: shape("delay", KEYS), build };

fn build(e: &mut Entry, env: &Env) -> Option<Fault> {
    let host = common::host(e, env);
    let (iface, delay, jitter) = (e.str("interface"), e.num("delay_ms"), e.num("jitter_ms"));
    let (Ok(Some(host)), Some(iface), Some(delay)) = (host.clone(), iface, delay) else {
        if host.is_ok() {
            e.need("a delay fault needs `host`, `interface` and `delay_ms`", "e.g. host = \"lb\", interface = \"eth1\", delay_ms = 300");
        }
        return None;
    };
    if !common::has_interface(e, env, &host, &iface) {
        return None;
    }
    let d = *delay.get_ref();
    let jitter = match &jitter {
        Some(j) if *j.get_ref() >= 0.0 && *j.get_ref() <= d => *j.get_ref(),
        Some(j) => {
            e.err(j.span(), format!("jitter of {} ms is impossible with a {d} ms delay", j.get_ref()), "give a jitter from 0 up to the delay");
            return None;
        }
        None if e.has("jitter_ms") => return None,
        None => 0.0,
    };
    let loss = common::loss_fraction(e, 0.0).ok()?;
    if d == 0.0 && loss == 0.0 {
        e.err(delay.span(), "this delay fault does nothing", "give a delay above 0 ms or a loss `percent`");
        return None;
    }
    if common::root_qdisc_taken(e, env, &host, &iface, e.span.clone(), "one delay per interface; put a rate limit on another interface of the path") {
        return None;
    }
    Some(Fault::Delay { host: host.into_inner(), interface: iface.into_inner(), delay_ms: d, jitter_ms: jitter, loss })
}
