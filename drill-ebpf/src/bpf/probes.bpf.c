// SPDX-License-Identifier: GPL-2.0
/*
 * drill probes. All programs share `watched_netns`: they only record events of
 * network namespaces that belong to running drills.
 *
 * 1. TCP state dwell times, from the sock:inet_sock_set_state
 * tracepoint (attached as a raw tracepoint, so no tracefs is needed).
 *
 * For every TCP socket living in a network namespace the daemon watches
 * (`watched_netns`), the program records when the socket enters one of the
 * tracked states (`tracked_states`, a bitmask of TCP_* values set by the
 * daemon) and, when it leaves it, how long it stayed. It keeps
 *   - `open_dwell`: sockets currently in a tracked state (skaddr -> entry),
 *     so that userspace can see sockets that are *still* stuck;
 *   - `dwell_stats`: cumulative counters per (netns, local port, state);
 *   - `dwell_events`: a ring buffer with one record per exit, for exact
 *     per-window verdicts.
 */
#include "drill_core.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include "probes.h"

#define IPPROTO_TCP 6
/* Hash maps allocate their entries as they fill, not all at load: a preallocated
 * 65536-entry map costs the daemon tens of milliseconds at every start, and the
 * kernel (>= 6.1) allows non-preallocated maps in tracing programs. */
#define BPF_F_NO_PREALLOC 1

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);   /* netns inode */
	__type(value, __u32); /* drill-assigned tag, unused by the kernel side */
} watched_netns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32); /* bit n set: track state n */
} tracked_states SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, __u64); /* socket address */
	__type(value, struct drill_dwell_open);
} open_dwell SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, struct drill_dwell_key);
	__type(value, struct drill_dwell_stats);
} dwell_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 18);
} dwell_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DRILL_TCPSTATE_NCOUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} tcpstate_counters SEC(".maps");

static __always_inline void bump(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&tcpstate_counters, &idx);
	if (c)
		__sync_fetch_and_add(c, 1);
}

static __always_inline struct drill_dwell_stats *stats_for(struct drill_dwell_key *key)
{
	struct drill_dwell_stats *st = bpf_map_lookup_elem(&dwell_stats, key);
	if (st)
		return st;
	struct drill_dwell_stats zero = {};
	bpf_map_update_elem(&dwell_stats, key, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&dwell_stats, key);
}

SEC("raw_tracepoint/inet_sock_set_state")
int drill_tcpstate(struct bpf_raw_tracepoint_args *ctx)
{
	struct sock *sk = (struct sock *)ctx->args[0];
	int oldstate = (int)ctx->args[1];
	int newstate = (int)ctx->args[2];

	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;

	__u32 netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	if (!bpf_map_lookup_elem(&watched_netns, &netns))
		return 0;

	__u32 zero = 0;
	__u32 *mask = bpf_map_lookup_elem(&tracked_states, &zero);
	if (!mask)
		return 0;
	__u32 tracked = *mask;
	__u64 skaddr = (__u64)sk;
	__u64 now = bpf_ktime_get_ns();

	/* Leaving a tracked state: account for the dwell and emit an event. */
	if (oldstate >= 0 && oldstate < 32 && (tracked & (1u << oldstate))) {
		struct drill_dwell_open *open = bpf_map_lookup_elem(&open_dwell, &skaddr);
		if (open && open->state == (__u32)oldstate) {
			__u64 dwell = now - open->enter_ns;
			struct drill_dwell_key key = {
				.netns = open->netns,
				.port = open->port,
				.state = (__u16)oldstate,
			};
			struct drill_dwell_stats *st = stats_for(&key);
			if (st) {
				__sync_fetch_and_add(&st->exited, 1);
				__sync_fetch_and_add(&st->dwell_total_ns, dwell);
				if (dwell > st->dwell_max_ns)
					st->dwell_max_ns = dwell;
			}
			struct drill_dwell_event *ev =
				bpf_ringbuf_reserve(&dwell_events, sizeof(*ev), 0);
			if (ev) {
				ev->netns = open->netns;
				ev->port = open->port;
				ev->remote_port = open->remote_port;
				ev->state = (__u16)oldstate;
				ev->new_state = (__u16)newstate;
				ev->enter_ns = open->enter_ns;
				ev->exit_ns = now;
				ev->skaddr = skaddr;
				bpf_ringbuf_submit(ev, 0);
			} else {
				bump(DRILL_TCPSTATE_EVENTS_LOST);
			}
			bpf_map_delete_elem(&open_dwell, &skaddr);
		}
	}

	/* Entering a tracked state: remember when. */
	if (newstate >= 0 && newstate < 32 && (tracked & (1u << newstate))) {
		struct drill_dwell_open open = {
			.enter_ns = now,
			.netns = netns,
			.port = BPF_CORE_READ(sk, __sk_common.skc_num),
			.remote_port = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport)),
			.state = (__u32)newstate,
		};
		if (bpf_map_update_elem(&open_dwell, &skaddr, &open, BPF_ANY) != 0)
			bump(DRILL_TCPSTATE_OPEN_FULL);
		struct drill_dwell_key key = {
			.netns = netns,
			.port = open.port,
			.state = (__u16)newstate,
		};
		struct drill_dwell_stats *st = stats_for(&key);
		if (st)
			__sync_fetch_and_add(&st->entered, 1);
	}
	bump(DRILL_TCPSTATE_SEEN);
	return 0;
}

/* 2. Event counters: drops by reason, retransmissions, resets, OOM kills, execs. */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct drill_event_key);
	__type(value, __u64);
} event_counts SEC(".maps");

/* Per-CPU: tcp_probe fires on every ACK; shared atomics would bounce a cache line
 * between CPUs on each one. Userspace sums the CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, struct drill_rtt_key);
	__type(value, struct drill_rtt);
} rtt_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
} exec_events SEC(".maps");

static __always_inline int watched(__u32 netns)
{
	return bpf_map_lookup_elem(&watched_netns, &netns) != 0;
}

static __always_inline void count(__u32 netns, __u16 kind, __u16 port, __u32 reason)
{
	struct drill_event_key key = { .netns = netns, .kind = kind, .port = port, .reason = reason };
	__u64 *c = bpf_map_lookup_elem(&event_counts, &key);
	if (c) {
		__sync_fetch_and_add(c, 1);
		return;
	}
	__u64 one = 1;
	if (bpf_map_update_elem(&event_counts, &key, &one, BPF_NOEXIST) != 0) {
		c = bpf_map_lookup_elem(&event_counts, &key);
		if (c)
			__sync_fetch_and_add(c, 1);
	}
}

static __always_inline __u32 sk_netns(const struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

/* Namespace of a packet: its device's, else its socket's. */
static __always_inline __u32 skb_netns(const struct sk_buff *skb, const struct sock *fallback)
{
	struct net_device *dev = BPF_CORE_READ(skb, dev);
	if (dev)
		return BPF_CORE_READ(dev, nd_net.net, ns.inum);
	const struct sock *sk = BPF_CORE_READ(skb, sk);
	if (!sk)
		sk = fallback;
	if (sk)
		return sk_netns(sk);
	return 0;
}

/* kfree_skb(skb, location, reason, rx_sk) */
SEC("raw_tracepoint/kfree_skb")
int drill_drop(struct bpf_raw_tracepoint_args *ctx)
{
	const struct sk_buff *skb = (const struct sk_buff *)ctx->args[0];
	__u32 reason = (__u32)ctx->args[2];
	const struct sock *rx_sk = (const struct sock *)ctx->args[3];
	__u32 netns = skb_netns(skb, rx_sk);
	if (!netns || !watched(netns))
		return 0;
	count(netns, DRILL_EV_DROP, 0, reason);
	return 0;
}

/* tcp_retransmit_skb(sk, skb, err) */
SEC("raw_tracepoint/tcp_retransmit_skb")
int drill_retransmit(struct bpf_raw_tracepoint_args *ctx)
{
	const struct sock *sk = (const struct sock *)ctx->args[0];
	__u32 netns = sk_netns(sk);
	if (!watched(netns))
		return 0;
	count(netns, DRILL_EV_RETRANSMIT, BPF_CORE_READ(sk, __sk_common.skc_num), 0);
	return 0;
}

/* tcp_send_reset(sk, skb, reason): sk is NULL for a RST answering no socket
 * (e.g. a SYN to a closed port); then the port is the incoming segment's. */
SEC("raw_tracepoint/tcp_send_reset")
int drill_rst_sent(struct bpf_raw_tracepoint_args *ctx)
{
	const struct sock *sk = (const struct sock *)ctx->args[0];
	const struct sk_buff *skb = (const struct sk_buff *)ctx->args[1];
	__u32 netns;
	__u16 port = 0;
	if (sk) {
		netns = sk_netns(sk);
		port = BPF_CORE_READ(sk, __sk_common.skc_num);
	} else if (skb) {
		netns = skb_netns(skb, 0);
		unsigned char *head = BPF_CORE_READ(skb, head);
		__u16 th = BPF_CORE_READ(skb, transport_header);
		struct tcphdr hdr = {};
		if (head && bpf_probe_read_kernel(&hdr, sizeof(hdr), head + th) == 0)
			port = __builtin_bswap16(hdr.dest);
	} else {
		return 0;
	}
	if (!netns || !watched(netns))
		return 0;
	count(netns, DRILL_EV_RST_SENT, port, 0);
	return 0;
}

/* tcp_receive_reset(sk) */
SEC("raw_tracepoint/tcp_receive_reset")
int drill_rst_received(struct bpf_raw_tracepoint_args *ctx)
{
	const struct sock *sk = (const struct sock *)ctx->args[0];
	__u32 netns = sk_netns(sk);
	if (!watched(netns))
		return 0;
	count(netns, DRILL_EV_RST_RECEIVED, BPF_CORE_READ(sk, __sk_common.skc_num), 0);
	return 0;
}

/* tcp_probe(sk, skb): smoothed RTT of the socket (srtt_us is stored << 3).
 * A BTF tracepoint: it fires on every ACK, and typed arguments allow direct loads
 * instead of bpf_probe_read_kernel() calls (measured: see `cargo xtask bench`). */
SEC("tp_btf/tcp_probe")
int drill_rtt(__u64 *ctx)
{
	struct sock *sk = (struct sock *)ctx[0];
	__u32 netns = sk->__sk_common.skc_net.net->ns.inum;
	if (!watched(netns))
		return 0;
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
	if (!tp)
		return 0;
	__u64 srtt = tp->srtt_us >> 3;
	struct drill_rtt_key key = { .netns = netns, .port = sk->__sk_common.skc_num };
	struct drill_rtt *r = bpf_map_lookup_elem(&rtt_stats, &key);
	if (!r) {
		struct drill_rtt zero = {};
		bpf_map_update_elem(&rtt_stats, &key, &zero, BPF_NOEXIST);
		r = bpf_map_lookup_elem(&rtt_stats, &key);
		if (!r)
			return 0;
	}
	r->samples += 1;
	r->srtt_sum_us += srtt;
	if (srtt > r->srtt_max_us)
		r->srtt_max_us = srtt;
	return 0;
}

static __always_inline __u32 task_netns(const struct task_struct *t)
{
	return BPF_CORE_READ(t, nsproxy, net_ns, ns.inum);
}

/* sched_process_exec(p, old_pid, bprm) */
SEC("raw_tracepoint/sched_process_exec")
int drill_exec(struct bpf_raw_tracepoint_args *ctx)
{
	const struct task_struct *t = (const struct task_struct *)ctx->args[0];
	__u32 netns = task_netns(t);
	if (!watched(netns))
		return 0;
	count(netns, DRILL_EV_EXEC, 0, 0);
	struct drill_exec_event *ev = bpf_ringbuf_reserve(&exec_events, sizeof(*ev), 0);
	if (!ev)
		return 0;
	ev->ts_ns = bpf_ktime_get_ns();
	ev->netns = netns;
	ev->pid = BPF_CORE_READ(t, tgid);
	ev->ppid = BPF_CORE_READ(t, real_parent, tgid);
	BPF_CORE_READ_STR_INTO(&ev->comm, t, comm);
	/* argv lives in the new program's memory, just written by exec. */
	unsigned long start = BPF_CORE_READ(t, mm, arg_start);
	unsigned long end = BPF_CORE_READ(t, mm, arg_end);
	__u64 len = end > start ? end - start : 0;
	if (len > DRILL_ARGV_MAX - 1)
		len = DRILL_ARGV_MAX - 1;
	/* Keep clang from folding the mask away: the verifier needs to see the bound. */
	barrier_var(len);
	len &= DRILL_ARGV_MAX - 1;
	ev->argv_len = 0;
	if (len > 0 && bpf_probe_read_user(ev->argv, len, (const void *)start) == 0)
		ev->argv_len = (__u32)len;
	bpf_ringbuf_submit(ev, 0);
	return 0;
}

/* mark_victim(task, uid) */
SEC("raw_tracepoint/mark_victim")
int drill_oom(struct bpf_raw_tracepoint_args *ctx)
{
	const struct task_struct *t = (const struct task_struct *)ctx->args[0];
	__u32 netns = task_netns(t);
	if (!watched(netns))
		return 0;
	count(netns, DRILL_EV_OOM_KILL, 0, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
