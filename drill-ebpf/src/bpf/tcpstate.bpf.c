// SPDX-License-Identifier: GPL-2.0
/*
 * drill probe: TCP state dwell times, from the sock:inet_sock_set_state
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

#include "tcpstate.h"

#define IPPROTO_TCP 6

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
	__uint(max_entries, 65536);
	__type(key, __u64); /* socket address */
	__type(value, struct drill_dwell_open);
} open_dwell SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
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

char LICENSE[] SEC("license") = "GPL";
