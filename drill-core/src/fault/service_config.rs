//! `service-config`: a service starts with a patch over its healthy config.

use super::{Env, Fault, Kind, shape};
use crate::schema::{Entry, Key, Ty, key};
use crate::workload::{self, Workload};

const KEYS: &[Key] = &[
    key("service", Ty::Str, "\"httpd\"", "the service whose config is patched"),
    key("host", Ty::Str, "\"api\"", "the service's host, when several hosts have a service of that name"),
    key("set", Ty::Table, "{ close_on_eof = false }", "keys of the service's config, patched over its healthy config"),
];

pub const KIND: Kind = Kind { shape: shape("service-config", KEYS), build };

fn build(e: &mut Entry, env: &Env) -> Option<Fault> {
    let set = e.table("set").map(|s| s.into_inner()).unwrap_or_default();
    let host = e.str("host");
    let Some(svc) = e.str("service") else {
        e.need("a service-config fault needs `service = \"NAME\"`", "name the service whose config it patches");
        return None;
    };
    let target = super::common::service(e, env, &svc, host.as_ref(), "to patch")?;
    let (base, kind) = env.service_tables.get(&(target.host.clone(), target.name.clone()))?;
    let mut patched = base.clone();
    workload::merge_tables(&mut patched, &set);
    match Workload::from_table(kind, patched) {
        Ok(faulty) => Some(Fault::ServiceConfig { host: target.host, service: target.name, set, faulty }),
        Err(err) => {
            let msg = format!("the patch does not fit service `{}`: {err}", target.name);
            match e.sub("set").and_then(|(_, t)| crate::schema::blamed_key(t, &err)) {
                Some(span) => e.err(span, msg, "only set keys the workload's config has"),
                None => e.need(msg, "only set keys the workload's config has"),
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::scenario::tests_support::fault_err;

    #[test]
    fn the_patch_must_fit_the_service() {
        let e = fault_err("kind = \"service-config\"\nservice = \"httpd\"\nset = { close_on_oef = false }");
        assert!(e.contains("close_on_oef"), "{e}");
        let line = crate::scenario::tests_support::GOOD.lines().position(|l| l == "[verify]").unwrap() + 1;
        assert!(e.starts_with(&format!("t.toml:{}:9:", line + 3)), "points at the key: {e}");
        assert!(fault_err("kind = \"service-config\"\nservice = \"nope\"").contains("no service `nope` to patch"));
    }
}
