// SPDX-License-Identifier: GPL-2.0
/*
 * `drill doctor`: one trivial program of each type the engine loads, so the doctor
 * learns what the kernel accepts the way the daemon loads its own (aya, this
 * kernel's BTF). They do nothing and are unloaded at once.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

/* Attached in turn to each tracepoint the probes use (raw_tracepoint). */
SEC("raw_tracepoint/sched_process_exec")
int doctor_raw_tp(void *ctx)
{
	return 0;
}

/* Loaded against tcp_probe's BTF (tp_btf), as the RTT probe is. */
SEC("tp_btf/tcp_probe")
int doctor_tp_btf(__u64 *ctx)
{
	return 0;
}

/* The eBPF fault's type: a tc classifier (sched_cls). */
SEC("classifier")
int doctor_cls(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
