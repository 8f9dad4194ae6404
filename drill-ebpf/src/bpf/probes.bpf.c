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
			/* Can fail (the bucket lock not taken: -EBUSY when nested on
			 * older kernels, a deadlock or timeout verdict of the resilient
			 * spinlock on 6.15+). The entry would then outlive the socket's
			 * stay in the state; the daemon removes it when it reads this
			 * event (same socket, same enter_ns). */
			if (bpf_map_delete_elem(&open_dwell, &skaddr) != 0)
				bump(DRILL_TCPSTATE_DELETE_FAILED);
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
			/* NULL sk_socket (a socket not accepted yet) reads as 0. */
			.ino = (__u32)BPF_CORE_READ(sk, sk_socket, file, f_inode, i_ino),
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

/* sys_exit(regs, ret): every system call of the machine ends here, so the program
 * returns at once unless the call failed with ENOSPC (one compare); only then does it
 * look up the task's network namespace. */
SEC("raw_tracepoint/sys_exit")
int drill_enospc(struct bpf_raw_tracepoint_args *ctx)
{
	if ((long)ctx->args[1] != -28 /* -ENOSPC */)
		return 0;
	const struct task_struct *t = (const struct task_struct *)bpf_get_current_task();
	__u32 netns = task_netns(t);
	if (!watched(netns))
		return 0;
	count(netns, DRILL_EV_ENOSPC, 0, 0);
	return 0;
}

/* 3. The timeline's command capture: every exec and exit of a process whose active PID
 * namespace is a drill host's (`watched_pidns`). The engine's own helpers that only
 * enter a host's network namespace are not in it (DECISIONS.md). */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u32);
} watched_pidns SEC(".maps");

/* ~2.4 KiB a record: 8 MiB hold a burst of ~3400 execs before userspace drains any. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 23);
} cmd_events SEC(".maps");

/* [0]: records lost to a full ring buffer. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} cmd_counters SEC(".maps");

static __always_inline void cmd_lost(void)
{
	__u32 k = 0;
	__u64 *c = bpf_map_lookup_elem(&cmd_counters, &k);
	if (c)
		__sync_fetch_and_add(c, 1);
}

/* (inode of the task's active PID namespace, its pid there). */
static __always_inline __u32 task_pidns(const struct task_struct *t, __u32 *nr)
{
	struct pid *p = BPF_CORE_READ(t, thread_pid);
	if (!p)
		return 0;
	unsigned int level = BPF_CORE_READ(p, level);
	if (level > 31)
		return 0;
	struct upid up = {};
	/* numbers[] is a flexible array: index it by hand (struct upid's size is fixed). */
	const char *base = (const char *)p + bpf_core_field_offset(struct pid, numbers);
	if (bpf_probe_read_kernel(&up, sizeof(up), base + level * bpf_core_type_size(struct upid)) != 0)
		return 0;
	*nr = (__u32)up.nr;
	return BPF_CORE_READ(up.ns, ns.inum);
}

/* The state of one cwd walk (per CPU: a tracepoint program does not nest on a CPU).
 * The field offsets are relocated in the main program and carried here: the loader
 * does not relocate CO-RE accesses inside a bpf_loop callback. */
struct cwd_walk {
	__u64 d;
	__u64 root_d;
	__u64 vm;
	__u64 root_mnt;
	__u64 m;
	__u32 off_mnt;        /* mount.mnt */
	__u32 off_mnt_root;   /* vfsmount.mnt_root */
	__u32 off_mnt_parent; /* mount.mnt_parent */
	__u32 off_mountpoint; /* mount.mnt_mountpoint */
	__u32 off_d_parent;   /* dentry.d_parent */
	__u32 off_d_name;     /* dentry.d_name.name */
	__u32 n;
	__u32 cut;
	char cwd[DRILL_CWD_DEPTH][DRILL_CWD_NAME];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cwd_walk);
} cwd_scratch SEC(".maps");

static __always_inline __u64 read_ptr(__u64 base, __u32 off)
{
	__u64 v = 0;
	bpf_probe_read_kernel(&v, sizeof(v), (const void *)(base + off));
	return v;
}

/* One step up: a mount crossing, or one component recorded. 1 stops the loop. */
static long cwd_step(__u64 i, void *ctx)
{
	__u32 zero = 0;
	struct cwd_walk *w = bpf_map_lookup_elem(&cwd_scratch, &zero);
	if (!w)
		return 1;
	if (!w->d || (w->d == w->root_d && w->vm == w->root_mnt))
		return 1;
	if (w->d == read_ptr(w->vm, w->off_mnt_root)) {
		__u64 parent = read_ptr(w->m, w->off_mnt_parent);
		if (parent == w->m || !parent)
			return 1;
		w->d = read_ptr(w->m, w->off_mountpoint);
		w->m = parent;
		w->vm = parent + w->off_mnt;
		return 0;
	}
	if (w->n >= DRILL_CWD_DEPTH) {
		w->cut = 1;
		return 1;
	}
	__u64 up = read_ptr(w->d, w->off_d_parent);
	if (up == w->d || !up)
		return 1;
	__u32 n = w->n & (DRILL_CWD_DEPTH - 1);
	w->cwd[n][0] = 0;
	bpf_probe_read_kernel_str(w->cwd[n], DRILL_CWD_NAME, (const void *)read_ptr(w->d, w->off_d_name));
	w->n = n + 1;
	w->d = up;
	return 0;
}

/* sched_process_exec(p, old_pid, bprm) */
SEC("raw_tracepoint/sched_process_exec")
int drill_cmd(struct bpf_raw_tracepoint_args *ctx)
{
	const struct task_struct *t = (const struct task_struct *)ctx->args[0];
	const struct linux_binprm *bprm = (const struct linux_binprm *)ctx->args[2];
	__u32 nr = 0;
	__u32 pidns = task_pidns(t, &nr);
	if (!pidns || !bpf_map_lookup_elem(&watched_pidns, &pidns))
		return 0;
	struct drill_cmd_exec *ev = bpf_ringbuf_reserve(&cmd_events, sizeof(*ev), 0);
	if (!ev) {
		cmd_lost();
		return 0;
	}
	ev->type = DRILL_CMD_EXEC;
	ev->pidns = pidns;
	ev->ts_ns = bpf_ktime_get_ns();
	ev->pid = BPF_CORE_READ(t, tgid);
	ev->ppid = BPF_CORE_READ(t, real_parent, tgid);
	ev->host_pid = nr;
	ev->uid = (__u32)bpf_get_current_uid_gid();
	BPF_CORE_READ_STR_INTO(&ev->comm, t, comm);
	ev->filename[0] = 0;
	bpf_probe_read_kernel_str(ev->filename, sizeof(ev->filename), BPF_CORE_READ(bprm, filename));

	/* argv: the new program's, just written by exec. */
	unsigned long start = BPF_CORE_READ(t, mm, arg_start);
	unsigned long end = BPF_CORE_READ(t, mm, arg_end);
	__u64 total = end > start ? end - start : 0;
	ev->argv_total = (__u32)total;
	ev->argv_len = 0;
	if (total >= DRILL_CMD_ARGV) {
		if (bpf_probe_read_user(ev->argv, DRILL_CMD_ARGV, (const void *)start) == 0)
			ev->argv_len = DRILL_CMD_ARGV;
	} else if (total > 0) {
		__u64 len = total;
		barrier_var(len);
		len &= DRILL_CMD_ARGV - 1;
		if (len > 0 && bpf_probe_read_user(ev->argv, len, (const void *)start) == 0)
			ev->argv_len = (__u32)len;
	}

	/* cwd: from fs->pwd up to fs->root, crossing mount points, one step per bpf_loop
	 * iteration (the verifier checks the step once, not every path through 32 of them). */
	__u32 zero = 0;
	struct cwd_walk *w = bpf_map_lookup_elem(&cwd_scratch, &zero);
	ev->cwd_depth = 0;
	ev->cwd_cut = 0;
	if (w) {
		struct path pwd = {}, root = {};
		BPF_CORE_READ_INTO(&pwd, t, fs, pwd);
		BPF_CORE_READ_INTO(&root, t, fs, root);
		w->d = (__u64)pwd.dentry;
		w->vm = (__u64)pwd.mnt;
		w->root_d = (__u64)root.dentry;
		w->root_mnt = (__u64)root.mnt;
		w->off_mnt = bpf_core_field_offset(struct mount, mnt);
		w->off_mnt_root = bpf_core_field_offset(struct vfsmount, mnt_root);
		w->off_mnt_parent = bpf_core_field_offset(struct mount, mnt_parent);
		w->off_mountpoint = bpf_core_field_offset(struct mount, mnt_mountpoint);
		w->off_d_parent = bpf_core_field_offset(struct dentry, d_parent);
		w->off_d_name = bpf_core_field_offset(struct dentry, d_name) + bpf_core_field_offset(struct qstr, name);
		w->m = w->vm - w->off_mnt;
		w->n = 0;
		w->cut = 0;
		/* bpf_loop's context must be on the stack: the step finds the walk itself. */
		__u32 unused = 0;
		bpf_loop(2 * DRILL_CWD_DEPTH, cwd_step, &unused, 0);
		bpf_probe_read_kernel(ev->cwd, sizeof(ev->cwd), w->cwd);
		ev->cwd_depth = w->n;
		ev->cwd_cut = w->cut;
	}
	bpf_ringbuf_submit(ev, 0);
	return 0;
}

/* sched_process_exit(p, group_dead) */
SEC("raw_tracepoint/sched_process_exit")
int drill_cmd_exit(struct bpf_raw_tracepoint_args *ctx)
{
	const struct task_struct *t = (const struct task_struct *)ctx->args[0];
	if (BPF_CORE_READ(t, pid) != BPF_CORE_READ(t, tgid))
		return 0;
	__u32 nr = 0;
	__u32 pidns = task_pidns(t, &nr);
	if (!pidns || !bpf_map_lookup_elem(&watched_pidns, &pidns))
		return 0;
	struct drill_cmd_exit *ev = bpf_ringbuf_reserve(&cmd_events, sizeof(*ev), 0);
	if (!ev) {
		cmd_lost();
		return 0;
	}
	ev->type = DRILL_CMD_EXIT;
	ev->pidns = pidns;
	ev->ts_ns = bpf_ktime_get_ns();
	ev->pid = BPF_CORE_READ(t, tgid);
	ev->exit_code = (__u32)BPF_CORE_READ(t, exit_code);
	bpf_ringbuf_submit(ev, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
